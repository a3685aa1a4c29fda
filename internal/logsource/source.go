// Package logsource is the TCP log source: it streams generated NDJSON events (see package event) to readers,
// for demos, tests and load generation, optionally salted with named classes of bad input.
//
// In listen mode (Serve) readers connect to it; in connect mode (Dial) it dials a reader that listens. Either
// way all connections share one sequence: Count good events in total, numbered from FirstID, each sent once
// (a connection claims blocks of the sequence as it goes). Tests of other packages start a source in-process:
//
//	ln, _ := net.Listen("tcp", "127.0.0.1:0")
//	go func() { stats, err = logsource.Serve(ctx, ln, logsource.Config{Count: 1000, FirstID: 1}) }()
//	// point the reader at ln.Addr().String(); Serve returns once one connection saw the stream end
//
// A connection that breaks, or that the truncated class closes on purpose, hands its unsent events back, so
// the next connection continues the sequence where it stopped. Only the buffer being written when a write
// fails is lost (reported as Stats.Lost, never counted as sent): the source cannot know how much of it the
// peer read.
package logsource

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// Stats reports what a source sent; it is the JSON summary the log source prints.
type Stats struct {
	// Sent counts good events written to a socket (crlf lines included).
	Sent uint64 `json:"sent"`
	// FirstEventID and LastEventID are the lowest and highest eventId sent (0 when none was).
	FirstEventID uint32 `json:"first_event_id"`
	LastEventID  uint32 `json:"last_event_id"`
	// Bytes counts every byte written, good and bad lines alike.
	Bytes uint64 `json:"bytes"`
	// BadSent counts injected bad lines by class; every one of them is meant to be dead-lettered by a strict
	// reader. CRLF lines are good and counted in Sent and CRLFSent instead.
	BadSent  map[string]uint64 `json:"bad_sent"`
	CRLFSent uint64            `json:"crlf_sent"`
	// Lost counts good events in writes that failed: maybe partly received, never counted as sent.
	Lost uint64 `json:"lost"`
	// Connections counts connections accepted or dialled.
	Connections int `json:"connections"`
	// Seconds runs from the first event handed to a connection to the last successful write.
	Seconds float64 `json:"seconds"`
}

// BadTotal returns the number of bad lines sent, all classes together.
func (s Stats) BadTotal() uint64 {
	var n uint64
	for _, v := range s.BadSent {
		n += v
	}
	return n
}

// lingerTimeout bounds how long a finished connection waits for its peer to close after the source has sent
// everything (closing at once while unread input sits in the socket could reset the connection and lose
// data in flight to the peer).
const lingerTimeout = 2 * time.Second

// cancelGrace is how long writes may still take after the context ends, so a final buffer can go out.
const cancelGrace = time.Second

// maxBlock bounds how many events a connection claims at once.
const maxBlock = 1024

// Serve accepts connections on ln and streams to each until the sequence runs out, then returns once
// cfg.Clients connections have been served to completion and every connection has finished. It owns ln and
// closes it on return. It returns an error when cfg is invalid, when accepting fails for good, or when ctx
// ends before a bounded stream (Count or Duration set) is complete; an unbounded stream ends with ctx and no
// error.
func Serve(ctx context.Context, ln net.Listener, cfg Config) (Stats, error) {
	defer ln.Close()
	s, err := newSource(cfg)
	if err != nil {
		return Stats{}, err
	}
	var (
		wg        sync.WaitGroup
		completed atomic.Int64
		finished  atomic.Bool
		acceptErr error
	)
	stopClosing := context.AfterFunc(ctx, func() { ln.Close() })
	defer stopClosing()
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if finished.Load() || ctx.Err() != nil {
				break
			}
			if errors.Is(err, net.ErrClosed) {
				acceptErr = fmt.Errorf("accepting connections: %w", err)
				break
			}
			// Resource exhaustion and the like: back off and keep serving, as long as ctx lives.
			s.cfg.Log.Warn("accept failed, retrying", "error", err, "backoff", backoff)
			if sleep(ctx, backoff) != nil {
				break
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.connOpened()
		wg.Go(func() {
			s.cfg.Log.Info("connection accepted", "remote", conn.RemoteAddr().String())
			out, err := s.stream(ctx, conn)
			closeConn(conn)
			s.logOutcome(conn, out, err)
			if out == outDone && completed.Add(1) >= int64(s.cfg.Clients) {
				finished.Store(true)
				ln.Close()
			}
		})
	}
	wg.Wait()
	stats, err := s.stats(), s.finish()
	switch {
	case acceptErr != nil:
		return stats, errors.Join(acceptErr, err)
	case !finished.Load() && s.cfg.bounded():
		return stats, errors.Join(fmt.Errorf("serving the log stream: %w", context.Cause(ctx)), err)
	}
	return stats, err
}

