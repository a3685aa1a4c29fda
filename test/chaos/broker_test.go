package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestBrokerKilled: the broker is SIGKILLed in the middle of the stream and restarted after an outage. With
// acks=all and idempotence every event arrives exactly once.
func TestBrokerKilled(t *testing.T) {
	n := pick[uint64](50_000, 1_000_000)
	outage := pick(4*time.Second, 30*time.Second)
	topic, dlq := topics(t)
	ensureBroker(t)

	src := harness.NewSource(t, n, harness.SourceOptions{})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		"--max-events", itoa(n), "--drain-timeout", "3m")...)
	if err := src.WaitWritten(n/2, 3*time.Minute); err != nil {
		t.Fatalf("waiting for half the stream: %v (written %d)", err, src.Written())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	killedAt := time.Now()
	writtenAtKill := src.Written()
	if err := stack.KillBroker(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(outage)
	if err := stack.StartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killedAt)

	code, sum := r.Wait(5 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	lost := tally.Lost(n)
	report.Add(harness.Row{Scenario: "1. broker SIGKILLed " + outage.String() + " mid-stream", Sent: src.Written(),
		Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: lost, Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("killed at %d written; broker down %.1fs; reader exit %d in %.1fs; peak RSS %s",
			writtenAtKill, down.Seconds(), code, sum.Duration, mib(r.PeakRSS()))})
	t.Logf("%s; summary %+v", tally, sum)

	if code != 0 {
		t.Errorf("reader exit code = %d, want 0 (summary %+v)", code, sum)
	}
	if sum.Received != n || sum.Delivered != n || !sum.Balanced() {
		t.Errorf("summary = %+v, want %d received and delivered, balanced", sum, n)
	}
	checkExactlyOnce(t, tally, n)
	if len(dls) != 0 {
		t.Errorf("%d dead letters, want none (reasons %v)", len(dls), harness.ReasonCounts(dls))
	}
}

// TestBrokerPaused: the broker is frozen with SIGSTOP. The reader's memory stays bounded, the source is held
// back by TCP backpressure (it stops making progress while the broker is frozen), and after SIGCONT every
// event is delivered.
func TestBrokerPaused(t *testing.T) {
	n := pick[uint64](100_000, 1_000_000)
	pause := pick(5*time.Second, 30*time.Second)
	// The quick version uses a smaller local queue than the default (8192 KiB) so that backpressure shows
	// within a few seconds.
	queueKB := pick(4096, 8192)
	topic, dlq := topics(t)
	ensureBroker(t)

	src := harness.NewSource(t, n, harness.SourceOptions{})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		"--max-events", itoa(n), "--drain-timeout", "3m", "--queue-max-kbytes", itoa(queueKB))...)
	if err := src.WaitWritten(n/5, 3*time.Minute); err != nil {
		t.Fatalf("waiting for a fifth of the stream: %v (written %d)", err, src.Written())
	}
	rssBefore := r.PeakRSS()
	if err := stack.PauseBroker(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.ResumeBroker() })
	pausedAt := time.Now()
	writtenAtPause := src.Written()
	// The first half of the pause fills the reader's queue and the socket buffers; in the second half the
	// source must make no progress at all.
	time.Sleep(pause / 2)
	writtenMid := src.Written()
	rssMid := r.PeakRSS()
	time.Sleep(pause - pause/2)
	writtenEnd := src.Written()
	rssPaused := r.PeakRSS()
	if err := stack.ResumeBroker(); err != nil {
		t.Fatal(err)
	}
	paused := time.Since(pausedAt)

	code, sum := r.Wait(5 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	report.Add(harness.Row{Scenario: "2. broker SIGSTOPped " + pause.String(), Sent: src.Written(),
		Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: tally.Lost(n), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("source progress while frozen: %d lines in the first half, %d in the second half (stalled at %d of %d); "+
			"reader RSS %s before, peak %s while frozen (queue %d KiB), %s overall; paused %.1fs",
			writtenMid-writtenAtPause, writtenEnd-writtenMid, writtenEnd, n, mib(rssBefore), mib(rssPaused), queueKB,
			mib(r.PeakRSS()), paused.Seconds())})
	t.Logf("%s; summary %+v; rss mid %s", tally, sum, mib(rssMid))

	if writtenEnd >= n {
		t.Errorf("the source wrote the whole stream (%d) while the broker was frozen: no backpressure", n)
	}
	if progress := writtenEnd - writtenMid; progress > 0 {
		t.Errorf("the source wrote %d lines in the second half of the pause, want 0 (TCP backpressure)", progress)
	}
	// The bound: the local queue, the read buffers and the runtime, well under what the stream would take.
	if limit := uint64(queueKB)<<10*3 + 128<<20; rssPaused > limit {
		t.Errorf("reader RSS while frozen = %s, want under %s", mib(rssPaused), mib(limit))
	}
	if code != 0 || sum.Received != n || sum.Delivered != n || !sum.Balanced() {
		t.Errorf("exit %d, summary = %+v, want 0 and %d delivered, balanced", code, sum, n)
	}
	checkExactlyOnce(t, tally, n)
	if len(dls) != 0 {
		t.Errorf("%d dead letters, want none (reasons %v)", len(dls), harness.ReasonCounts(dls))
	}
}

// checkExactlyOnce fails the test unless each of the n eventIds arrived exactly once and nothing else did.
func checkExactlyOnce(t *testing.T, tally *harness.Tally, n uint64) {
	t.Helper()
	if lost := tally.Lost(n); lost != 0 {
		t.Errorf("%d of %d events lost; first missing eventIds %v", lost, n, tally.Missing(n, 10))
	}
	if tally.Duplicated != 0 {
		t.Errorf("%d duplicated events", tally.Duplicated)
	}
	if tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("%d invalid and %d out-of-range lines on the topic", tally.Invalid, tally.OutOfRange)
	}
}
