package tcpin

import (
	"errors"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// TestListenModeIdleTimeoutTrickle: a connection that sends a byte at a time, never finishing a line within
// the idle timeout, is closed like a silent one; a connection that keeps finishing lines stays open.
func TestListenModeIdleTimeoutTrickle(t *testing.T) {
	// The steady connection finishes a line every idle/10. The test measures the gaps it really kept (a busy
	// machine can stretch a sleep) and fails as unproven, not as a reader fault, if one reached idle/2.
	const idle = time.Second
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, IdleTimeout: idle}, ln, rec)
			defer stop()

			slow, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer slow.Close()
			steady, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer steady.Close()

			closed := make(chan time.Duration, 1)
			start := time.Now()
			go func() {
				slow.SetReadDeadline(time.Now().Add(10 * time.Second))
				// The reader closing the connection reads as EOF, or as a reset when a trickled byte was
				// still unread in its socket buffer at the close (the kernel then answers with RST).
				if _, err := slow.Read(make([]byte, 1)); errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
					closed <- time.Since(start)
				}
				close(closed)
			}()
			// Trickle a byte every idle/10, and a whole line every idle/10 on the other connection, for 3 idle
			// timeouts; then one more line, which must still be read.
			const steps = 30
			var widest time.Duration
			last := time.Now()
			for i := 0; i < steps; i++ {
				slow.Write([]byte("x"))
				steady.Write([]byte("line\n"))
				now := time.Now()
				widest, last = max(widest, now.Sub(last)), now
				time.Sleep(idle / 10)
			}
			steady.Write([]byte("line\n"))
			if widest = max(widest, time.Since(last)); widest >= idle/2 {
				t.Fatalf("precondition not met: the steady connection went %v without a line (idle timeout %v)", widest, idle)
			}
			rec.waitFor(t, steps+2, 5*time.Second)
			took, ok := <-closed
			if !ok {
				t.Fatalf("the trickling connection was not closed")
			}
			if took > 3*idle {
				t.Errorf("the trickling connection was closed after %v, want within about %v", took, idle)
			}
			var lines, truncated int
			for _, it := range rec.snapshot() {
				switch it.reason {
				case "":
					lines++
				case event.ReasonTruncated:
					truncated++
				}
			}
			if lines != steps+1 || truncated != 1 {
				t.Errorf("got %d lines and %d truncated, want %d and 1 (the trickle's partial line)", lines, truncated, steps+1)
			}
		})
	}
}
