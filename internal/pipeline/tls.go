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
