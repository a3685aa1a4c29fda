package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// SourceOptions shape a Source's stream.
type SourceOptions struct {
	// First is the first eventId (default 1); line i of the stream has eventId First+i.
	First uint32
	// Seed picks the generated contents (default 1).
	Seed int64
	// CutEvery, with Cuts > 0, ends the connection in the middle of a line after every CutEvery lines, Cuts
	// times: half of the line is written, then the socket is closed. The next connection starts again with
	// that line, whole.
	CutEvery uint64
	Cuts     int
	// Rate limits the stream to this many lines per second (0: as fast as the socket takes them).
	Rate int
	// Start is the timestamp of the first event (default 2026-11-25 10:11:12 UTC). Scenarios that run the
	// example queries, which look at the last hour or day, start the stream a little before now.
	Start time.Time
}

// Source is the log source of connect mode: it listens on loopback and streams Total generated events to
// whoever connects, one connection at a time. After a disconnect it resumes at the first line it had not
// written whole, so every line reaches the reader once unless the reader itself loses it. When every line is
// written it keeps the connection open, idle, until the reader closes it.
type Source struct {
	ln    net.Listener
	gen   *event.Generator
	total uint64
	opts  SourceOptions

	next  atomic.Uint64 // index of the first line not yet written whole
	conns atomic.Int64
	cuts  atomic.Int64
	bytes atomic.Uint64
	// writeSince is when the Write in progress started (UnixNano), 0 when none is: a Write that lasts is
	// one the kernel holds back because the peer's buffers are full.
	writeSince atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	done   chan struct{}
	once   sync.Once
}

