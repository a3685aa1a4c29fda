// Command reader is the persistent TCP log reader: it reads JSON log lines from a TCP source, validates them
// and produces them to Kafka, dead-lettering what it cannot deliver. It is the Fargate task's entry point.
//
// `reader replay [flags]` sends the lines Kafka refused (dead letters of reason delivery_failed) to the topic
// again, without duplicating those already there; it ships in the same image so a one-off task with the
// reader's environment can run it.
//
// Exit status: 0 on success and for --help (printed to stdout), 2 for a command-line or configuration
// mistake (printed to stderr), 1 for a run that failed.
//
// The run's summary is one JSON line on stdout and its log JSON on stderr, for ECS, Airflow and log
// collectors. A person running it at a terminal (stdout and stderr both one) gets a failure once, as one
// plain line on stderr ("reader: ..."), instead of an ERROR record, and no summary when nothing was read
// (a start that failed: no AWS credentials, the secret unreachable).
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/memlimit"
	"github.com/mwaa-kafka/pipeline/internal/pipeline"
)

func main() {
	os.Exit(run())
}

func run() int {
	// SIGHUP only ever asks for the source TLS material to be reloaded (the pipeline does that when TLS is
	// on). Go's default for a SIGHUP nobody is notified of is to exit at once, without a drain, so it is
	// caught for the whole life of the process, before anything else: then it can never end the reader,
	// whether TLS is off, not started yet, or already stopped.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)

	if len(os.Args) > 1 && os.Args[1] == "replay" {
		return replay(os.Args[2:])
	}

	cfg, err := pipeline.ParseConfig(os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reader:", err)
		}
		return flagenv.ExitCode(err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "reader: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)
	switch limit, from, err := memlimit.Apply(os.Getenv, memlimit.CgroupRoot); {
	case errors.Is(err, memlimit.ErrNoLimit):
		log.Info("no Go memory limit: no GOMEMLIMIT and no container memory limit")
	case err != nil:
		log.Warn("no Go memory limit: set GOMEMLIMIT", "err", err)
	default:
		log.Info("Go memory limit", "bytes", limit, "from", from)
	}

	// SIGTERM (ECS stopping the task) and SIGINT stop reading; the run then drains before returning.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	stopHangups := pipeline.LogHangups(hup, cfg, log)
	defer stopHangups()
	person := isTerminal(os.Stdout) && isTerminal(os.Stderr)
	var held bytes.Buffer
	out := io.Writer(os.Stdout)
	if person {
		out = &held // Run writes the summary once, at its end
	}
	sum, err := pipeline.Run(ctx, cfg, out, log)
	if person && (err == nil || sum.Received > 0) {
		_, _ = os.Stdout.Write(held.Bytes())
	}
	if err != nil {
		if person {
			fmt.Fprintln(os.Stderr, "reader:", err)
		} else {
			log.Error("reader failed", "err", err)
		}
		return 1
	}
	return 0
}

// replay runs `reader replay`: its JSON summary goes to stdout, its log to stderr.
func replay(args []string) int {
	cfg, err := pipeline.ParseReplayConfig(args, os.Getenv, os.Stdout, os.Stderr)
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "reader replay:", err)
		}
		return flagenv.ExitCode(err)
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := pipeline.Replay(ctx, cfg, os.Stdout, log); err != nil {
		log.Error("replay failed", "err", err)
		return 1
	}
	return 0
}
