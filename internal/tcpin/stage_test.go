package tcpin

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// gateHandler records calls and blocks each one until release is closed.
type gateHandler struct {
	mu      sync.Mutex
	got     []string
	entered chan struct{}
	release chan struct{}
}

func (g *gateHandler) record(s string) {
	g.entered <- struct{}{}
	<-g.release
	g.mu.Lock()
	g.got = append(g.got, s)
	g.mu.Unlock()
}

func (g *gateHandler) HandleLines(_ context.Context, _ Source, lines [][]byte) {
	g.record(fmt.Sprintf("lines %q", lines))
}

func (g *gateHandler) HandleReject(_ context.Context, _ Source, sample []byte, reason event.Reason, _ string) {
	g.record(fmt.Sprintf("reject %s %q", reason, sample))
}

func TestStageKeepsOrderCopiesAndPushesBack(t *testing.T) {
	g := &gateHandler{entered: make(chan struct{}, 100), release: make(chan struct{})}
	s := newStage(g, 1, DefaultReadBufferBytes)
	ctx := context.Background()
	buf := []byte("aaa\nbbb")
	calls := make(chan int, 10)
	go func() {
		s.HandleLines(ctx, Source{}, [][]byte{buf[:3], buf[4:]})
		calls <- 1
		buf[0] = 'X' // the framer reuses its buffer once a call returns: the stage must have copied
		s.HandleReject(ctx, Source{}, []byte("big"), event.ReasonOversized, "too long")
		calls <- 2
		s.HandleLines(ctx, Source{}, [][]byte{[]byte("ccc")})
		calls <- 3
	}()
	// The handler holds the first batch, the second is queued: the third call must wait (backpressure).
	<-g.entered
	for _, want := range []int{1, 2} {
		if got := <-calls; got != want {
			t.Fatalf("call %d returned, want %d", got, want)
		}
	}
	select {
	case c := <-calls:
		t.Fatalf("call %d returned while the handler held one batch and another was queued", c)
	case <-time.After(100 * time.Millisecond):
	}
	close(g.release)
	if got := <-calls; got != 3 {
		t.Fatalf("call %d returned, want 3", got)
	}
	s.close() // returns only after every call reached the handler and returned
	want := []string{`lines ["aaa" "bbb"]`, `reject oversized_line "big"`, `lines ["ccc"]`}
	g.mu.Lock()
	defer g.mu.Unlock()
	if fmt.Sprint(g.got) != fmt.Sprint(want) {
		t.Fatalf("handler saw %q, want %q", g.got, want)
	}
}
