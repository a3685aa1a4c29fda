package logsource

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/flagenv"
)

// envPrefix lets every flag --foo-bar be set by the environment variable LOGSOURCE_FOO_BAR (see flagenv).
const envPrefix = "LOGSOURCE_"

// RunCLI runs the log source's command line: it parses args, streams, and prints one JSON summary line (see
// Stats) to stdout, also when the run fails part-way. JSON logs go to stderr. --help prints the usage to
// stdout and returns flag.ErrHelp; the returned error wraps ErrUsage for command-line mistakes, which are
// explained on stderr.
func RunCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	err := runCLI(ctx, args, stdout, stderr)
	if errors.Is(err, ErrUsage) {
		fmt.Fprintf(stderr, "logsource: %v\n", err)
	}
	return err
}

func runCLI(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("logsource", flag.ContinueOnError)
	var (
		cfg                         Config
		listen, connect, bad, start string
		timeMode                    string
		sendTimes, logLevel         string
		tlsCert, tlsKey             string
		file                        string
		firstID                     uint
	)
	fs.StringVar(&listen, "listen", "", "serve readers that connect to this address, e.g. 127.0.0.1:7000 (port 0 picks one; the log says which)")
	fs.StringVar(&connect, "connect", "", "dial a reader listening at host:port, retrying until it is up")
	fs.StringVar(&tlsCert, "tls-cert", "", "listen mode: serve TLS with this PEM certificate (with --tls-key)")
	fs.StringVar(&tlsKey, "tls-key", "", "listen mode: the PEM key of --tls-cert")
	fs.Uint64Var(&cfg.Count, "count", 0, "good events to send in total, across connections (0: no count bound)")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long from the first connection (0: no time bound); with neither bound, run until interrupted")
	fs.Float64Var(&cfg.Rate, "rate", 0, "good events per second across connections (0: as fast as possible)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "seed of the event generator")
	fs.UintVar(&firstID, "first-id", 1, "eventId of the first event")
	fs.StringVar(&timeMode, "time-mode", string(TimeWall), "wall: stamp each event with the clock when it is sent; synthetic: event i at --start + about i ms, whatever --rate (reproducible bytes)")
	fs.StringVar(&start, "start", "", "synthetic time mode: timestamp of the first event, RFC 3339 (default: now)")
	fs.IntVar(&cfg.Clients, "clients", DefaultClients, "listen mode: connections to serve to completion before exiting")
	fs.StringVar(&bad, "bad", "", "classes of bad input to inject, comma-separated, or all: "+joinClasses(AllBadClasses))
	fs.IntVar(&cfg.BadEvery, "bad-every", 0, "inject one bad line after every K good events")
	fs.IntVar(&cfg.OversizeBytes, "oversize-bytes", DefaultOversizeBytes, "length of an oversized line")
	fs.IntVar(&cfg.WriteBuffer, "write-buffer", DefaultWriteBuffer, "bytes buffered per connection before each write")
	fs.StringVar(&sendTimes, "send-times", "", "write event_id,sent_unix_nano CSV lines to this file, for latency measurement")
	fs.IntVar(&cfg.SendTimesEvery, "send-times-every", DefaultSendTimesEvery, "record the send time of every K-th event")
	fs.DurationVar(&cfg.ConnectTimeout, "connect-timeout", 0, "connect mode: give up connecting after this long (0: retry until interrupted)")
	fs.StringVar(&logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&file, "file", "", "replay this file's lines as they are (- for stdin) to one reader instead of generated events; --rate in lines per second (0: as fast as the reader takes them)")
	if err := flagenv.Parse(fs, args, envPrefix, os.Getenv, stdout, stderr); err != nil {
		return err
	}
	if (listen == "") == (connect == "") {
		return fmt.Errorf("give exactly one of --listen and --connect: %w", ErrUsage)
	}
	if firstID > 1<<32-1 {
		return fmt.Errorf("--first-id %d is above 4294967295: %w", firstID, ErrUsage)
	}
	cfg.FirstID = uint32(firstID)
	var err error
	if cfg.Bad, err = ParseBadClasses(bad); err != nil {
		return fmt.Errorf("--bad: %w: %w", err, ErrUsage)
	}
	if cfg.TimeMode, err = ParseTimeMode(timeMode); err != nil {
		return fmt.Errorf("--time-mode: %w: %w", err, ErrUsage)
	}
	if start != "" {
		if cfg.TimeMode != TimeSynthetic {
			return fmt.Errorf("--start needs --time-mode synthetic (wall-clock events are stamped when sent): %w", ErrUsage)
		}
		if cfg.Start, err = time.Parse(time.RFC3339Nano, start); err != nil {
			return fmt.Errorf("--start: %w: %w", err, ErrUsage)
		}
	}
	if (tlsCert == "") != (tlsKey == "") || (tlsCert != "" && listen == "") {
		return fmt.Errorf("--tls-cert and --tls-key go together, in listen mode: %w", ErrUsage)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(logLevel)); err != nil {
		return fmt.Errorf("--log-level: %w: %w", err, ErrUsage)
	}
	cfg.Log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
	if _, err := cfg.withDefaults(); err != nil {
		return fmt.Errorf("%w: %w", err, ErrUsage)
	}
	if sendTimes != "" {
		f, err := os.Create(sendTimes)
		if err != nil {
			return fmt.Errorf("creating --send-times file: %w", err)
		}
		defer f.Close()
		cfg.SendTimes = f
	}

	if file != "" {
		if cfg.Count > 0 || cfg.Duration > 0 || bad != "" || sendTimes != "" || start != "" {
			return fmt.Errorf("--file replays the file as it is: --count, --duration, --bad, --send-times and --start do not apply: %w", ErrUsage)
		}
		return replayFile(ctx, file, listen, connect, tlsCert, tlsKey, cfg, stdout)
	}
	var stats Stats
	var runErr error
	if listen != "" {
		ln, err := listener(listen, tlsCert, tlsKey)
		if err != nil {
			return err
		}
		cfg.Log.Info("listening", "addr", ln.Addr().String(), "count", cfg.Count, "duration", cfg.Duration.String(), "rate", cfg.Rate)
		stats, runErr = Serve(ctx, ln, cfg)
	} else {
		stats, runErr = Dial(ctx, connect, cfg)
	}
	line, err := json.Marshal(stats)
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("encoding the summary: %w", err))
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("printing the summary: %w", err))
	}
	if f, ok := cfg.SendTimes.(*os.File); ok {
		if err := f.Close(); err != nil {
			runErr = errors.Join(runErr, fmt.Errorf("closing --send-times file: %w", err))
		}
	}
	if runErr != nil {
		cfg.Log.Error("log source failed", "error", runErr.Error())
	}
	return runErr
}

