package chaos

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// midStreamRate paces the lifecycle scenarios' source: the second half of the stream takes seconds whatever
// the machine's load, so the signal reaches the reader while the stream still runs (and the test checks it).
var midStreamRate = pick(50_000, 100_000)

// TestReaderSIGTERM: SIGTERM mid-stream. The reader stops reading new data, reads out what its kernel already
// acknowledged to the source (with Kafka answering, all of it: no connection closes with unread bytes),
// drains, and exits 0; every line it read is delivered or dead-lettered (the line it was in the middle of is
// dead-lettered as truncated), the lines it delivered are exactly the stream's first ones, and the summary
// adds up.
func TestReaderSIGTERM(t *testing.T) {
	n := pick[uint64](200_000, 1_000_000)
	topic, dlq := topics(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: midStreamRate})
	// The read-out's bound is the time the reader has to read what the kernel holds; the default (500 ms)
	// is ample on an idle machine, but at a load average of 30 on 2 cores the reader did not get through
	// 674 KiB in it (logged unread, as designed): too little CPU, and a producer queue slow to make room.
	// The scenario checks the read-out, not how fast a starved process reads: the read-out ends once the socket is quiet, so a longer bound costs nothing
	// when there is nothing left. internal/tcpin's tests hold the bound itself.
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq, "--drain-timeout", "1m",
		"--stop-read-timeout", "10s")...)
	if err := src.WaitWritten(n/2, 3*time.Minute); err != nil {
		t.Fatalf("waiting for half the stream: %v (written %d)", err, src.Written())
	}
	termAt := time.Now()
	r.Signal(syscall.SIGTERM)
	writtenAtTerm := src.Written()
	code, sum := r.Wait(2 * time.Minute)
	exitAfter := time.Since(termAt)
	written := src.Written()
	if writtenAtTerm >= n || src.Finished() {
		t.Fatalf("the stream had ended by the time the reader stopped (%d lines written at SIGTERM, %d at the exit, of %d): not mid-stream",
			writtenAtTerm, written, n)
	}

	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	lost := int64(sum.Received) - int64(tally.Unique) - int64(len(dls))
	unread := r.LogLines("source connection closed with unread bytes at stop")
	report.Add(harness.Row{Scenario: "4. reader SIGTERMed mid-stream", Sent: written, Delivered: tally.Unique,
		DeadLettered: uint64(len(dls)), Lost: uint64(max(lost, 0)), Duplicated: tally.Duplicated,
		Failed: sum.Failed, PeakRSS: r.PeakRSS(),
		Notes: fmt.Sprintf("read %d lines, the kernel's included (the rest of the %d written were still in the source's own socket buffer: never acknowledged to it); "+
			"connections closed with unread bytes: %d; exit %d %.1fs after SIGTERM; summary balanced %v",
			sum.Received, written, len(unread), code, exitAfter.Seconds(), sum.Balanced())})
	t.Logf("%s; summary %+v", tally, sum)

	if code != 0 {
		t.Errorf("exit code = %d, want 0 (summary %+v)", code, sum)
	}
	if !sum.Balanced() || sum.Failed != 0 || sum.Received == 0 || sum.Received >= n {
		t.Errorf("summary = %+v, want balanced, none failed, stopped mid-stream", sum)
	}
	if lost != 0 || tally.Unique != sum.Delivered || uint64(len(dls)) != sum.DeadLettered {
		t.Errorf("topic holds %d events and %d dead letters, summary says %d and %d (received %d)",
			tally.Unique, len(dls), sum.Delivered, sum.DeadLettered, sum.Received)
	}
	if p := tally.Prefix(); p != tally.Unique {
		t.Errorf("delivered events are not the stream's first ones: prefix %d, %d delivered", p, tally.Unique)
	}
	if tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("%d duplicated, %d invalid, %d out-of-range lines on the topic", tally.Duplicated, tally.Invalid, tally.OutOfRange)
	}
	for _, d := range dls {
		if d.Reason != string(event.ReasonTruncated) {
			t.Errorf("dead letter with reason %q (%s), want only %s", d.Reason, d.Detail, event.ReasonTruncated)
		}
	}
	if len(dls) > 1 {
		t.Errorf("%d truncated lines, want at most the one being read at SIGTERM", len(dls))
	}
	if len(r.LogLines("draining")) != 1 {
		t.Errorf("no 'draining' log line after SIGTERM")
	}
	// The source keeps writing: once the read-out has found the socket quiet for 50 ms (on a loaded machine
	// the source may simply not have run), the clamped window can still let a few KiB in before the close
	// (2,048 bytes in one run at load average 40). What the kernel held at the stop (674 KiB in the run that
	// left it unread) must have been read.
	const clampTail = 8 << 10
	for _, u := range unread {
		if num(u, "unread_bytes") > clampTail {
			t.Errorf("the reader closed its source with %v bytes the kernel had acknowledged still unread, more than the clamped window lets in after the read-out (%d): %v",
				num(u, "unread_bytes"), clampTail, u)
		}
	}
}

