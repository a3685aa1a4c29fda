package pipeline

import (
	"context"
	"sync"
	"time"
)

// shutdown is the one clock of the reader's stop. It starts when reading stops (SIGTERM, a bound reached,
// a fatal Kafka error) and bounds everything after that by --drain-timeout: the Produce calls still waiting
// for room in the local queue, the flush, and the close that purges what Kafka did not acknowledge. The task's
// stop timeout is longer than the drain timeout (infra's contract test checks it), so the summary and the
// last metrics are written before ECS's SIGKILL however Kafka behaves.
//
// The last part of the budget (closeReserve) is kept for the close: the flush context ends that much before
// the deadline.
type shutdown struct {
	timeout, reserve time.Duration
	// flushCtx ends reserve before the deadline: the Produce calls and the flush wait until then.
	flushCtx context.Context
	cancel   context.CancelFunc

	mu       sync.Mutex
	deadline time.Time
	timer    *time.Timer
}

// newShutdown returns a clock of timeout that has not started. flushCtx outlives parent on purpose: lines
// already read keep waiting for Kafka after SIGTERM, until the clock says stop.
func newShutdown(parent context.Context, timeout time.Duration) *shutdown {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	return &shutdown{timeout: timeout, reserve: closeReserve(timeout), flushCtx: ctx, cancel: cancel}
}

// closeReserve is the part of the shutdown budget kept for closing the Kafka client: a fifth of it, at most
// 5 s. Closing purges librdkafka's queues, serves the purge's delivery reports and stops its threads, which
// takes well under a second even with the broker gone.
func closeReserve(timeout time.Duration) time.Duration {
	return min(timeout/5, 5*time.Second)
}

// start starts the clock; only the first call counts. It is safe for concurrent use.
func (s *shutdown) start() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.deadline.IsZero() {
		return
	}
	s.deadline = time.Now().Add(s.timeout)
	s.timer = time.AfterFunc(s.timeout-s.reserve, s.cancel)
}

// deadlineTime returns when the shutdown must be over, starting the clock if it has not started.
func (s *shutdown) deadlineTime() time.Time {
	s.start()
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.deadline
}

// release stops the clock's timer and ends flushCtx.
func (s *shutdown) release() {
	s.mu.Lock()
	if s.timer != nil {
		s.timer.Stop()
	}
	s.mu.Unlock()
	s.cancel()
}

// within runs f and waits for it until deadline. It reports whether f returned in time; if not, f goes on
// running on its own goroutine, which the process's exit ends.
func within(deadline time.Time, f func()) bool {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case <-done:
		return true
	case <-t.C:
		return false
	}
}
