package tcpin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/certtest"
)

// logCapture is a JSON slog handler's output, safe for concurrent use, read back record by record.
type logCapture struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (c *logCapture) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.buf.Write(p)
}

func (c *logCapture) logger() *slog.Logger { return slog.New(slog.NewJSONHandler(c, nil)) }

// records are the logged records whose message is msg, decoded.
func (c *logCapture) records(tb testing.TB, msg string) []map[string]any {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(c.buf.String(), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// TestTLSRefusalsLoggedPerReason: from one source address, the first refusal of each reason in an interval is
// logged, and what was not logged is reported with its count when the interval ends and when the reader
// stops, so logged plus reported is every refusal.
func TestTLSRefusalsLoggedPerReason(t *testing.T) {
	const interval = 2 * time.Second
	p := newPKI(t)
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			logs := &logCapture{}
			obs := &countingObserver{}
			ln := listen(t)
			addr := ln.Addr().String()
			stop := startReader(t, mk, Config{Mode: Listen, TLS: p.listenTLS(t, true, "app-01"), Observer: obs,
				Logger: logs.logger(), LogInterval: interval, IdleTimeout: time.Minute}, ln, newRecorder())
			plain := func() error {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					return err
				}
				defer c.Close()
				c.Write([]byte(`{"eventId":1}` + "\n"))
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				_, err = c.Read(make([]byte, 1))
				if errors.Is(err, io.EOF) {
					return errors.New("closed")
				}
				return err
			}
			refusals := []struct {
				reason string
				client func() error
			}{
				{HandshakeNoClientCert, func() error { return sendTLS(addr, p.clientTLS(t, certtest.Pair{}), "x\n") }},
				{HandshakeUnknownAuthority, func() error { return sendTLS(addr, p.clientTLS(t, p.alien), "x\n") }},
				{HandshakeExpired, func() error { return sendTLS(addr, p.clientTLS(t, p.expired), "x\n") }},
				{HandshakeNotAllowed, func() error { return sendTLS(addr, p.clientTLS(t, p.stranger), "x\n") }},
				{HandshakeNotTLS, plain},
				{HandshakeNotTLS, plain},
				{HandshakeNotTLS, plain},
			}
			want := map[string]int{}
			refuse := func(reason string, client func() error) {
				t.Helper()
				want[reason]++
				if err := client(); err == nil {
					t.Fatalf("%s: the client was not refused", reason)
				}
				waitUntil(t, 5*time.Second, func() bool { return obs.failures()[reason] == want[reason] })
			}
			start := time.Now()
			for _, r := range refusals {
				refuse(r.reason, r.client)
			}
			if took := time.Since(start); took >= interval {
				t.Fatalf("the refusals took %v, longer than the log interval %v: the test proves nothing", took, interval)
			}
			logged := func() map[string]int {
				n := map[string]int{}
				for _, rec := range logs.records(t, "TLS handshake failed") {
					n[rec["reason"].(string)]++
				}
				return n
			}
			for reason := range want {
				if logged()[reason] != 1 {
					t.Errorf("refusals of reason %s logged %d times within one interval, want once: %v", reason, logged()[reason], logged())
				}
			}
			// The interval ends: the two plain-TCP refusals not logged are reported, without waiting for another.
			waitUntil(t, 3*interval, func() bool { return len(logs.records(t, "TLS handshake failures not logged")) > 0 })
			reports := logs.records(t, "TLS handshake failures not logged")
			if len(reports) != 1 || reports[0]["remote_host"] != "127.0.0.1" || reports[0]["at_stop"] != false {
				t.Fatalf("reports at the interval's end = %v, want one for 127.0.0.1", reports)
			}
			if got := reports[0]["not_logged"].(map[string]any); len(got) != 1 || got[HandshakeNotTLS] != 2.0 {
				t.Errorf("not_logged = %v, want {%s: 2}", got, HandshakeNotTLS)
			}
			// A new interval: its first refusal is logged again; the second is reported when the reader stops.
			refuse(HandshakeNotTLS, plain)
			refuse(HandshakeNotTLS, plain)
			stop()
			if got := logged()[HandshakeNotTLS]; got != 2 {
				t.Errorf("plain-TCP refusals logged %d times, want 2 (one per interval)", got)
			}
			reports = logs.records(t, "TLS handshake failures not logged")
			if len(reports) != 2 || reports[1]["at_stop"] != true {
				t.Fatalf("reports = %v, want a second one at stop", reports)
			}
			// Every refusal is either logged or counted in a report.
			total := logged()
			for _, rec := range reports {
				for reason, n := range rec["not_logged"].(map[string]any) {
					total[reason] += int(n.(float64))
				}
			}
			if len(total) != len(want) {
				t.Errorf("logged and reported %v, want %v", total, want)
			}
			for reason, n := range want {
				if total[reason] != n {
					t.Errorf("logged and reported %v, want %v", total, want)
					break
				}
			}
		})
	}
}

// waitUntil polls cond until it holds or d passes.
func waitUntil(tb testing.TB, d time.Duration, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("condition not met within %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
