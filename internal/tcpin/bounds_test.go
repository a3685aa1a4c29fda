package tcpin

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// bytesObserver counts bytes read and refusals by reason.
type bytesObserver struct {
	nopObserver
	read    atomic.Int64
	mu      sync.Mutex
	refused map[string]int
}

func (o *bytesObserver) BytesRead(n int) { o.read.Add(int64(n)) }
func (o *bytesObserver) ConnRefused(_ string, reason error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.refused == nil {
		o.refused = map[string]int{}
	}
	o.refused[reason.Error()]++
}
func (o *bytesObserver) refusals(reason error) int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.refused[reason.Error()]
}

// stallRead waits until obs has read something and then nothing more for 200 ms.
func stallRead(tb testing.TB, obs *bytesObserver) int64 {
	tb.Helper()
	var n int64
	waitUntil(tb, 30*time.Second, func() bool {
		before := obs.read.Load()
		time.Sleep(200 * time.Millisecond)
		n = obs.read.Load()
		return n > 0 && n == before
	})
	return n
}

// TestReaderHoldsBoundedBytes: with the handler blocked (Kafka's queue full) and a source that keeps
// writing, what a reader has read and not handed on stays within its stated bound, for short lines and for
// long ones: HighPerfTCPReader holds up to three reads in connect mode (the batch being handled, one
// waiting, the read being split) and one in listen mode; TCPLogReader holds its queue's bytes plus the
// batch waiting to enter it and the line being assembled. That is what a crash loses on top of the
// producer's queue.
func TestReaderHoldsBoundedBytes(t *testing.T) {
	const (
		maxLine    = 256 << 10
		readBuf    = 64 << 10
		queueBytes = 1 << 20
	)
	// HighPerfTCPReader's buffer grows to the longest line plus one read at most.
	bufMax := int64(maxLine + 2 + minRead)
	bounds := map[string]map[Mode]int64{
		"HighPerfTCPReader": {Connect: 3 * bufMax, Listen: bufMax},
		"TCPLogReader":      {Connect: queueBytes + 2*maxLine + 128<<10, Listen: queueBytes + 2*maxLine + 128<<10},
	}
	lines := map[string]int{"short lines": 100, "long lines": 200 << 10}
	for name, mk := range readers {
		for _, mode := range []Mode{Connect, Listen} {
			for lname, size := range lines {
				t.Run(fmt.Sprintf("%s/%s/%s", name, mode, lname), func(t *testing.T) {
					h := newGatedHandler()
					defer close(h.open)
					obs := &bytesObserver{}
					var stop func()
					src := sourceConn(t, mode, func(addr string, ln net.Listener) {
						stop = startReader(t, mk, Config{Mode: mode, Addr: addr, Once: true, Observer: obs,
							MaxLineBytes: maxLine, ReadBufferBytes: readBuf, QueueBytes: queueBytes}, ln, h)
					})
					defer func() { src.Close(); go stop() }()
					line := []byte(strings.Repeat("x", size-1) + "\n")
					go func() {
						for {
							if _, err := src.Write(line); err != nil {
								return
							}
						}
					}()
					held := stallRead(t, obs)
					bound := bounds[name][mode]
					t.Logf("held %d bytes (%.1f reads of %d), bound %d", held, float64(held)/float64(bufMax), bufMax, bound)
					if held > bound {
						t.Errorf("the reader holds %d bytes read and not handed on, more than its bound %d", held, bound)
					}
				})
			}
		}
	}
}

