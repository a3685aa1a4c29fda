package pipeline

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// startSourceTLS loads the source TLS material (nil when TLS is off) and keeps it fresh until stop is
// called: the files are checked every reload interval, and SIGHUP reloads them at once. Established
// connections keep the certificate they were made with; new handshakes get the new one. stop waits for the
// watcher to end.
func startSourceTLS(ctx context.Context, cfg tcpin.TLSConfig, mode tcpin.Mode, log *slog.Logger) (t *tcpin.TLS, stop func(), err error) {
	t, err = tcpin.NewTLS(cfg, mode, log)
	if err != nil {
		return nil, func() {}, fmt.Errorf("loading source TLS: %w", err)
	}
	if t == nil {
		return nil, func() {}, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer signal.Stop(hup)
		t.Watch(ctx, hup)
	}()
	stop = func() { cancel(); <-done }
	log.Info("source TLS on", "mode", mode.String(), "mutual", (cfg.CAFile != "" || cfg.CAPEM != "") && mode == tcpin.Listen,
		"allowed_clients", len(cfg.AllowedClients), "not_after", t.NotAfter())
	return t, stop, nil
}

// LogHangups logs each SIGHUP that arrives on hup (the command keeps SIGHUP caught for its whole life, so
// that it never ends the process), saying what it does: reload the source TLS material when TLS is on,
// nothing otherwise. stop ends the logging and waits for it; hup stays registered.
func LogHangups(hup <-chan os.Signal, cfg Config, log *slog.Logger) (stop func()) {
	effect := "none: source TLS is off"
	if cfg.Source.TLSConfig.Enabled {
		effect = "the source TLS material is reloaded (once TLS has started)"
	}
	done, quit := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-hup:
				log.Info("SIGHUP received; the reader goes on", "effect", effect)
			}
		}
	}()
	return func() { close(quit); <-done }
}
