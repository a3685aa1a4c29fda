package tcpin

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// shared is what the connections of one reader share: the count of connections (in all and per source
// address) and the partial-line budget.
type shared struct {
	active  atomic.Int64
	mu      sync.Mutex
	perAddr map[string]int
	partial *budget
}

// admit takes a slot for a connection from host, or says why not.
func (s *shared) admit(cfg Config, host string) error {
	if s.active.Load() >= int64(cfg.MaxConns) {
		return ErrTooManyConnections
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[host] >= cfg.MaxConnsPerAddr {
		return ErrTooManyFromAddr
	}
	s.perAddr[host]++
	s.active.Add(1)
	return nil
}

// release gives back the slot admit took.
func (s *shared) release(host string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.perAddr[host]--; s.perAddr[host] <= 0 {
		delete(s.perAddr, host)
	}
	s.active.Add(-1)
}

// scarce reports whether more than half of the connection slots are taken: then slow clients are closed.
func (s *shared) scarce(cfg Config) bool { return s.active.Load() > int64(cfg.MaxConns)/2 }

// budget is a count of bytes that callers take from and give back to, never past its size. take does not
// wait: it succeeds or fails at once. Safe for concurrent use.
type budget struct {
	size       int64
	used, peak atomic.Int64
}

func newBudget(size int64) *budget { return &budget{size: size} }

// take takes n bytes when they fit.
func (b *budget) take(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.size {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			for {
				p := b.peak.Load()
				if used+n <= p || b.peak.CompareAndSwap(p, used+n) {
					return true
				}
			}
		}
	}
}

func (b *budget) give(n int64)   { b.used.Add(-n) }
func (b *budget) inUse() int64   { return b.used.Load() }
func (b *budget) peakUse() int64 { return b.peak.Load() }
func (b *budget) overDetail(line int) string {
	return fmt.Sprintf("a partial line of %d bytes would exceed the partial-line budget of %d bytes shared by all connections (%d in use)",
		line, b.size, b.used.Load())
}

// semaphore is a count of bytes that callers wait for: TCPLogReader's byte bound on its queue. A request
// larger than the whole size is clamped to it, so one big batch waits for an empty queue instead of forever.
type semaphore struct {
	mu   sync.Mutex
	cond *sync.Cond
	size int64
	used int64
}

func newSemaphore(size int64) *semaphore {
	s := &semaphore{size: size}
	s.cond = sync.NewCond(&s.mu)
	return s
}

// acquire waits until n bytes (at most size) are free and takes them; it returns what it took, for release.
func (s *semaphore) acquire(n int64) int64 {
	n = min(n, s.size)
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.used+n > s.size {
		s.cond.Wait()
	}
	s.used += n
	return n
}

// tryAcquire takes n bytes (at most size) when they are free now.
func (s *semaphore) tryAcquire(n int64) (int64, bool) {
	n = min(n, s.size)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.used+n > s.size {
		return 0, false
	}
	s.used += n
	return n, true
}

func (s *semaphore) release(n int64) {
	s.mu.Lock()
	s.used -= n
	s.mu.Unlock()
	s.cond.Broadcast()
}

// byteSize is a flag.Value for a byte count written as a number with an optional KiB, MiB or GiB suffix.
type byteSize struct{ v *int64 }

func (b byteSize) String() string {
	if b.v == nil {
		return ""
	}
	return strconv.FormatInt(*b.v, 10)
}

func (b byteSize) Set(s string) error {
	mult := int64(1)
	for suffix, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suffix) {
			s, mult = strings.TrimSuffix(s, suffix), m
			break
		}
	}
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
	if err != nil || n < 0 {
		return fmt.Errorf("%q: want a byte count such as 134217728 or 128MiB", s)
	}
	*b.v = n * mult
	return nil
}