// Dial connects to addr, retrying until it is up (or cfg.ConnectTimeout passes), and streams until the
// sequence runs out. When the connection breaks or the truncated class closes it, Dial connects again and
// continues the sequence. Errors are as for Serve.
func Dial(ctx context.Context, addr string, cfg Config) (Stats, error) {
	s, err := newSource(cfg)
	if err != nil {
		return Stats{}, err
	}
	pause := 50 * time.Millisecond
	for {
		conn, err := s.dial(ctx, addr)
		if err != nil {
			if ctx.Err() != nil && !s.cfg.bounded() {
				return s.stats(), s.finish()
			}
			return s.stats(), errors.Join(err, s.finish())
		}
		s.connOpened()
		s.cfg.Log.Info("connected", "addr", addr)
		out, err := s.stream(ctx, conn)
		closeConn(conn)
		s.logOutcome(conn, out, err)
		switch out {
		case outDone:
			return s.stats(), s.finish()
		case outCancelled:
			if !s.cfg.bounded() {
				return s.stats(), s.finish()
			}
			return s.stats(), errors.Join(fmt.Errorf("sending the log stream: %w", context.Cause(ctx)), s.finish())
		case outFailed:
			// A peer that accepts and drops at once must not make this a busy loop.
			if sleep(ctx, pause) != nil {
				continue // the next dial reports the context's end
			}
			pause = min(2*pause, time.Second)
		case outTruncated:
			pause = 50 * time.Millisecond
		}
	}
}

// dial connects to addr with jittered exponential backoff.
func (s *source) dial(ctx context.Context, addr string) (net.Conn, error) {
	if s.cfg.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.cfg.ConnectTimeout)
		defer cancel()
	}
	var d net.Dialer
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("connecting to %s (%d attempts): %w", addr, attempt, err)
		}
		s.cfg.Log.Debug("connect failed, retrying", "addr", addr, "attempt", attempt, "error", err)
		wait := backoff/2 + rand.N(backoff/2+1)
		if err := sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("connecting to %s (%d attempts): %w", addr, attempt, err)
		}
		backoff = min(2*backoff, time.Second)
	}
}

// outcome is how a connection's stream ended.
type outcome int

const (
	outDone      outcome = iota // the sequence ran out
	outTruncated                // closed on purpose after a truncated line
	outFailed                   // a write failed
	outCancelled                // the context ended
)

func (s *source) logOutcome(conn net.Conn, out outcome, err error) {
	remote := conn.RemoteAddr().String()
	switch out {
	case outDone:
		s.cfg.Log.Info("stream complete", "remote", remote)
	case outTruncated:
		s.cfg.Log.Info("connection closed after a truncated line", "remote", remote)
	case outFailed:
		s.cfg.Log.Warn("write failed, connection dropped", "remote", remote, "error", err)
	case outCancelled:
		s.cfg.Log.Info("stopped", "remote", remote)
	}
}

