package tcpin

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// errNoSocket is returned by socketQueues when /proc/net/tcp lists no established socket for the pair.
var errNoSocket = errors.New("no established socket")

// socketQueues returns the queues the kernel reports in /proc/net/tcp for the established IPv4 socket from
// local to remote: tx, bytes written and not yet acknowledged by the peer, and rx, bytes received and not
// yet read by the socket's owner.
func socketQueues(local, remote *net.TCPAddr) (tx, rx int, err error) {
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		return 0, 0, fmt.Errorf("reading socket queues: %w", err)
	}
	defer f.Close()
	want := procAddr(local) + " " + procAddr(remote)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "  sl  local_address rem_address   st tx_queue:rx_queue ..."
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 || fields[1]+" "+fields[2] != want || fields[3] != "01" { // 01: ESTABLISHED
			continue
		}
		txs, rxs, _ := strings.Cut(fields[4], ":")
		t, err1 := strconv.ParseInt(txs, 16, 64)
		r, err2 := strconv.ParseInt(rxs, 16, 64)
		if err := errors.Join(err1, err2); err != nil {
			return 0, 0, fmt.Errorf("parsing socket queues %q: %w", fields[4], err)
		}
		return int(t), int(r), nil
	}
	if err := sc.Err(); err != nil {
		return 0, 0, fmt.Errorf("reading socket queues: %w", err)
	}
	return 0, 0, fmt.Errorf("%w from %s to %s", errNoSocket, local, remote)
}

// procAddr writes an IPv4 address as /proc/net/tcp does: the address as a native-endian (here little-endian)
// 32-bit word, then the port, both in hex.
func procAddr(a *net.TCPAddr) string {
	ip := a.IP.To4()
	if ip == nil {
		return ""
	}
	return fmt.Sprintf("%08X:%04X", binary.LittleEndian.Uint32(ip), a.Port)
}

// waitPeerRead waits until the peer of the client connection c has read everything c wrote: the kernel
// holds nothing c sent unacknowledged, and nothing in the peer's receive queue. A reader test that stops or
// times out the reader must first know what the reader has taken from the socket, since a read after the
// stop is refused by design; on a busy machine a fixed sleep does not tell.
func waitPeerRead(tb testing.TB, c net.Conn, d time.Duration) {
	tb.Helper()
	local, remote := c.LocalAddr().(*net.TCPAddr), c.RemoteAddr().(*net.TCPAddr)
	deadline := time.Now().Add(d)
	for {
		tx, _, err := socketQueues(local, remote)
		if err != nil {
			tb.Fatalf("client side: %v", err)
		}
		_, rx, err := socketQueues(remote, local)
		if err != nil {
			tb.Fatalf("reader side (closed before it read what was sent?): %v", err)
		}
		if tx == 0 && rx == 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("after %v the reader has not read what was sent: %d bytes unacknowledged, %d unread", d, tx, rx)
		}
		time.Sleep(time.Millisecond)
	}
}
