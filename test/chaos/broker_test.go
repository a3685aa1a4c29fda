package chaos

import (
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
	killedAt := time.Now()
	writtenAtKill := src.Written()
	if err := stack.KillBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The broker must have died mid-stream: with lines still to deliver (the kill takes a script's run, and
	// on a busy machine the stream could end meanwhile).
	m, err := r.Metrics()
	if err != nil {
		t.Fatalf("scraping the reader's metrics after the kill: %v", err)
	}
	deliveredAtKill := uint64(m["logreader_events_delivered_total"])
	if deliveredAtKill >= n {
		t.Fatalf("all %d events were delivered before the broker died: not mid-stream", n)
	}
	time.Sleep(outage)
	if err := stack.StartBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killedAt)

	code, sum := r.Wait(5 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	lost := tally.Lost(n)
	report.Add(harness.Row{Scenario: "1. broker SIGKILLed " + outage.String() + " mid-stream", Sent: src.Written(),
		Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: lost, Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("killed at %d written, %d delivered; broker down %.1fs; reader exit %d in %.1fs; peak RSS %s",
			writtenAtKill, deliveredAtKill, down.Seconds(), code, sum.Duration, mib(r.PeakRSS()))})
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
//
// The source is rate-limited so that the rest of the stream takes seconds whatever the machine's load: the
// broker is frozen (every thread stopped) while the stream still runs, and the test checks that it was.
// Once frozen, the reader's queue and the socket buffers fill; the measurement starts only when a write of
// the source has been held back for a second (TCP backpressure reached it), and from then on the source must
// make no progress at all.
func TestBrokerPaused(t *testing.T) {
	n := pick[uint64](150_000, 1_000_000)
	rate := pick(20_000, 40_000)
	pause := pick(5*time.Second, 30*time.Second)
	// The quick version uses a smaller local queue than the default (8192 KiB) so that backpressure shows
	// within a few seconds.
	queueKB := pick(4096, 8192)
	topic, dlq := topics(t)
	ensureBroker(t)

	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		"--max-events", itoa(n), "--drain-timeout", "3m", "--queue-max-kbytes", itoa(queueKB))...)
	if err := src.WaitWritten(n/10, 3*time.Minute); err != nil {
		t.Fatalf("waiting for a tenth of the stream: %v (written %d)", err, src.Written())
	}
	rssBefore := r.PeakRSS()
	if err := stack.PauseBroker(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = stack.ResumeBroker() })
	pausedAt := time.Now()
	writtenAtPause := src.Written()
	if writtenAtPause >= n {
		t.Fatalf("the stream had ended (%d lines written) when the broker was frozen: nothing to measure", writtenAtPause)
	}
	// The queue and the buffers between the source and the broker fill; then a write of the source waits.
	if err := src.WaitBlocked(time.Second, time.Minute); err != nil {
		t.Fatalf("while the broker was frozen: %v; reader RSS %s", err, mib(r.PeakRSS()))
	}
	blockedAfter := time.Since(pausedAt)
	writtenBlocked := src.Written()
	rssBlocked := r.PeakRSS()
	// From now on the source must make no progress, for half the pause (at least).
	time.Sleep(pause / 2)
	writtenEnd := src.Written()
	rssPaused := r.PeakRSS()
	if rest := time.Until(pausedAt.Add(pause)); rest > 0 {
		time.Sleep(rest)
	}
	if err := stack.ResumeBroker(); err != nil {
		t.Fatal(err)
	}
	paused := time.Since(pausedAt)

	code, sum := r.Wait(5 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	lineBytes := src.Bytes() / max(src.Written(), 1)
	report.Add(harness.Row{Scenario: "2. broker SIGSTOPped " + pause.String(), Sent: src.Written(),
		Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: tally.Lost(n), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("source at %d lines/s; frozen at %d written, held back by TCP %.1fs later at %d (%s buffered on the way), then %d lines in %v (stalled at %d of %d); "+
			"reader RSS %s before, peak %s while frozen (queue %d KiB), %s overall; paused %.1fs",
			rate, writtenAtPause, blockedAfter.Seconds(), writtenBlocked, mib((writtenBlocked-writtenAtPause)*lineBytes),
			writtenEnd-writtenBlocked, pause/2, writtenEnd, n, mib(rssBefore), mib(rssPaused), queueKB, mib(r.PeakRSS()), paused.Seconds())})
	t.Logf("%s; summary %+v; rss when held back %s", tally, sum, mib(rssBlocked))

	if progress := writtenEnd - writtenBlocked; progress > 0 {
		t.Errorf("the source wrote %d lines in the %v after it was held back, want 0 (TCP backpressure)", progress, pause/2)
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