// source is the state shared by all connections of one run.
type source struct {
	cfg    Config
	gen    *event.Generator
	bad    [][]byte // by class index
	inject []int    // cfg.Bad as class indexes
	crlf   int      // class index of BadCRLF
	trunc  int
	over   int
	block  uint64
	burst  float64

	mu       sync.Mutex
	next     uint64 // next sequence index never handed out
	returned []span // handed back by connections that stopped early; served first
	started  bool
	t0       time.Time
	deadline time.Time
	tEnd     time.Time
	sent     uint64
	bytes    uint64
	crlfSent uint64
	lost     uint64
	badSent  []uint64
	lo, hi   uint64 // lowest and highest sequence index sent, when sent > 0
	conns    int

	timesMu  sync.Mutex
	times    []byte // pending send-time lines
	timesErr error
}

// span is a range [lo, hi) of sequence indexes.
type span struct{ lo, hi uint64 }

func newSource(cfg Config) (*source, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	start := cfg.Start
	if start.IsZero() { // wall-clock mode: the bad lines that carry a timestamp carry the start of the run
		start = time.Now()
	}
	s := &source{
		cfg:     cfg,
		gen:     event.NewGenerator(cfg.Seed, cfg.FirstID, cfg.Start),
		bad:     badLines(start, cfg.OversizeBytes),
		crlf:    classIndex[BadCRLF],
		trunc:   classIndex[BadTruncated],
		over:    classIndex[BadOversized],
		block:   maxBlock,
		badSent: make([]uint64, len(AllBadClasses)),
	}
	for _, c := range cfg.Bad {
		s.inject = append(s.inject, classIndex[c])
	}
	if cfg.Rate > 0 {
		s.burst = max(1, cfg.Rate/100) // 10 ms worth of events
		s.block = uint64(min(maxBlock, s.burst))
	}
	if cfg.SendTimes != nil {
		s.times = append(s.times, "event_id,sent_unix_nano\n"...)
	}
	return s, nil
}

func (s *source) connOpened() {
	s.mu.Lock()
	s.conns++
	s.mu.Unlock()
}

// claim hands out the next span of at most n sequence indexes, waiting for the rate limit. It returns false
// when the stream is exhausted, and an error when ctx ends first.
func (s *source) claim(ctx context.Context, n uint64) (span, bool, error) {
	for {
		if err := ctx.Err(); err != nil {
			return span{}, false, err
		}
		s.mu.Lock()
		now := time.Now()
		if !s.started {
			s.started, s.t0 = true, now
			if s.cfg.Duration > 0 {
				s.deadline = now.Add(s.cfg.Duration)
			}
		}
		if len(s.returned) > 0 {
			sp := s.returned[0]
			s.returned = s.returned[1:]
			s.mu.Unlock()
			return sp, true, nil
		}
		if (s.cfg.Count > 0 && s.next >= s.cfg.Count) || (s.cfg.Duration > 0 && !now.Before(s.deadline)) {
			s.mu.Unlock()
			return span{}, false, nil
		}
		take := n
		if s.cfg.Count > 0 {
			take = min(take, s.cfg.Count-s.next)
		}
		var wait time.Duration
		if s.cfg.Rate > 0 {
			elapsed := now.Sub(s.t0)
			if avail := s.burst + s.cfg.Rate*elapsed.Seconds() - float64(s.next); avail >= 1 {
				take = min(take, uint64(avail))
			} else {
				due := time.Duration((float64(s.next) + 1 - s.burst) / s.cfg.Rate * float64(time.Second))
				wait = max(due-elapsed, 100*time.Microsecond)
				if s.cfg.Duration > 0 {
					wait = min(wait, s.deadline.Sub(now))
				}
			}
		}
		if wait == 0 {
			sp := span{s.next, s.next + take}
			s.next += take
			s.mu.Unlock()
			return sp, true, nil
		}
		s.mu.Unlock()
		if err := sleep(ctx, wait); err != nil {
			return span{}, false, err
		}
	}
}

// giveBack returns the unsent part of a claimed span for the next connection.
func (s *source) giveBack(sp span) {
	if sp.lo >= sp.hi {
		return
	}
	s.mu.Lock()
	s.returned = append(s.returned, sp)
	s.mu.Unlock()
}

