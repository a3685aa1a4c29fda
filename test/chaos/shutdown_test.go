package chaos

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestReaderSIGTERMBrokerDown: SIGTERM while the broker is down and the reader is held back (its local queue
// full, Produce calls waiting for room). The whole shutdown is bounded by --drain-timeout, which the task's
// stop timeout exceeds: the summary must be out within it (it used to take up to twice that plus the close,
// past ECS's SIGKILL), balance, and count as failed what could not be delivered; the drain's purge is logged
// as a dead-letter burst (WARN) and closed, and the stall gets its closing line.
func TestReaderSIGTERMBrokerDown(t *testing.T) {
	// The full version uses the reader's default drain timeout, the one the task definition runs with.
	drain := pick(8*time.Second, 30*time.Second)
	const n = 5_000_000 // more than is read before SIGTERM: the stream runs throughout
	topic, dlq := topics(t)
	ensureBroker(t)

	src := harness.NewSource(t, n, harness.SourceOptions{Rate: 20_000})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		"--drain-timeout", drain.String(), "--stall-after", "2s", "--unhealthy-after", "4s")...)
	r.WaitReady(2 * time.Minute)
	if err := src.WaitWritten(40_000, 2*time.Minute); err != nil {
		t.Fatalf("waiting for the stream: %v (written %d)", err, src.Written())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	writtenAtKill := src.Written()
	if err := stack.KillBroker(ctx); err != nil {
		t.Fatal(err)
	}
	// The fault took hold: the broker refuses connections, and the reader stopped reading (the source makes
	// no progress for a whole second: the local queue is full and TCP holds the source back).
	broker := strings.TrimPrefix(stack.PlaintextBootstrap(), "PLAINTEXT://")
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(100 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", broker, time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatalf("the broker at %s still accepts connections a minute after the kill", broker)
		}
	}
	held := waitHeldBack(t, src, time.Minute)
	m, err := r.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	if m["logreader_lines_in_flight"] == 0 {
		t.Fatalf("no line waits for Kafka at SIGTERM: %v", m)
	}

	termAt := time.Now()
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(drain + time.Minute)
	exitAfter := time.Since(termAt)
	if err := stack.StartBroker(ctx); err != nil {
		t.Fatal(err)
	}
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	notDelivered := int64(sum.Received) - int64(tally.Unique) - int64(len(dls))
	report.Add(harness.Row{Scenario: "9. reader SIGTERMed with the broker down", Sent: src.Written(), Delivered: tally.Unique,
		DeadLettered: uint64(len(dls)), Failed: sum.Failed, Lost: uint64(max(notDelivered, 0)), Duplicated: tally.Duplicated,
		PeakRSS: r.PeakRSS(),
		Notes: fmt.Sprintf("broker SIGKILLed at %d written; source held back at %d; %.0f lines in flight at SIGTERM; "+
			"exit %d %.1fs after SIGTERM (--drain-timeout %s); summary balanced %v, %d failed (%d of them reached the topic before the kill, %.0f abandoned at the deadline)",
			writtenAtKill, held, m["logreader_lines_in_flight"], code, exitAfter.Seconds(), drain, sum.Balanced(), sum.Failed,
			tally.Unique-min(tally.Unique, sum.Delivered), abandonedAt(r))})
	t.Logf("%s; summary %+v; exit %d after %v", tally, sum, code, exitAfter.Round(time.Millisecond))

	// 2 s of slack for the process's own exit; the task definition leaves 10 s after the drain timeout.
	if exitAfter > drain+2*time.Second {
		t.Errorf("the reader exited %v after SIGTERM, want within --drain-timeout %v", exitAfter.Round(time.Millisecond), drain)
	}
	if sum.Received == 0 || !sum.Balanced() {
		t.Errorf("summary = %+v, want one that balances", sum)
	}
	if sum.Failed == 0 || sum.Failed+sum.Delivered+sum.DeadLettered != sum.Received {
		t.Errorf("summary = %+v, want the lines that could not be delivered counted failed", sum)
	}
	if code != 1 || !strings.Contains(sum.Error, "neither delivered nor dead-lettered") {
		t.Errorf("exit %d, error %q: want 1, saying lines were neither delivered nor dead-lettered", code, sum.Error)
	}
	// What the summary says delivered is on the topic; a failed line may be too (the broker wrote it, then
	// died before it answered), never twice.
	if tally.Unique < sum.Delivered || tally.Unique > sum.Delivered+sum.Failed || tally.Duplicated != 0 || tally.Invalid != 0 {
		t.Errorf("the topic holds %d distinct events (%d duplicated, %d invalid); the summary says %d delivered, %d failed",
			tally.Unique, tally.Duplicated, tally.Invalid, sum.Delivered, sum.Failed)
	}

	// Nothing is only in the summary: the purge's dead-letter attempts are a burst with its WARN and its end,
	// and the stall is closed. Lines the close had not reported on by the deadline (a loaded machine, a short
	// drain timeout) are counted failed without a dead-letter attempt, and say so once.
	abandoned := abandonedAt(r)
	start, end := logRecords(r, "lines dead-lettered"), logRecords(r, "dead-lettering stopped")
	if len(start) != 1 || len(end) != 1 || end[0]["at_shutdown"] != true {
		t.Errorf("%d 'lines dead-lettered' and %d 'dead-lettering stopped' records (%v), want one each, the end at shutdown", len(start), len(end), end)
	} else if got := num(end[0], "count"); got+abandoned < float64(sum.Failed) {
		t.Errorf("the burst's end counts %v lines and %v were abandoned at the deadline, want at least the %d failed", got, abandoned, sum.Failed)
	}
	// A loaded machine may also stall (and recover) before the kill; the last stall record must be its end
	// at shutdown, not a recovery.
	var last string
	for _, line := range strings.Split(string(r.Stderr()), "\n") {
		for _, msg := range []string{`"msg":"delivery stalled"`, `"msg":"delivery recovered"`, `"msg":"delivery stalled until shutdown"`} {
			if strings.Contains(line, msg) {
				last = msg
			}
		}
	}
	if n := len(logRecords(r, "delivery stalled until shutdown")); n != 1 || last != `"msg":"delivery stalled until shutdown"` {
		t.Errorf("%d 'delivery stalled until shutdown' records, the last stall record %s: want one, the last", n, last)
	}
}

// waitHeldBack waits until the source has made no progress for a whole second (the reader stopped reading
// and TCP holds the source back) and returns how much it had written; it fails after d.
func waitHeldBack(t *testing.T, src *harness.Source, d time.Duration) uint64 {
	t.Helper()
	last, since := src.Written(), time.Now()
	for deadline := time.Now().Add(d); ; time.Sleep(100 * time.Millisecond) {
		now := src.Written()
		if now != last {
			last, since = now, time.Now()
		} else if time.Since(since) >= time.Second {
			return now
		}
		if time.Now().After(deadline) {
			t.Fatalf("the source still writes %v after the broker went down (written %d): the reader did not stop reading", d, now)
		}
	}
}

// abandonedAt returns how many lines the reader counted failed because its Kafka client had not closed by the
// shutdown deadline.
func abandonedAt(r *harness.Reader) float64 {
	var n float64
	for _, rec := range logRecords(r, "the kafka client did not close by the shutdown deadline; the lines it still held are counted failed") {
		n += num(rec, "lines")
	}
	return n
}
