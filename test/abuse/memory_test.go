package abuse

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestPartialLineFlood: in listen mode, 512 connections (64 from each of 8 addresses, the per-address limit)
// each send a line of just under 1 MiB and hold it without its newline, while a real source streams. The
// reader keeps its memory budget: its live memory is the read buffers, plus the partial-line budget that the
// long lines share (those that do not fit are dead-lettered as oversized at once), plus the process's base;
// with GOMEMLIMIT at that sum the garbage collector keeps the Go heap there, and the resident memory stays
// under it plus what Go does not count (librdkafka's C heap). A 65th connection from one address is refused;
// the streaming source never stalls; every long line ends as one dead letter (oversized, or invalid JSON once
// its newline comes) and nothing is lost.
func TestPartialLineFlood(t *testing.T) {
	for _, impl := range []string{"highperf", "basic"} {
		t.Run(impl, func(t *testing.T) { partialLineFlood(t, impl) })
	}
}

func partialLineFlood(t *testing.T, impl string) {
	const (
		addrs   = 8
		perAddr = tcpin.DefaultMaxConnsPerAddr
		conns   = addrs * perAddr
		lineLen = 1<<20 - 16
		rate    = 2000
		budget  = tcpin.DefaultPartialLineBudget
		goBase  = 48 << 20 // the Go heap and stacks of an idle reader, measured at about 20 MiB
		nonGo   = 64 << 20 // librdkafka's C heap (its 8 MiB queue, buffers), thread stacks, the binary
	)
	perConn := uint64(tcpin.DefaultReadBufferBytes) // HighPerfTCPReader's read buffer
	if impl == "basic" {
		perConn = 64<<10 + 64<<10 // TCPLogReader's bufio buffer and the batch it fills
	}
	live := uint64(budget) + conns*perConn + goBase
	bound := live + nonGo
	e := loadEnv(t)
	topic, dlq := e.topics(t)
	addr := harness.FreeAddr(t)
	goMemLimit := itoa(live)
	r := harness.StartReader(t, readerBin, e.creds("GOMEMLIMIT="+goMemLimit), e.baseArgs("listen", addr, topic, dlq, "--reader", impl,
		"--max-conns", itoa(4*conns))...) // room for all: the per-address limit is the one under test
	r.WaitReady(time.Minute)
	rssBefore := r.PeakRSS()

	gen := event.NewGenerator(12, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	var ids atomic.Uint64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	streamer, err := dialFrom("127.0.0.200", addr)
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

	// The flood: every connection writes its partial line at once.
	partial := bytes.Repeat([]byte("x"), lineLen)
	floodStart := time.Now()
	held := make([]net.Conn, 0, conns)
	var mu sync.Mutex
	var fwg sync.WaitGroup
	var writeErrs atomic.Int64
	for a := range addrs {
		for range perAddr {
			fwg.Add(1)
			go func() {
				defer fwg.Done()
				c, err := dialFrom(fmt.Sprintf("127.0.0.%d", 10+a), addr)
				if err != nil {
					writeErrs.Add(1)
					return
				}
				c.SetWriteDeadline(time.Now().Add(time.Minute))
				if _, err := c.Write(partial); err != nil {
					writeErrs.Add(1)
				}
				mu.Lock()
				held = append(held, c)
				mu.Unlock()
			}()
		}
	}
	fwg.Wait()
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	written := time.Since(floodStart)
	// One more from an address that has its 64: refused.
	extra, err := dialFrom("127.0.0.10", addr)
	if err != nil {
		t.Fatal(err)
	}
	extraClosed := countClosed([]net.Conn{extra}, 2*time.Second) == 1
	extra.Close()
	time.Sleep(time.Second) // the reader has read every partial line (the writes completed): memory at its height
	m, err := r.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	peakHeld := r.PeakRSS()
	idsAtFlood := ids.Load()

	// The long lines end; the streamer goes on a little, then stops.
	for _, c := range held {
		c.Write([]byte("\n"))
		c.Close()
	}
	time.Sleep(2 * time.Second)
	cancel()
	wg.Wait()
	total := ids.Load()
	got := waitReceived(t, r, total+uint64(len(held)), 2*time.Minute)
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(time.Minute)

	tally := harness.ReadEvents(t, e.plaintext, topic, 1, total)
	dls := harness.ReadDeadLetters(t, e.plaintext, dlq)
	reasons := harness.ReasonCounts(dls)
	report.Add(harness.Row{Scenario: fmt.Sprintf("F. %d connections (%d per address) each holding a %d KiB partial line, a source streaming %d lines/s (listen mode, %s reader)",
		conns, perAddr, lineLen>>10, rate, impl), Sent: total + uint64(len(held)), Delivered: tally.Unique, DeadLettered: uint64(len(dls)),
		Failed: sum.Failed, Lost: total - min(total, tally.Unique), Duplicated: tally.Duplicated, PeakRSS: peakHeld,
		Notes: fmt.Sprintf("peak RSS %s (before %s; bound %s: budget %s + %d connections' buffers of %d KiB + Go base %s, the GOMEMLIMIT, + %s outside Go); long lines: %v; "+
			"65th from one address refused: %v (refused total %v); written in %.1fs; streamer wrote %d lines while the lines were held; exit %d",
			mib(peakHeld), mib(rssBefore), mib(bound), mib(uint64(budget)), conns, perConn>>10, mib(goBase), mib(nonGo), reasons,
			extraClosed, m["logreader_connections_refused_total"], written.Seconds(), total-idsAtFlood, code)})
	t.Logf("%s; received %d; summary %+v; peak RSS %s, bound %s", tally, got, sum, mib(r.PeakRSS()), mib(bound))

	if streamErr != nil && !errors.Is(streamErr, context.Canceled) {
		t.Errorf("the streaming source failed: %v", streamErr)
	}
	if writeErrs.Load() != 0 {
		t.Errorf("%d flood connections could not write their partial line", writeErrs.Load())
	}
	if !extraClosed {
		t.Errorf("a 65th connection from one address was not refused")
	}
	if r.PeakRSS() > bound {
		t.Errorf("peak RSS %s, more than the bound %s", mib(r.PeakRSS()), mib(bound))
	}
	if code != 0 || !sum.Balanced() || sum.Failed != 0 {
		t.Errorf("exit %d, summary %+v; want 0, balanced", code, sum)
	}
	if tally.Unique != total || tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("topic: %s; want all %d lines of the streaming source exactly once", tally, total)
	}
	if len(dls) != len(held) || reasons[string(event.ReasonOversized)] == 0 ||
		reasons[string(event.ReasonOversized)]+reasons[string(event.ReasonInvalidJSON)] != len(held) {
		t.Errorf("dead letters %v, want %d: oversized (over the budget) and invalid JSON (held whole)", reasons, len(held))
	}
}

// dialFrom connects to addr from the local address from (any 127.0.0.0/8 address is this machine's).
func dialFrom(from, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	return d.Dial("tcp", addr)
}