// injection returns the class index of the bad line that follows good event i, if any.
func (s *source) injection(i uint64) (int, bool) {
	k := uint64(s.cfg.BadEvery)
	if k == 0 || (i+1)%k != 0 {
		return 0, false
	}
	return s.inject[((i+1)/k-1)%uint64(len(s.inject))], true
}

// stream writes the shared sequence to conn until it runs out, ctx ends, a write fails or a truncated line
// closes the connection.
func (s *source) stream(ctx context.Context, conn net.Conn) (outcome, error) {
	// When ctx ends, writes get a short grace period, then fail instead of blocking on a stalled peer.
	stop := context.AfterFunc(ctx, func() { conn.SetWriteDeadline(time.Now().Add(cancelGrace)) })
	defer stop()
	w := &connWriter{s: s, conn: conn, buf: make([]byte, 0, s.cfg.WriteBuffer+64<<10), bad: make([]uint64, len(s.bad))}
	timed := s.cfg.SendTimes != nil
	every := uint64(s.cfg.SendTimesEvery)
	for {
		sp, ok, err := s.claim(ctx, s.block)
		if err != nil {
			if ferr := w.flush(); ferr != nil {
				return outCancelled, errors.Join(err, ferr)
			}
			return outCancelled, err
		}
		if !ok {
			if err := w.flush(); err != nil {
				return outFailed, err
			}
			return outDone, nil
		}
		for i := sp.lo; i < sp.hi; i++ {
			if s.cfg.TimeMode == TimeWall {
				w.buf = s.gen.AppendAtMicros(w.buf, i, w.stamp())
			} else {
				w.buf = s.gen.AppendAt(w.buf, i)
			}
			cls, inject := s.injection(i)
			if inject && cls == s.crlf {
				w.buf = append(w.buf, '\r', '\n')
				w.crlf++
			} else {
				w.buf = append(w.buf, '\n')
			}
			w.addGood(i)
			if timed && i%every == 0 {
				w.marks = append(w.marks, i)
			}
			if inject && cls != s.crlf {
				switch cls {
				case s.trunc:
					err := w.flush()
					if err == nil {
						err = w.writeRaw(s.bad[cls], cls)
					}
					s.giveBack(span{i + 1, sp.hi})
					if err != nil {
						return outFailed, err
					}
					return outTruncated, nil
				case s.over:
					err := w.flush()
					if err == nil {
						err = w.writeRaw(s.bad[cls], cls)
					}
					if err != nil {
						s.giveBack(span{i + 1, sp.hi})
						return outFailed, err
					}
				default:
					w.buf = append(w.buf, s.bad[cls]...)
					w.bad[cls]++
				}
			}
			if len(w.buf) >= s.cfg.WriteBuffer {
				if err := w.flush(); err != nil {
					s.giveBack(span{i + 1, sp.hi})
					return outFailed, err
				}
			}
		}
		if s.cfg.Rate > 0 {
			if err := w.flush(); err != nil {
				return outFailed, err
			}
		}
	}
}

// connWriter buffers one connection's output and settles its accounting when a write returns.
type connWriter struct {
	s    *source
	conn net.Conn
	buf  []byte
	// What buf holds, settled by the next flush.
	good   uint64
	lo, hi uint64
	crlf   uint64
	bad    []uint64
	marks  []uint64
	// lastTS is the last wall-clock stamp written on this connection (Unix µs), so that stamps increase.
	lastTS int64
}

// stamp is the wall-clock timestamp of the next event: now, or 1 µs after the previous one when the clock
// has not moved on (many events are rendered within one microsecond).
func (w *connWriter) stamp() int64 {
	ts := time.Now().UnixMicro()
	if ts <= w.lastTS {
		ts = w.lastTS + 1
	}
	w.lastTS = ts
	return ts
}

func (w *connWriter) addGood(i uint64) {
	if w.good == 0 || i < w.lo {
		w.lo = i
	}
	if w.good == 0 || i > w.hi {
		w.hi = i
	}
	w.good++
}

