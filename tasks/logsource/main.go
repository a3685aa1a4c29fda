// Command logsource is the TCP log source: it streams generated NDJSON log events to readers, for demos,
// tests and load generation.
//
//	logsource --listen 127.0.0.1:7000 --count 100000 --rate 20000 --seed 1 --first-id 1
//	logsource --connect reader:7000 --duration 4m --bad all --bad-every 1000
//
// In listen mode it serves the readers that connect (--clients of them to completion); in connect mode it
// dials a listening reader, retrying until it is up. All connections share one sequence of --count events.
// When done it prints one JSON line to stdout:
//
//	{"sent":N,"first_event_id":F,"last_event_id":L,"bytes":B,"bad_sent":{"invalid_json":3},"crlf_sent":0,
//	 "lost":0,"connections":1,"seconds":S}
//
// sent counts good events (crlf lines included), bad_sent the injected bad lines by class. Every flag
// --foo-bar may also be set by the environment variable LOGSOURCE_FOO_BAR; --help lists them. Logs are
// JSON on stderr. Exit status: 0 on success and for --help (printed to stdout), 2 for command-line mistakes
// (explained on stderr), 1 for any other failure.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := logsource.RunCLI(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(flagenv.ExitCode(err))
}
