package tcpin

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"
)

// FuzzTCPLogReader checks TCPLogReader's framing (bufio lines, the partial start of a line longer than the
// bufio buffer, the skip after an oversized line, the cut at the end) against the reference framing. Each
// input is sent over a real loopback connection in writes of the input's read size, and the reader runs
// until the source hangs up: in connect mode with Once, Run returns only once every line read was handed
// on, so the comparison needs no timing. The seeds are FuzzFramer's (framerSeeds), long lines included.
func FuzzTCPLogReader(f *testing.F) {
	for _, in := range framerSeeds {
		f.Add(in.template, in.maxLine, in.chunk, in.stretch)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { ln.Close() })
	quiet := slog.New(slog.DiscardHandler)
	f.Fuzz(func(t *testing.T, template []byte, maxLine uint32, chunk, stretch uint16) {
		input, max, step := framerInput{template, maxLine, chunk, stretch}.stream()
		rec := newRecorder()
		r, err := NewTCPLogReader(Config{Mode: Connect, Addr: ln.Addr().String(), Once: true, MaxLineBytes: max, Logger: quiet}, nil, rec)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		done := make(chan error, 1)
		go func() { done <- r.Run(ctx) }()
		conn, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		conn.(*net.TCPConn).SetNoDelay(true)
		for rest := input; len(rest) > 0; {
			n := min(step, len(rest))
			if _, err := conn.Write(rest[:n]); err != nil {
				t.Fatalf("writing to the reader: %v", err)
			}
			rest = rest[n:]
		}
		conn.Close()
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("the reader did not finish the connection within a minute")
		}
		got, want := normalize(rec.snapshot()), normalize(reference(input, max))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("TCPLogReader(%q, max=%d, step=%d) = %.300q, want %.300q", shorten(input), max, step, got, want)
		}
	})
}
