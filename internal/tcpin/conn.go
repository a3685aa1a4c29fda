package tcpin

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"
)

// serveFunc reads one connection until it ends or ctx is done.
type serveFunc func(ctx context.Context, conn net.Conn, src Source) error

// run drives serve over the connections that cfg's mode yields, and returns when ctx is done (or, with
// Once, after the first connection). Every connection goroutine has returned when run returns.
func run(ctx context.Context, cfg Config, ln net.Listener, serve serveFunc) error {
	// After every connection goroutine has returned: no refusal comes after the final counts.
	defer cfg.failures.close()
	if cfg.Mode == Listen {
		return runListen(ctx, cfg, ln, serve)
	}
	return runConnect(ctx, cfg, serve)
}

func runConnect(ctx context.Context, cfg Config, serve serveFunc) error {
	var dialer net.Dialer
	backoff := cfg.MinBackoff
	var connID uint64
	for {
		conn, err := dialer.DialContext(ctx, "tcp", cfg.Addr)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			wait := jitter(backoff)
			cfg.Logger.Warn("dialing log source", "addr", cfg.Addr, "err", err, "retry_in", wait.String())
			if !sleep(ctx, wait) {
				return nil
			}
			backoff = min(2*backoff, cfg.MaxBackoff)
			continue
		}
		connID++
		src := Source{Remote: conn.RemoteAddr().String(), ConnID: connID}
		if cfg.TLS != nil {
			tc, err := handshake(ctx, cfg, conn)
			if err != nil {
				conn.Close()
				if ctx.Err() != nil {
					return nil
				}
				handshakeFailed(cfg, src.Remote, err)
				wait := jitter(backoff)
				if !sleep(ctx, wait) {
					return nil
				}
				backoff = min(2*backoff, cfg.MaxBackoff)
				continue
			}
			conn, src.Peer = tc, peerIdentity(tc)
		}
		backoff = cfg.MinBackoff
		serveObserved(ctx, cfg, conn, src, serve)
		if cfg.Once || ctx.Err() != nil {
			return nil
		}
	}
}

func runListen(ctx context.Context, cfg Config, ln net.Listener, serve serveFunc) error {
	if ln == nil {
		var lc net.ListenConfig
		var err error
		if ln, err = lc.Listen(ctx, "tcp", cfg.Addr); err != nil {
			return fmt.Errorf("listening on %s: %w", cfg.Addr, err)
		}
	}
	warnPlaintext(cfg, ln.Addr())
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()

	var (
		wg     sync.WaitGroup
		connID uint64
		delay  time.Duration
	)
	defer wg.Wait()
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: back off instead of spinning, as long as we are running.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			cfg.Logger.Warn("accepting connection", "err", err, "retry_in", delay.String())
			if !sleep(ctx, delay) {
				return nil
			}
			continue
		}
		delay = 0
		host := hostOf(conn.RemoteAddr().String())
		if err := cfg.shared.admit(cfg, host); err != nil {
			cfg.Observer.ConnRefused(conn.RemoteAddr().String(), err)
			conn.Close()
			continue
		}
		connID++
		src := Source{Remote: conn.RemoteAddr().String(), ConnID: connID}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cfg.shared.release(host)
			if cfg.TLS != nil {
				// The handshake runs on the connection's goroutine, holding its slot, but for no longer than the
				// handshake timeout: a client that stalls it cannot keep the slot.
				tc, err := handshake(ctx, cfg, conn)
				if err != nil {
					conn.Close()
					if ctx.Err() == nil {
						handshakeFailed(cfg, src.Remote, err)
					}
					return
				}
				conn, src.Peer = tc, peerIdentity(tc)
			}
			serveObserved(ctx, cfg, conn, src, serve)
		}()
	}
}

func serveObserved(ctx context.Context, cfg Config, conn net.Conn, src Source, serve serveFunc) {
	defer conn.Close()
	cfg.Observer.ConnOpened(src)
	if src.Peer != "" {
		cfg.Logger.Info("log source connected", "remote", src.Remote, "conn", src.ConnID, "tls_peer", src.Peer)
	} else {
		cfg.Logger.Info("log source connected", "remote", src.Remote, "conn", src.ConnID)
	}
	err := serve(ctx, conn, src)
	cfg.Observer.ConnClosed(src, err)
	if err != nil {
		cfg.Logger.Warn("log source connection ended", "remote", src.Remote, "conn", src.ConnID, "err", err)
	} else {
		cfg.Logger.Info("log source disconnected", "remote", src.Remote, "conn", src.ConnID)
	}
}

// deadliner arms a connection's read deadlines. Used by the connection's reading goroutine only, except for
// the stop's interrupt.
//
// In listen mode it closes a connection that completes no line within IdleTimeout (silent, or trickling a
// line too slowly: slowloris), and, while slots are scarce, one that completes fewer than MinProgressBytes
// of lines in a ProgressInterval (a client sending one short line just within every idle timeout would
// otherwise hold its slot forever).
//
// The read-out: lines the source wrote that the kernel holds are acknowledged to the source, and closing
// the socket would drop them unseen. So when ctx ends, a read waiting on the socket is interrupted, the
// receive window is clamped (a source that keeps writing can add little more), and reading goes on until
// the socket has had nothing to read for readOutQuiet, or StopReadTimeout after the stop, whichever comes
// first. Whatever the kernel still holds then is logged with its size when the connection closes.
type deadliner struct {
	conn    net.Conn
	cfg     Config
	listen  bool
	readOut time.Duration // StopReadTimeout
	stop    func() bool
	set     time.Time // the deadline armed last
	// Listen mode: when the idle timeout ends, and the progress window.
	idleAt     time.Time
	windowEnd  time.Time
	windowDone int // bytes of completed lines in the window
	slow       bool
	// Set once the read-out begins.
	stopping bool
	until    time.Time
}

