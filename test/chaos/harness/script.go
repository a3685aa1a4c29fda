package harness

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Step writes one connection's worth of input; the connection is closed when it returns.
type Step func(w io.Writer) error

// ScriptSource is a connect-mode log source that plays one Step per connection, in order, closing the
// connection after each, so a reader that reconnects gets them all. After the last step it holds the next
// connection open, idle, until the reader hangs up.
type ScriptSource struct {
	ln    net.Listener
	steps []Step
	done  chan struct{}
	next  atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	errs  []error
	conn  net.Conn
}

// NewScriptSource listens on a free loopback port and plays steps to whoever connects.
func NewScriptSource(tb testing.TB, steps []Step) *ScriptSource {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("script source: listening: %v", err)
	}
	s := &ScriptSource{ln: ln, steps: steps, done: make(chan struct{})}
	s.wg.Add(1)
	go s.serve()
	tb.Cleanup(s.Close)
	return s
}

// Addr is the address the reader dials.
func (s *ScriptSource) Addr() string { return s.ln.Addr().String() }

// Done is closed once every step was played.
func (s *ScriptSource) Done() <-chan struct{} { return s.done }

// Errs returns the write errors of the steps played so far.
func (s *ScriptSource) Errs() []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]error(nil), s.errs...)
}

// Close stops serving.
func (s *ScriptSource) Close() {
	s.ln.Close()
	s.mu.Lock()
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *ScriptSource) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn = conn
		s.mu.Unlock()
		i := int(s.next.Add(1)) - 1
		if i >= len(s.steps) {
			_, _ = io.Copy(io.Discard, conn)
			conn.Close()
			continue
		}
		if err := s.steps[i](conn); err != nil {
			s.mu.Lock()
			s.errs = append(s.errs, err)
			s.mu.Unlock()
		}
		conn.Close()
		if i == len(s.steps)-1 {
			close(s.done)
		}
	}
}
