package tcpin

import (
	"crypto/tls"
	"net"

	"golang.org/x/sys/unix"
)

// tcpOf is the TCP connection under conn (under TLS too), or nil.
func tcpOf(conn net.Conn) *net.TCPConn {
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	tcp, _ := conn.(*net.TCPConn)
	return tcp
}

// clampWindow bounds the receive window the kernel advertises on conn to its minimum (about 1 KiB), so that
// once the reader stops, a source that keeps writing can add little to what the kernel already holds: the
// kernel never takes back a window it advertised, but it opens no new one wider than the clamp.
func clampWindow(conn net.Conn) {
	tcp := tcpOf(conn)
	if tcp == nil {
		return
	}
	// Best effort: a connection the clamp cannot reach is read out all the same, only with more to read.
	if rc, err := tcp.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			_ = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, 1) // the kernel raises 1 to its floor
		})
	}
}

// unreadBytes is how many bytes the kernel holds for conn that the reader has not read: TCP acknowledged
// them to the source, so closing now loses them. ok is false where it cannot be known.
func unreadBytes(conn net.Conn) (n int, ok bool) {
	tcp := tcpOf(conn)
	if tcp == nil {
		return 0, false
	}
	rc, err := tcp.SyscallConn()
	if err != nil {
		return 0, false
	}
	var ierr error
	if err := rc.Control(func(fd uintptr) { n, ierr = unix.IoctlGetInt(int(fd), unix.SIOCINQ) }); err != nil || ierr != nil {
		return 0, false
	}
	return n, true
}
