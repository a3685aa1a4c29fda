package abuse

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// trickle is a connection that sends a line one byte per second and never finishes it in time.
type trickle struct {
	conn net.Conn
	sent atomic.Int64
}

// TestConnectionFlood: in listen mode, 2,000 simultaneous connections, idle connections that never send
// (slowloris) and connections that send one byte per second. The connection limit holds (the excess is
// refused and counted in the metrics), the reader's file descriptors stay bounded, idle and trickling
// connections are closed after the idle timeout (a trickle never finishes its line), a source that was
// already streaming keeps flowing throughout, and a new source is served once the others are gone.
func TestConnectionFlood(t *testing.T) {
	const (
		maxConns = 512
		flood    = 2000
		trickles = 20
		rate     = 2000 // lines per second of the streaming source
	)
	idle := pick(3*time.Second, 10*time.Second)
	e := loadEnv(t)
	topic, dlq := e.topics(t)
	addr := harness.FreeAddr(t)
	r := harness.StartReader(t, readerBin, e.creds(), e.baseArgs("listen", addr, topic, dlq,
		"--max-conns", itoa(maxConns), "--idle-timeout", idle.String(),
		// Every connection comes from 127.0.0.1: this test is about the limit on all of them.
		"--max-conns-per-addr", itoa(flood))...)
	r.WaitReady(time.Minute)
	fdsBefore := r.FDs()

	gen := event.NewGenerator(11, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	var ids atomic.Uint64 // eventIds handed out, shared by the streaming sources

	// A good source that streams throughout.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamer, err := harness.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var streamErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		streamErr = streamLines(ctx, streamer, gen, &ids, rate)
		streamer.Close()
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	// Connections that send one byte per second: each byte restarts the idle timer.
	var slow []*trickle
	for range trickles {
		c, err := harness.Dial(addr)
		if err != nil {
			t.Fatal(err)
		}
		tr := &trickle{conn: c}
		slow = append(slow, tr)
		line := gen.AppendAt(nil, 1<<30) // an eventId outside the stream: it is never completed
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for i := 0; ; i++ {
				if _, err := c.Write(line[i%len(line) : i%len(line)+1]); err != nil {
					return
				}
				tr.sent.Add(1)
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}

	// The flood: idle connections, all at once.
	floodStart := time.Now()
	conns := make([]net.Conn, flood)
	var dialErrs atomic.Int64
	var fwg sync.WaitGroup
	for i := range conns {
		fwg.Add(1)
		go func() {
			defer fwg.Done()
			c, err := net.DialTimeout("tcp", addr, 10*time.Second)
			if err != nil {
				dialErrs.Add(1)
				return
			}
			conns[i] = c
		}()
	}
	fwg.Wait()
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	// A refused connection is closed by the reader at once; an accepted one stays open, silent. Wait until
	// the reader has taken every connection of the flood off its listen queue (accepted or refused) before
	// looking at either.
	dialled := float64(1 + trickles + flood - int(dialErrs.Load()))
	m := waitMetrics(t, r, time.Minute, "every connection accepted or refused", func(m map[string]float64) bool {
		return m["logreader_connections_total"]+m["logreader_connections_refused_total"] >= dialled
	})
	refusedSeen := countClosed(conns, time.Second)
	fdsFlood := r.FDs()
	refused := m["logreader_connections_refused_total"]
	active := m["logreader_connections_active"]
	idsAtFlood, floodSeen := ids.Load(), time.Now()

	// After the idle timeout the silent and the trickling connections are gone; the streamer remains. The
	// reader's gauge says when: then every client must see its connection closed.
	m2 := waitMetrics(t, r, idle+time.Minute, "idle connections closed", func(m map[string]float64) bool {
		return m["logreader_connections_active"] <= 1
	})
	idleFor := time.Since(floodSeen)
	closedAfterIdle := countClosed(conns, time.Second)
	var slowConns []net.Conn
	for _, tr := range slow {
		slowConns = append(slowConns, tr.conn)
	}
	tricklesClosed := countClosed(slowConns, time.Second)
	activeAfterIdle := m2["logreader_connections_active"]
	idsAfterIdle := ids.Load()

	// A new good source is served now.
	late, err := harness.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	var lateLines []byte
	lateFirst := ids.Add(1000) - 1000
	for i := lateFirst; i < lateFirst+1000; i++ {
		lateLines = append(gen.AppendAt(lateLines, i), '\n')
	}
	if _, err := late.Write(lateLines); err != nil {
		t.Fatalf("the late source could not write: %v", err)
	}
	late.Close()

	cancel()
	wg.Wait()
	for _, tr := range slow {
		tr.conn.Close()
	}
	total := ids.Load()
	got := waitReceived(t, r, total+trickles, time.Minute)
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(time.Minute)

	tally := harness.ReadEvents(t, e.plaintext, topic, 1, total)
	dls := harness.ReadDeadLetters(t, e.plaintext, dlq)
	report.Add(harness.Row{Scenario: fmt.Sprintf("C. %d simultaneous connections, %d trickling 1 byte/s, idle timeout %v (listen mode, --max-conns %d)",
		flood, trickles, idle, maxConns), Sent: total, Delivered: tally.Unique, DeadLettered: uint64(len(dls)),
		Lost: total - min(total, tally.Unique), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("refused %v (seen closed by clients %d); active %v during the flood, %v after the idle timeout (%d of %d trickles closed); "+
			"fds %d before, %d during, peak %d; streamer wrote %d lines during the flood; peak RSS %s; exit %d",
			refused, refusedSeen, active, activeAfterIdle, tricklesClosed, trickles, fdsBefore, fdsFlood, r.PeakFDs(), idsAfterIdle-idsAtFlood, mib(r.PeakRSS()), code)})
	t.Logf("%s; received %d; summary %+v; dial errors %d; flood took %v", tally, got, sum, dialErrs.Load(), time.Since(floodStart))

	if streamErr != nil && !errors.Is(streamErr, context.Canceled) {
		t.Errorf("the streaming source failed: %v", streamErr)
	}
	if wantRefused := float64(flood - (maxConns - 1 - trickles)); refused < wantRefused {
		t.Errorf("refused %v connections, want at least %v", refused, wantRefused)
	}
	if active > maxConns {
		t.Errorf("%v connections active, more than --max-conns %d", active, maxConns)
	}
	if activeAfterIdle != 1 || tricklesClosed != trickles {
		t.Errorf("%v connections active after the idle timeout (%d of %d trickles closed), want 1 (the streamer)",
			activeAfterIdle, tricklesClosed, trickles)
	}
	if closedAfterIdle != flood-int(dialErrs.Load()) {
		t.Errorf("%d of %d flood connections closed after the idle timeout, want all", closedAfterIdle, flood-int(dialErrs.Load()))
	}
	if limit := fdsBefore + maxConns + 16; r.PeakFDs() > limit {
		t.Errorf("reader had %d file descriptors open, more than %d", r.PeakFDs(), limit)
	}
	// The streamer keeps its pace by the clock, so it falls behind only when the reader stops taking its lines.
	if wrote, due := idsAfterIdle-idsAtFlood, uint64(float64(rate)*idleFor.Seconds()); wrote < due/2 {
		t.Errorf("the streaming source wrote only %d lines in the %v after the flood, %d were due", wrote, idleFor.Round(time.Millisecond), due)
	}
	if code != 0 || !sum.Balanced() || sum.Failed != 0 {
		t.Errorf("exit %d, summary %+v; want 0, balanced", code, sum)
	}
	if tally.Unique != total || tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("topic: %s; want all %d lines of the streaming and late sources exactly once", tally, total)
	}
	reasons := harness.ReasonCounts(dls)
	if reasons[string(event.ReasonTruncated)] != trickles || len(dls) != trickles {
		t.Errorf("dead letters %v, want %d truncated lines (the trickles' unfinished lines)", reasons, trickles)
	}
	for _, d := range dls {
		if !strings.Contains(d.Detail, "idle timeout") {
			t.Errorf("dead letter detail %q, want the idle timeout named", d.Detail)
		}
	}
}

// streamLines writes lines at rate per second until ctx ends, taking eventIds from ids. Every 20 ms it writes
// the lines due by the clock since it started, so a late tick (a busy machine) does not lower its rate: it
// falls behind only while a write is held back, that is while the reader does not read.
func streamLines(ctx context.Context, c net.Conn, gen *event.Generator, ids *atomic.Uint64, rate int) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	start := time.Now()
	var (
		buf  []byte
		sent uint64
	)
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
		per := uint64(time.Since(start).Seconds()*float64(rate)) - sent
		if per == 0 {
			continue
		}
		sent += per
		first := ids.Add(per) - per
		buf = buf[:0]
		for i := first; i < first+per; i++ {
			buf = append(gen.AppendAt(buf, i), '\n')
		}
		c.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("streaming: %w", err)
		}
	}
}

// waitMetrics scrapes the reader's metrics until cond holds, failing the test with the last scrape when it
// does not within d.
func waitMetrics(t *testing.T, r *harness.Reader, d time.Duration, what string, cond func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(d)
	var last map[string]float64
	for {
		m, err := r.Metrics()
		if err == nil {
			if last = m; cond(m) {
				return m
			}
		}
		if time.Now().After(deadline) || r.Exited() {
			t.Fatalf("waiting for %s: not within %v (last scrape: %d connections, %d refused, %d active; err %v)", what, d,
				int(last["logreader_connections_total"]), int(last["logreader_connections_refused_total"]), int(last["logreader_connections_active"]), err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// countClosed counts the connections the peer has closed: a read returns EOF or a reset within d.
func countClosed(conns []net.Conn, d time.Duration) int {
	var n atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.SetReadDeadline(time.Now().Add(d))
			_, err := c.Read(make([]byte, 1))
			if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) { // io.EOF or a reset
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	return int(n.Load())
}
