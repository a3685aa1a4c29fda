package chaos

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestSourceCutsLines: the source disconnects in the middle of a line again and again and the reader dials
// it again each time. No partial line is ever forwarded as an event (each is dead-lettered as a truncated
// line), and every complete line is delivered exactly once. Both readers are run.
func TestSourceCutsLines(t *testing.T) {
	for _, impl := range []string{"highperf", "basic"} {
		t.Run(impl, func(t *testing.T) {
			cuts := pick(50, 100)
			every := pick[uint64](400, 2_000)
			n := uint64(cuts)*every + every/2
			topic, dlq := topics(t)

			src := harness.NewSource(t, n, harness.SourceOptions{CutEvery: every, Cuts: cuts})
			// Each cut line is received twice: its first half (dead-lettered) and, after the reconnection, whole.
			r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
				"--reader", impl, "--max-events", itoa(n+uint64(cuts)), "--drain-timeout", "1m")...)
			code, sum := r.Wait(pick(2*time.Minute, 5*time.Minute))
			tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
			dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)

			// Every dead letter must be the first half of a cut line, and every cut line must have one.
			partials := make(map[string]bool, cuts)
			for k := 1; k <= cuts; k++ {
				line := src.Line(uint64(k) * every)
				partials[string(line[:len(line)/2])] = true
			}
			var stray int
			for _, d := range dls {
				if d.Reason != string(event.ReasonTruncated) || !partials[string(d.Value)] {
					stray++
					continue
				}
				delete(partials, string(d.Value))
			}
			// A partial line forwarded as an event would fail validation, or carry a cut line's prefix.
			forwarded := tally.Invalid
			report.Add(harness.Row{Scenario: fmt.Sprintf("3. source cut mid-line %d times (%s reader)", cuts, impl),
				Sent: src.Written(), Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: tally.Lost(n),
				Duplicated: tally.Duplicated,
				Notes: fmt.Sprintf("%d connections; %d truncated lines dead-lettered, %d partial lines forwarded; reader exit %d in %.1fs",
					src.Conns(), len(dls)-stray, forwarded, code, sum.Duration)})
			t.Logf("%s; summary %+v", tally, sum)

			if src.CutsDone() != cuts || src.Conns() != cuts+1 {
				t.Errorf("source made %d cuts over %d connections, want %d over %d", src.CutsDone(), src.Conns(), cuts, cuts+1)
			}
			if code != 0 || !sum.Balanced() || sum.Delivered != n || sum.DeadLettered != uint64(cuts) {
				t.Errorf("exit %d, summary %+v; want 0, %d delivered, %d dead-lettered, balanced", code, sum, n, cuts)
			}
			checkExactlyOnce(t, tally, n)
			if stray != 0 || len(partials) != 0 {
				t.Errorf("%d dead letters are not a cut line's first half, %d cut lines have no dead letter (reasons %v)",
					stray, len(partials), harness.ReasonCounts(dls))
			}
		})
	}
}

// TestSourceCutsLinesListen: in listen mode the source dials the reader and hangs up mid-line on every
// connection; the good lines of every connection arrive and each partial line is dead-lettered.
func TestSourceCutsLinesListen(t *testing.T) {
	conns := pick(50, 100)
	perConn := pick[uint64](200, 1_000)
	n := uint64(conns) * perConn
	topic, dlq := topics(t)
	addr := harness.FreeAddr(t)
	r := harness.StartReader(t, readerBin, envCreds(), "--source-mode", "listen", "--source-addr", addr,
		"--credentials", "env", "--ca-file", stack.Get("KAFKA_CA_FILE"), "--topic", topic, "--dlq-topic", dlq,
		"--max-events", itoa(n+uint64(conns)), "--drain-timeout", "1m")
	r.WaitReady(time.Minute)

	gen := event.NewGenerator(7, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	var partials [][]byte
	for c := range conns {
		var buf bytes.Buffer
		for i := uint64(c) * perConn; i < uint64(c+1)*perConn; i++ {
			buf.Write(gen.AppendAt(nil, i))
			buf.WriteByte('\n')
		}
		// Half of a line that is not part of the stream: an eventId past its end.
		cut := gen.AppendAt(nil, n+uint64(c))
		partials = append(partials, cut[:len(cut)/2])
		buf.Write(cut[:len(cut)/2])
		conn, err := harness.Dial(addr)
		if err != nil {
			t.Fatalf("connection %d: %v", c, err)
		}
		if _, err := conn.Write(buf.Bytes()); err != nil {
			t.Fatalf("connection %d: writing: %v", c, err)
		}
		conn.Close()
	}
	code, sum := r.Wait(2 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	want := make(map[string]bool)
	for _, p := range partials {
		want[string(p)] = true
	}
	var stray int
	for _, d := range dls {
		if d.Reason != string(event.ReasonTruncated) || !want[string(d.Value)] {
			stray++
		}
	}
	report.Add(harness.Row{Scenario: fmt.Sprintf("3. source hangs up mid-line on %d connections (listen mode)", conns),
		Sent: n, Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: tally.Lost(n), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("%d partial lines forwarded (out-of-stream or invalid on the topic); reader exit %d", tally.Invalid+tally.OutOfRange, code)})
	if code != 0 || !sum.Balanced() || sum.Delivered != n || sum.DeadLettered != uint64(conns) {
		t.Errorf("exit %d, summary %+v; want 0, %d delivered, %d dead-lettered", code, sum, n, conns)
	}
	checkExactlyOnce(t, tally, n)
	if stray != 0 || len(dls) != conns {
		t.Errorf("%d dead letters, %d of them not a partial line (reasons %v), want %d", len(dls), stray, harness.ReasonCounts(dls), conns)
	}
}
