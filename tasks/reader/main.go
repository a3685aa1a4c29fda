// Command reader is the persistent TCP log reader: it reads JSON log lines from a TCP source, validates them
// and produces them to Kafka, dead-lettering what it cannot deliver. It is the Fargate task's entry point.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/pipeline"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := pipeline.ParseConfig(os.Args[1:], os.Getenv, os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reader:", err)
		return 2
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(cfg.LogLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "reader: --log-level:", err)
		return 2
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(log)

	// SIGTERM (ECS stopping the task) and SIGINT stop reading; the run then drains before returning.
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := pipeline.Run(ctx, cfg, os.Stdout, log); err != nil {
		log.Error("reader failed", "err", err)
		return 1
	}
	return 0
}