// NewSource listens on a free loopback port and serves total lines until the test ends.
func NewSource(tb testing.TB, total uint64, opts SourceOptions) *Source {
	tb.Helper()
	if opts.First == 0 {
		opts.First = 1
	}
	if opts.Seed == 0 {
		opts.Seed = 1
	}
	if opts.Start.IsZero() {
		opts.Start = time.Date(2026, 11, 25, 10, 11, 12, 0, time.UTC)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("source: listening: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Source{
		ln: ln, gen: event.NewGenerator(opts.Seed, opts.First, opts.Start),
		total: total, opts: opts, ctx: ctx, cancel: cancel, done: make(chan struct{}),
	}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the address the reader dials.
func (s *Source) Addr() string { return s.ln.Addr().String() }

// Written is how many lines were written whole to a connection (they may still sit in socket buffers).
func (s *Source) Written() uint64 { return s.next.Load() }

// Bytes is how many bytes were written.
func (s *Source) Bytes() uint64 { return s.bytes.Load() }

// Conns is how many connections the source accepted.
func (s *Source) Conns() int { return int(s.conns.Load()) }

// CutsDone is how many connections were ended in the middle of a line.
func (s *Source) CutsDone() int { return int(s.cuts.Load()) }

// Done is closed once every line was written.
func (s *Source) Done() <-chan struct{} { return s.done }

// Finished reports whether every line was written.
func (s *Source) Finished() bool { return s.Written() >= s.total }

// BlockedFor is how long the write in progress has been waiting for the socket to take it (0 when no write is
// in progress). A write to a loopback peer that reads returns within microseconds; one that waits for a
// second is held back by TCP: the peer stopped reading and every buffer between them is full.
func (s *Source) BlockedFor() time.Duration {
	since := s.writeSince.Load()
	if since == 0 {
		return 0
	}
	return time.Since(time.Unix(0, since))
}

// WaitBlocked waits until a write has been held back for at least hold (TCP backpressure reached the source),
// or d passes, or the stream ends.
func (s *Source) WaitBlocked(hold, d time.Duration) error {
	deadline := time.Now().Add(d)
	for s.BlockedFor() < hold {
		if s.Finished() {
			return fmt.Errorf("%w: every line was written, none held back", ErrSourceNotBlocked)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w within %v: %d of %d lines written", ErrSourceNotBlocked, d, s.Written(), s.total)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Line returns line i of the stream (without newline).
func (s *Source) Line(i uint64) []byte { return s.gen.AppendAt(nil, i) }

// Close stops serving and closes the current connection.
func (s *Source) Close() {
	s.cancel()
	s.ln.Close()
	s.wg.Wait()
}

func (s *Source) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.conns.Add(1)
		stop := context.AfterFunc(s.ctx, func() { conn.Close() })
		s.stream(conn)
		stop()
		conn.Close()
	}
}

// stream writes lines from the resume point until the end, a planned cut, or a write error.
func (s *Source) stream(conn net.Conn) {
	const batchBytes = 64 << 10
	buf := make([]byte, 0, batchBytes+4096)
	ends := make([]int, 0, 1024) // end offset of each line in buf
	// With a rate, each batch holds about 20 ms of lines (and at most batchBytes), and the next batch waits
	// until the lines written so far are due: the pace follows the clock, not the batches, so a batch cut
	// short by batchBytes does not slow the stream down. After a stall the source resumes at its rate
	// instead of bursting to catch up.
	perBatch := 1 << 30
	if s.opts.Rate > 0 {
		perBatch = max(1, s.opts.Rate/50)
	}
	paceStart, paced := time.Now(), uint64(0)
	for {
		start := s.next.Load()
		if start >= s.total {
			s.once.Do(func() { close(s.done) })
			// Idle until the reader hangs up; what it sends (nothing) is discarded.
			_, _ = io.Copy(io.Discard, conn)
			return
		}
		limit := s.total
		cutPending := s.opts.Cuts > 0 && s.opts.CutEvery > 0 && int(s.cuts.Load()) < s.opts.Cuts
		if cutPending {
			limit = min(limit, uint64(s.cuts.Load()+1)*s.opts.CutEvery)
		}
		buf, ends = buf[:0], ends[:0]
		i := start
		for ; i < limit && len(buf) < batchBytes && len(ends) < perBatch; i++ {
			buf = s.gen.AppendAt(buf, i)
			buf = append(buf, '\n')
			ends = append(ends, len(buf))
		}
		if len(buf) > 0 {
			s.writeSince.Store(time.Now().UnixNano())
			n, err := conn.Write(buf)
			s.writeSince.Store(0)
			s.bytes.Add(uint64(n))
			whole := 0
			for whole < len(ends) && ends[whole] <= n {
				whole++
			}
			s.next.Store(start + uint64(whole))
			if err != nil {
				return
			}
		}
		if cutPending && i == limit && i < s.total {
			line := s.gen.AppendAt(nil, i)
			n, _ := conn.Write(line[:len(line)/2])
			s.bytes.Add(uint64(n))
			s.cuts.Add(1)
			return
		}
		if s.opts.Rate > 0 {
			paced += uint64(len(ends))
			due := paceStart.Add(time.Duration(paced) * time.Second / time.Duration(s.opts.Rate))
			if d := time.Until(due); d > 0 {
				select {
				case <-s.ctx.Done():
					return
				case <-time.After(d):
				}
			} else if d < -100*time.Millisecond {
				paceStart, paced = time.Now(), 0 // held back: no burst afterwards
			}
		}
	}
}

// ErrSourceStalled is returned by WaitWritten when the source makes no progress.
var ErrSourceStalled = errors.New("source made no progress")

// ErrSourceNotBlocked is returned by WaitBlocked when no write was held back.
var ErrSourceNotBlocked = errors.New("no write of the source was held back")

// WaitWritten waits until at least n lines were written, or d passes.
func (s *Source) WaitWritten(n uint64, d time.Duration) error {
	deadline := time.Now().Add(d)
	for s.Written() < n {
		if time.Now().After(deadline) {
			return ErrSourceStalled
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

// Dial connects to a listen-mode reader.
func Dial(addr string) (net.Conn, error) { return net.DialTimeout("tcp", addr, 5*time.Second) }

// Proxy forwards TCP connections from a loopback address to a target. Its address is reserved before it
// listens, so a client can be pointed at a service that is not there yet and comes back when Start is called.
type Proxy struct {
	addr, target string
	mu           sync.Mutex
	ln           net.Listener
	conns        []net.Conn
	wg           sync.WaitGroup
}

// NewProxy reserves a free loopback address for a proxy to target; nothing listens on it until Start.
func NewProxy(tb testing.TB, target string) *Proxy {
	return NewProxyAt(tb, FreeAddr(tb), target)
}

// NewProxyAt is NewProxy on a given address, e.g. 127.0.0.2:0 to reach a loopback service under an address
// its certificate does not name (":0" picks a free port at Start).
func NewProxyAt(tb testing.TB, addr, target string) *Proxy {
	p := &Proxy{addr: addr, target: target}
	tb.Cleanup(p.Stop)
	return p
}

// Addr is the proxy's address.
func (p *Proxy) Addr() string { return p.addr }

// Start listens on the reserved address and forwards every connection to the target.
func (p *Proxy) Start() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	p.addr = ln.Addr().String()
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	return nil
}

// Stop closes the listener and every forwarded connection.
func (p *Proxy) Stop() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
	p.mu.Unlock()
	p.wg.Wait()
}
