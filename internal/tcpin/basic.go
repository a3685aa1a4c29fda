package tcpin

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// TCPLogReader is the simple reader: a goroutine per connection reads lines with a bufio.Reader, copies each
// into its own slice and puts it on a bounded queue; one consumer hands them downstream one line at a time.
// The queue's bound is the backpressure: when it is full the socket goroutine blocks and stops reading.
type TCPLogReader struct {
	cfg Config
	ln  net.Listener
	h   Handler
}

var _ Reader = (*TCPLogReader)(nil)

type queued struct {
	src    Source
	line   []byte
	reason event.Reason // empty for a good line
	detail string
}

// NewTCPLogReader validates cfg and returns a reader that feeds h; ln as for NewHighPerfTCPReader.
func NewTCPLogReader(cfg Config, ln net.Listener, h Handler) (*TCPLogReader, error) {
	if ln != nil && cfg.Addr == "" {
		cfg.Addr = ln.Addr().String()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &TCPLogReader{cfg: cfg, ln: ln, h: h}, nil
}

// Run reads until ctx is done, then drains the queue.
func (r *TCPLogReader) Run(ctx context.Context) error {
	queue := make(chan queued, r.cfg.QueueLines)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.consume(context.WithoutCancel(ctx), queue)
	}()
	err := run(ctx, r.cfg, r.ln, func(ctx context.Context, conn net.Conn, src Source) error {
		return r.serve(ctx, conn, src, queue)
	})
	close(queue) // every producer of the queue has returned: run waits for its connections
	wg.Wait()
	return err
}

func (r *TCPLogReader) consume(ctx context.Context, queue <-chan queued) {
	batch := make([][]byte, 1)
	for q := range queue {
		if q.reason != "" {
			r.h.HandleReject(ctx, q.src, q.line, q.reason, q.detail)
			continue
		}
		batch[0] = q.line
		r.h.HandleLines(ctx, q.src, batch)
	}
}

func (r *TCPLogReader) serve(ctx context.Context, conn net.Conn, src Source, queue chan<- queued) error {
	br := bufio.NewReaderSize(conn, 64<<10)
	d := newDeadliner(ctx, conn, r.cfg)
	defer d.stop()
	max := r.cfg.MaxLineBytes
	var (
		pending    []byte // the start of a line longer than the bufio buffer
		discarding bool   // skipping the rest of an oversized line
	)
	for {
		d.arm(ctx)
		frag, err := br.ReadSlice('\n')
		r.cfg.Observer.BytesRead(len(frag))
		switch {
		case err == nil:
			if discarding {
				discarding = false
				pending = pending[:0]
				continue
			}
			line := make([]byte, 0, len(pending)+len(frag))
			line = append(append(line, pending...), frag[:len(frag)-1]...)
			pending = pending[:0]
			line = trimCR(line)
			if len(line) > max {
				queue <- queued{src: src, line: sample(line), reason: event.ReasonOversized,
					detail: fmt.Sprintf("line of %d bytes exceeds the limit of %d bytes", len(line), max)}
				continue
			}
			queue <- queued{src: src, line: line}
		case errors.Is(err, bufio.ErrBufferFull):
			if discarding {
				continue
			}
			pending = append(pending, frag...)
			if len(pending) > max+1 {
				queue <- queued{src: src, line: append([]byte(nil), sample(pending)...), reason: event.ReasonOversized,
					detail: fmt.Sprintf("line exceeds the limit of %d bytes", max)}
				discarding = true
				pending = nil
			}
		default:
			cause, rerr := endCause(ctx, err)
			if !discarding && len(pending)+len(frag) > 0 {
				partial := append(pending, frag...)
				queue <- queued{src: src, line: append([]byte(nil), sample(partial)...), reason: event.ReasonTruncated,
					detail: fmt.Sprintf("%s after %d bytes of a line without its newline", cause, len(partial))}
			}
			return rerr
		}
	}
}
