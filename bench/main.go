// Command bench runs the side-by-side benchmark of our TCP readers against kcat, rsyslog and syslog-ng on a
// local broker of its own (`make bench`; `go run ./bench --quick` is the small mode `make test` runs).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/bench/internal/harness"
)

func main() {
	os.Exit(run())
}

func run() int {
	cfg, err := harness.ParseConfig(os.Args[1:], os.Stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if _, err := harness.Run(ctx, cfg, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}