// TestPartialLineBudget: many listen-mode connections each holding a long partial line share one byte budget.
// A connection whose partial line would take it over has that line rejected as oversized (with the budget in
// the detail) and skipped to its newline, instead of the reader growing; what the budget lent comes back
// when the lines end, and a later long line is accepted again.
func TestPartialLineBudget(t *testing.T) {
	const (
		maxLine = 1 << 20
		readBuf = 64 << 10
		budget  = 2 << 20
		conns   = 8
	)
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			r, err := mk(Config{Mode: Listen, MaxLineBytes: maxLine, ReadBufferBytes: readBuf, PartialLineBudget: budget}, ln, rec)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			defer func() { cancel(); <-done }()

			// Each connection sends 900 KiB of a line without its newline: 8 of them need 7 MiB of budget.
			partial := bytes.Repeat([]byte("p"), 900<<10)
			var cs []net.Conn
			for i := 0; i < conns; i++ {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				if _, err := c.Write(partial); err != nil {
					t.Fatal(err)
				}
				cs = append(cs, c)
			}
			// Some are rejected at once, the moment they would exceed the budget.
			items := rec.waitFor(t, 1, 10*time.Second)
			for _, it := range items {
				if it.reason != event.ReasonOversized {
					t.Fatalf("got %q, want oversized rejects only", it)
				}
			}
			used, peak := partialBudget(r)
			if peak > budget {
				t.Errorf("partial lines took %d bytes of budget at the peak, more than the %d allowed", peak, budget)
			}
			t.Logf("after the flood: %d rejected, budget in use %d, peak %d", len(rec.snapshot()), used, peak)
			// Every connection ends its line: the accepted ones arrive whole, the rejected ones' rest is skipped.
			for i, c := range cs {
				fmt.Fprintf(c, "-end-%d\n", i)
			}
			for _, c := range cs {
				c.Close()
			}
			waitUntil(t, 10*time.Second, func() bool { return len(rec.snapshot()) >= conns })
			var whole, rejected int
			for _, it := range rec.snapshot() {
				switch {
				case it.reason == event.ReasonOversized:
					rejected++
				case it.reason == "" && len(it.line) > 900<<10:
					whole++
				default:
					t.Errorf("unexpected item %.40q (%s)", it.line, it.reason)
				}
			}
			if whole == 0 || rejected == 0 || whole+rejected != conns {
				t.Errorf("%d lines whole, %d rejected, want some of each adding up to %d", whole, rejected, conns)
			}
			waitUntil(t, 5*time.Second, func() bool { u, _ := partialBudget(r); return u == 0 })
			// The budget is back: a long line alone is accepted.
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write(append(partial, '\n'))
			waitUntil(t, 10*time.Second, func() bool { return len(rec.snapshot()) > conns })
			if it := rec.snapshot()[conns]; it.reason != "" {
				t.Errorf("a long line after the flood was %s, want accepted", it.reason)
			}
		})
	}
}

// partialBudget reads a reader's partial-line budget: in use now, and its peak.
func partialBudget(r Reader) (used, peak int64) {
	var cfg Config
	switch r := r.(type) {
	case *HighPerfTCPReader:
		cfg = r.cfg
	case *TCPLogReader:
		cfg = r.cfg
	}
	if cfg.shared == nil || cfg.shared.partial == nil {
		return 0, 1 << 62
	}
	return cfg.shared.partial.inUse(), cfg.shared.partial.peakUse()
}

// TestBuffersShrinkBack: after a long line, a connection's buffers return to their usual size.
func TestBuffersShrinkBack(t *testing.T) {
	const maxLine = 1 << 20
	t.Run("framer", func(t *testing.T) {
		f := newFramer(64<<10, maxLine)
		initial := len(f.buf)
		input := append(bytes.Repeat([]byte("L"), 900<<10), '\n')
		input = append(input, "short\n"...)
		r := bytes.NewReader(input)
		rec := newRecorder()
		for {
			n, err := f.fill(r)
			if n > 0 {
				f.split(context.Background(), rec, Source{})
			}
			if err != nil {
				break
			}
		}
		if got := len(rec.snapshot()); got != 2 {
			t.Fatalf("got %d lines, want 2", got)
		}
		if len(f.buf) != initial {
			t.Errorf("buffer of %d bytes after the long line, want back to %d", len(f.buf), initial)
		}
	})
	t.Run("TCPLogReader batches", func(t *testing.T) {
		b := &lineBatch{}
		b.add(bytes.Repeat([]byte("L"), 900<<10))
		b.reset()
		if cap(b.buf) > batchBytes {
			t.Errorf("a batch keeps %d bytes after a long line, want at most %d", cap(b.buf), batchBytes)
		}
	})
}

