package pipeline

import (
	"context"
	"testing"
	"time"
)

func TestCloseReserve(t *testing.T) {
	for _, tt := range []struct{ timeout, want time.Duration }{
		{30 * time.Second, 5 * time.Second}, // the default: capped
		{8 * time.Second, 1600 * time.Millisecond},
		{time.Second, 200 * time.Millisecond},
		{2 * time.Minute, 5 * time.Second},
	} {
		if got := closeReserve(tt.timeout); got != tt.want {
			t.Errorf("closeReserve(%v) = %v, want %v", tt.timeout, got, tt.want)
		}
	}
}

// TestShutdownClock: the clock starts once, its flush context ends the reserve before the deadline, and not
// before the clock started (a SIGTERM that has not come yet must not cut anything short).
func TestShutdownClock(t *testing.T) {
	parent, cancelParent := context.WithCancel(context.Background())
	sd := newShutdown(parent, 500*time.Millisecond)
	defer sd.release()
	cancelParent() // SIGTERM alone does not end the flush context: the clock does
	select {
	case <-sd.flushCtx.Done():
		t.Fatal("flush context done before the clock started")
	case <-time.After(50 * time.Millisecond):
	}
	before := time.Now()
	sd.start()
	deadline := sd.deadlineTime()
	sd.start() // a second start moves nothing
	if d := sd.deadlineTime(); !d.Equal(deadline) {
		t.Fatalf("deadline moved from %v to %v", deadline, d)
	}
	if d := deadline.Sub(before); d < 500*time.Millisecond || d > 2*time.Second {
		t.Fatalf("deadline %v after the start, want 500ms", d)
	}
	<-sd.flushCtx.Done()
	// Not earlier than the reserve before the deadline (a late wake-up only makes what is left smaller).
	if left, reserve := time.Until(deadline), closeReserve(500*time.Millisecond); left > reserve+20*time.Millisecond {
		t.Errorf("flush context ended %v before the deadline, want at most the reserve %v", left, reserve)
	}
}

func TestWithin(t *testing.T) {
	if !within(time.Now().Add(time.Second), func() {}) {
		t.Error("within = false for a function that returns at once")
	}
	block := make(chan struct{})
	defer close(block)
	start := time.Now()
	if within(time.Now().Add(100*time.Millisecond), func() { <-block }) {
		t.Error("within = true for a function that blocks")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("within waited %v past a 100ms deadline", d)
	}
}

func TestCountsAbandon(t *testing.T) {
	var c Counts
	c.received.Add(10)
	c.delivered.Add(4)
	c.deadLettered.Add(1)
	if n := c.abandon(); n != 5 {
		t.Fatalf("abandon = %d, want the 5 in flight", n)
	}
	if s := c.Snapshot(); !s.Balanced() || s.Failed != 5 {
		t.Fatalf("after abandon: %+v, want balanced with 5 failed", s)
	}
}
