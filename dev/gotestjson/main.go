// Command gotestjson is make test's filter of `go test -json`: it prints what go test prints without -v,
// counts the tests that passed, failed and skipped, and fails on a failure or a skip that the allow-list
// (dev/test-skips.txt) does not name and explain.
//
//	go test -json ... | go run ./dev/gotestjson --phase NAME [--allow dev/test-skips.txt]
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/mwaa-kafka/pipeline/internal/gotestjson"
)

func main() {
	phase := flag.String("phase", "go test", "the phase's name, for the counts line")
	allowPath := flag.String("allow", "dev/test-skips.txt", "the allow-list of expected skips")
	flag.Parse()
	f, err := os.Open(*allowPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotestjson:", err)
		os.Exit(2)
	}
	allowed, err := gotestjson.ParseAllowed(f, *allowPath)
	f.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotestjson:", err)
		os.Exit(2)
	}
	c, err := gotestjson.Filter(os.Stdin, os.Stdout, allowed)
	fmt.Printf("%s: %s\n", *phase, c.Summary())
	if err == nil {
		err = c.Err(*allowPath)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gotestjson:", err)
		os.Exit(1)
	}
}