// flush writes the buffer and settles what it held.
func (w *connWriter) flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.conn.Write(w.buf)
	w.s.settle(w, uint64(len(w.buf)), err == nil, time.Now())
	w.buf = w.buf[:0]
	w.good, w.crlf, w.marks = 0, 0, w.marks[:0]
	clear(w.bad)
	if err != nil {
		return fmt.Errorf("writing to %s: %w", w.conn.RemoteAddr(), err)
	}
	return nil
}

// writeRaw writes one bad line of class cls straight from its prebuilt bytes (the buffer must be empty).
func (w *connWriter) writeRaw(line []byte, cls int) error {
	_, err := w.conn.Write(line)
	if err == nil {
		w.s.mu.Lock()
		w.s.bytes += uint64(len(line))
		w.s.badSent[cls]++
		w.s.tEnd = time.Now()
		w.s.mu.Unlock()
		return nil
	}
	return fmt.Errorf("writing to %s: %w", w.conn.RemoteAddr(), err)
}

// settle adds a write's contents to the totals: sent when it succeeded, lost when it failed.
func (s *source) settle(w *connWriter, n uint64, ok bool, at time.Time) {
	s.mu.Lock()
	if ok {
		if w.good > 0 {
			if s.sent == 0 || w.lo < s.lo {
				s.lo = w.lo
			}
			if s.sent == 0 || w.hi > s.hi {
				s.hi = w.hi
			}
		}
		s.sent += w.good
		s.bytes += n
		s.crlfSent += w.crlf
		for i, v := range w.bad {
			s.badSent[i] += v
		}
		s.tEnd = at
	} else {
		s.lost += w.good
	}
	s.mu.Unlock()
	if ok && len(w.marks) > 0 {
		s.timesMu.Lock()
		nanos := at.UnixNano()
		for _, i := range w.marks {
			s.times = strconv.AppendUint(s.times, uint64(s.gen.ID(i)), 10)
			s.times = append(s.times, ',')
			s.times = strconv.AppendInt(s.times, nanos, 10)
			s.times = append(s.times, '\n')
		}
		if len(s.times) >= 64<<10 {
			s.writeTimes()
		}
		s.timesMu.Unlock()
	}
}

// writeTimes hands pending send-time lines to cfg.SendTimes; s.timesMu must be held.
func (s *source) writeTimes() {
	if len(s.times) == 0 || s.timesErr != nil {
		return
	}
	if _, err := s.cfg.SendTimes.Write(s.times); err != nil {
		s.timesErr = fmt.Errorf("writing send times: %w", err)
	}
	s.times = s.times[:0]
}

// finish writes what remains of the send times and reports the first error writing them.
func (s *source) finish() error {
	if s.cfg.SendTimes == nil {
		return nil
	}
	s.timesMu.Lock()
	defer s.timesMu.Unlock()
	s.writeTimes()
	return s.timesErr
}

func (s *source) stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Sent:        s.sent,
		Bytes:       s.bytes,
		CRLFSent:    s.crlfSent,
		Lost:        s.lost,
		Connections: s.conns,
		BadSent:     map[string]uint64{},
	}
	if s.sent > 0 {
		st.FirstEventID, st.LastEventID = s.gen.ID(s.lo), s.gen.ID(s.hi)
	}
	for i, v := range s.badSent {
		if v > 0 {
			st.BadSent[string(AllBadClasses[i])] = v
		}
	}
	if s.started && !s.tEnd.IsZero() {
		st.Seconds = s.tEnd.Sub(s.t0).Seconds()
	}
	return st
}

// closeConn closes conn after its peer has read everything: it half-closes, waits (bounded) for the peer to
// close its side, then closes.
func closeConn(conn net.Conn) {
	if hc, ok := conn.(interface{ CloseWrite() error }); ok && hc.CloseWrite() == nil {
		conn.SetReadDeadline(time.Now().Add(lingerTimeout))
		io.Copy(io.Discard, conn)
	}
	conn.Close()
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