// TestReaderSIGKILL: the reader is SIGKILLed mid-stream. An in-memory queue loses what it held; the test
// measures how many lines the reader had read but not delivered and checks it stays within the documented
// bound (the producer's local queue plus three reads: connect mode's HighPerfTCPReader holds the batch being
// produced, one waiting and the read being split), and that nothing arrives twice.
func TestReaderSIGKILL(t *testing.T) {
	n := pick[uint64](200_000, 1_000_000)
	const queueKB = 8192 // the reader's default --queue-max-kbytes
	topic, dlq := topics(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: midStreamRate})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq)...)
	if err := src.WaitWritten(n/2, 3*time.Minute); err != nil {
		t.Fatalf("waiting for half the stream: %v (written %d)", err, src.Written())
	}
	m, err := r.Metrics()
	if err != nil {
		t.Fatalf("scraping metrics before the kill: %v", err)
	}
	r.Signal(syscall.SIGKILL)
	writtenAtKill := src.Written()
	code, _ := r.Wait(time.Minute)
	written := src.Written()
	if writtenAtKill >= n || src.Finished() {
		t.Fatalf("the stream had ended by the time the reader was killed (%d lines written at SIGKILL, %d after, of %d): not mid-stream",
			writtenAtKill, written, n)
	}

	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	// The reader reads the stream in order, so it had read at least the lines up to the last one delivered
	// and at least what its metrics counted a moment before the kill.
	var maxSeen uint64
	for i := n; i > 0; i-- {
		if tally.Seen(i - 1) {
			maxSeen = i
			break
		}
	}
	received := uint64(m["logreader_lines_received_total"])
	read := max(maxSeen, received)
	lostOfRead := read - tally.Unique
	inFlight := uint64(m["logreader_lines_in_flight"])
	// The bound: a full local queue (by bytes or by its 100000-message cap) plus three reads' lines (the
	// default 256 KiB read buffer; tcpin's TestReaderHoldsBoundedBytes holds each reader to its own bound).
	lineBytes := src.Bytes() / max(written, 1)
	bound := min(uint64(queueKB)<<10/lineBytes, 100_000) + 3*(256<<10)/lineBytes
	report.Add(harness.Row{Scenario: "5. reader SIGKILLed mid-stream", Sent: written, Delivered: tally.Unique,
		DeadLettered: uint64(len(dls)), Lost: lostOfRead, Duplicated: tally.Duplicated, PeakRSS: r.PeakRSS(),
		Notes: fmt.Sprintf("lost = read but not delivered: ≥%d (in flight %d at the last scrape); bound with the default --queue-max-kbytes %d: %d lines; %d more written lines were still in socket buffers",
			lostOfRead, inFlight, queueKB, bound, written-read)})
	t.Logf("%s; received %d at the scrape, read ≥ %d, in flight %d, lost of read %d, bound %d", tally, received, read, inFlight, lostOfRead, bound)

	if code != -1 {
		t.Errorf("exit code = %d, want -1 (killed)", code)
	}
	if lostOfRead > bound {
		t.Errorf("%d lines read but not delivered, more than the bound %d", lostOfRead, bound)
	}
	if tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("%d duplicated, %d invalid, %d out-of-range lines on the topic", tally.Duplicated, tally.Invalid, tally.OutOfRange)
	}
	if tally.Unique == 0 {
		t.Errorf("nothing delivered before the kill")
	}
}
