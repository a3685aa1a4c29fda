// Command logsource is the TCP log source: it streams generated NDJSON log events to readers, for demos,
// tests and load generation. See package logsource for the flags and the JSON summary it prints.
package main

import (
	"context"
	"errors"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/logsource"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := logsource.RunCLI(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, logsource.ErrUsage):
		os.Exit(2)
	case err != nil:
		os.Exit(1)
	}
}