// listener listens on addr, serving TLS with the certificate and key when given.
func listener(addr, tlsCert, tlsKey string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", addr, err)
	}
	if tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(tlsCert, tlsKey)
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("--tls-cert and --tls-key: %w", err)
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
	}
	return ln, nil
}

// replayFile runs --file: the file (or stdin for "-") to one reader, in either mode; the summary to stdout.
func replayFile(ctx context.Context, file, listen, connect, tlsCert, tlsKey string, cfg Config, stdout io.Writer) error {
	in := io.Reader(os.Stdin)
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("opening --file: %w", err)
		}
		defer f.Close()
		in = f
	}
	var ln net.Listener
	if listen != "" {
		var err error
		if ln, err = listener(listen, tlsCert, tlsKey); err != nil {
			return err
		}
		defer ln.Close()
		cfg.Log.Info("listening", "addr", ln.Addr().String(), "file", file, "rate", cfg.Rate)
	}
	st, runErr := ReplayTo(ctx, ln, connect, cfg.ConnectTimeout, in, cfg.Rate)
	line, err := json.Marshal(st)
	if err != nil {
		return errors.Join(runErr, fmt.Errorf("encoding the summary: %w", err))
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		runErr = errors.Join(runErr, fmt.Errorf("printing the summary: %w", err))
	}
	if runErr != nil {
		cfg.Log.Error("log source failed", "error", runErr.Error())
	}
	return runErr
}