// readOutQuiet is how long the read-out waits for more bytes before it deems the kernel's buffer empty.
const readOutQuiet = 50 * time.Millisecond

func newDeadliner(ctx context.Context, conn net.Conn, cfg Config) *deadliner {
	d := &deadliner{conn: conn, cfg: cfg, listen: cfg.Mode == Listen, readOut: cfg.StopReadTimeout}
	if d.listen {
		now := time.Now()
		d.idleAt, d.windowEnd = now.Add(cfg.IdleTimeout), now.Add(cfg.ProgressInterval)
	}
	// Wakes a read waiting on the socket; the reading goroutine then begins the read-out (see again).
	d.stop = context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	return d
}

// lines records that a read completed lines, n bytes of them: the idle timeout starts again, and they count
// as progress.
func (d *deadliner) lines(n int) {
	if d.listen {
		d.idleAt = time.Now().Add(d.cfg.IdleTimeout)
		d.windowDone += n
	}
}

// arm sets the deadline for the next read.
func (d *deadliner) arm(ctx context.Context) {
	if ctx.Err() == nil {
		if d.listen {
			d.setDeadline(minTime(d.idleAt, d.windowEnd))
		}
		// Checked again after setting the deadline: if ctx ended meanwhile, the interrupt's deadline may have
		// been overwritten, so go on to the read-out's rather than block until the idle timeout.
		if ctx.Err() == nil {
			return
		}
	}
	now := time.Now()
	if !d.stopping {
		d.stopping, d.until = true, now.Add(d.readOut)
		clampWindow(d.conn)
	}
	d.setDeadline(minTime(d.until, now.Add(readOutQuiet)))
}

func (d *deadliner) setDeadline(t time.Time) {
	if !t.Equal(d.set) {
		d.conn.SetReadDeadline(t)
		d.set = t
	}
}

// again reports whether a read that failed with err should be retried: the stop interrupted it before the
// read-out began, or a progress window ended with enough progress (or slots to spare).
func (d *deadliner) again(ctx context.Context, err error) bool {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return false
	}
	d.set = time.Time{} // the interrupt may have changed it
	if ctx.Err() != nil {
		return !d.stopping
	}
	now := time.Now()
	if !d.listen || !now.Before(d.idleAt) || now.Before(d.windowEnd) {
		return false
	}
	if d.windowDone < d.cfg.MinProgressBytes && d.cfg.shared.scarce(d.cfg) {
		d.slow = true
		return false
	}
	d.windowEnd, d.windowDone = now.Add(d.cfg.ProgressInterval), 0
	return true
}

// endCause describes why a stream ended, for the truncated-line reason, and the error worth reporting.
func (d *deadliner) endCause(ctx context.Context, err error) (string, error) {
	switch {
	case ctx.Err() != nil:
		return "reader stopped", nil
	case errors.Is(err, io.EOF):
		return "source disconnected", nil
	case d.slow:
		return "too slow", fmt.Errorf("%w: fewer than %d bytes of lines in %v while connections are scarce", ErrTooSlow,
			d.cfg.MinProgressBytes, d.cfg.ProgressInterval)
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "idle timeout", fmt.Errorf("connection idle: %w", err)
	default:
		return "read error", fmt.Errorf("reading: %w", err)
	}
}

// closing logs what the kernel still holds for the connection when the reader closes it at stop: bytes TCP
// acknowledged to the source that the reader never read (at most about one receive window).
func (d *deadliner) closing(src Source) {
	if !d.stopping {
		return
	}
	if n, ok := unreadBytes(d.conn); ok && n > 0 {
		d.cfg.Logger.Warn("source connection closed with unread bytes at stop", "remote", src.Remote, "conn", src.ConnID,
			"unread_bytes", n, "stop_read_timeout", d.readOut.String())
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func jitter(d time.Duration) time.Duration {
	// Full jitter in [d/2, d): spreads reconnect storms from many readers.
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// handshakeFailed counts a failed TLS handshake and logs it when it is the first of its reason from its source
// address in the log interval (see failureLog).
func handshakeFailed(cfg Config, remote string, err error) {
	reason := HandshakeReason(err)
	cfg.Observer.HandshakeFailed(remote, reason)
	if cfg.failures.allow(hostOf(remote), reason) {
		cfg.Logger.Warn("TLS handshake failed", "remote", remote, "reason", reason, "err", err,
			"repeats_logged_after", cfg.LogInterval.String())
	}
}

// warnPlaintext warns when plain TCP listens where more than this machine can reach it.
func warnPlaintext(cfg Config, addr net.Addr) {
	if cfg.TLS != nil {
		return
	}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsLoopback() {
		return
	}
	cfg.Logger.Warn("listening on a non-loopback address without TLS: anyone who can reach it can send lines; set --source-tls",
		"addr", addr.String())
}