// TestPerAddressConnectionLimit: one address cannot take more than MaxConnsPerAddr of the slots; another
// address still gets in.
func TestPerAddressConnectionLimit(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			obs := &bytesObserver{}
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, MaxConns: 10, MaxConnsPerAddr: 2, Observer: obs}, ln, rec)
			defer stop()
			dial := func(from string) net.Conn {
				d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
				c, err := d.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { c.Close() })
				return c
			}
			for i := 0; i < 2; i++ {
				fmt.Fprintf(dial("127.0.0.1"), "a%d\n", i)
			}
			rec.waitFor(t, 2, 5*time.Second)
			extra := dial("127.0.0.1")
			extra.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("third connection from one address: read = %v, want EOF (refused)", err)
			}
			if n := obs.refusals(ErrTooManyFromAddr); n != 1 {
				t.Errorf("refused %d for the per-address limit, want 1", n)
			}
			fmt.Fprintf(dial("127.0.0.2"), "b\n")
			items := rec.waitFor(t, 3, 5*time.Second)
			if items[2].line != "b" {
				t.Errorf("got %q, want the other address's line", items)
			}
		})
	}
}

// TestMinimumProgress: while connections are scarce (more than half of MaxConns in use), a connection that
// completes fewer than MinProgressBytes of lines in a ProgressInterval is closed (until they are not scarce), even though its lines come
// well within the idle timeout; a connection that keeps up stays, and with slots to spare nobody is closed.
func TestMinimumProgress(t *testing.T) {
	const interval = 300 * time.Millisecond
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			for _, tt := range []struct {
				name       string
				slow       int
				wantClosed bool
			}{{"scarce", 3, true}, {"to spare", 1, false}} {
				t.Run(tt.name, func(t *testing.T) {
					rec := newRecorder()
					ln := listen(t)
					stop := startReader(t, mk, Config{Mode: Listen, MaxConns: 4, IdleTimeout: 10 * time.Second,
						MinProgressBytes: 1000, ProgressInterval: interval}, ln, rec)
					defer stop()
					closed := make(chan int, tt.slow)
					var slow []net.Conn
					for i := 0; i < tt.slow; i++ {
						c, err := net.Dial("tcp", ln.Addr().String())
						if err != nil {
							t.Fatal(err)
						}
						defer c.Close()
						slow = append(slow, c)
						go func() {
							c.SetReadDeadline(time.Now().Add(8 * time.Second))
							_, err := c.Read(make([]byte, 1))
							if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
								closed <- i
							}
						}()
					}
					fast, err := net.Dial("tcp", ln.Addr().String())
					if err != nil {
						t.Fatal(err)
					}
					defer fast.Close()
					// A 9-byte line every interval/3 on each slow connection (about 30 bytes per interval, a
					// thirtieth of the minimum), a 5000-byte line as often on the fast one (five times the
					// minimum in each write, so a loaded machine's late wake-ups cannot make it slow), for 8
					// intervals.
					big := strings.Repeat("f", 4999) + "\n"
					for i := 0; i < 24; i++ {
						for _, c := range slow {
							c.Write([]byte("slowline\n"))
						}
						fast.Write([]byte(big))
						time.Sleep(interval / 3)
					}
					n := len(closed)
					// Closing stops once no more than half the slots are taken (4 of 4 here, then 2): two of
					// the three at least; a third when their windows end at the same moment.
					if tt.wantClosed && n < 2 {
						t.Errorf("%d of %d slow connections closed, want at least 2", n, tt.slow)
					}
					if !tt.wantClosed && n != 0 {
						t.Errorf("%d slow connections closed with slots to spare, want none", n)
					}
					fast.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
					if _, err := fast.Read(make([]byte, 1)); !isTimeout(err) {
						t.Errorf("the fast connection was closed (%v), want it kept", err)
					}
				})
			}
		})
	}
}

// isTimeout reports whether err is a read timeout: the connection is still open.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
