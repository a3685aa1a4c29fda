package tcpin

import (
	"context"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// Source identifies the connection a line came from.
type Source struct {
	// Remote is the peer address.
	Remote string
	// ConnID numbers connections from 1 within one reader.
	ConnID uint64
	// Peer is the identity of the verified TLS peer (its certificate's first name), empty without one.
	Peer string
}

// Handler consumes what a reader frames. Both methods may be called concurrently from different connections
// and may block: blocking is how backpressure reaches the socket, since a reader does not read again until
// the call returns. Slices passed in are only valid during the call.
type Handler interface {
	// HandleLines receives complete lines with their "\n" or "\r\n" terminator removed.
	HandleLines(ctx context.Context, src Source, lines [][]byte)
	// HandleReject receives input the framer refuses: an oversized line (a bounded sample of its start) or a
	// line cut short by a disconnect or by the reader stopping (reason event.ReasonTruncated).
	HandleReject(ctx context.Context, src Source, sample []byte, reason event.Reason, detail string)
}

// Observer receives connection-level events, for metrics.
type Observer interface {
	ConnOpened(src Source)
	ConnClosed(src Source, err error)
	ConnRefused(remote string, reason error)
	// HandshakeFailed reports a TLS handshake that failed, with one of the Handshake* reasons.
	HandshakeFailed(remote, reason string)
	BytesRead(n int)
}

type nopObserver struct{}

func (nopObserver) ConnOpened(Source)           {}
func (nopObserver) ConnClosed(Source, error)    {}
func (nopObserver) ConnRefused(string, error)   {}
func (nopObserver) BytesRead(int)               {}
func (nopObserver) HandshakeFailed(_, _ string) {}

// Reader reads the log source until ctx is done. On return every complete line it read has been handed to
// the Handler and the Handler calls have returned.
type Reader interface {
	Run(ctx context.Context) error
}
