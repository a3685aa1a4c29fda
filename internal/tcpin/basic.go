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

// TCPLogReader is the simple reader: a goroutine per connection reads lines with a bufio.Reader, copies them
// into batches and puts the batches on a bounded queue; one consumer hands each batch downstream. The queue's
// bound (about Config.QueueLines lines) is the backpressure: when it is full the socket goroutine blocks and
// stops reading.
//
// Lines travel in batches rather than one by one because a channel handoff per line costs more than the rest
// of the line's path together once the consumer is the slower side (a full queue wakes the socket goroutine
// for every line): a batch is sent when it holds batchLines lines or when everything read so far is framed,
// so a quiet source's line is not held back waiting for company.
type TCPLogReader struct {
	cfg  Config
	ln   net.Listener
	h    Handler
	pool sync.Pool // *lineBatch, recycled once the handler returns
}

var _ Reader = (*TCPLogReader)(nil)

// batchLines is the most lines one queued batch carries.
const batchLines = 128

// lineBatch is a run of good lines from one connection, copied back to back into buf.
type lineBatch struct {
	lines [][]byte
	buf   []byte
}

func (b *lineBatch) add(line []byte) {
	// Lines already added keep pointing at the old array if buf grows: still valid, just not shared.
	start := len(b.buf)
	b.buf = append(b.buf, line...)
	b.lines = append(b.lines, b.buf[start:len(b.buf):len(b.buf)])
}

// reset empties b for the next lines, keeping its capacity. Call it only once the handler has returned: the
// handler keeps no slice past its return.
func (b *lineBatch) reset() {
	clear(b.lines) // drop the references, not the capacity
	b.lines, b.buf = b.lines[:0], b.buf[:0]
}

type queued struct {
	src    Source
	batch  *lineBatch   // good lines; nil for a reject
	line   []byte       // a reject's sample
	reason event.Reason // a reject's reason
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
	queue := make(chan queued, max(1, r.cfg.QueueLines/batchLines))
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

func (r *TCPLogReader) newBatch() *lineBatch {
	if b, ok := r.pool.Get().(*lineBatch); ok {
		return b
	}
	return &lineBatch{lines: make([][]byte, 0, batchLines), buf: make([]byte, 0, 64<<10)}
}

func (r *TCPLogReader) consume(ctx context.Context, queue <-chan queued) {
	for q := range queue {
		if q.batch == nil {
			r.h.HandleReject(ctx, q.src, q.line, q.reason, q.detail)
			continue
		}
		r.h.HandleLines(ctx, q.src, q.batch.lines)
		q.batch.reset()
		r.pool.Put(q.batch)
	}
}

func (r *TCPLogReader) serve(ctx context.Context, conn net.Conn, src Source, queue chan<- queued) error {
	br := bufio.NewReaderSize(conn, 64<<10)
	d := newDeadliner(ctx, conn, r.cfg)
	defer d.stop()
	defer d.closing(r.cfg, src)
	max := r.cfg.MaxLineBytes
	var (
		pending    []byte // the start of a line longer than the bufio buffer
		discarding bool   // skipping the rest of an oversized line
		batch      *lineBatch
	)
	// flush queues the lines batched so far; a reject is queued only after it, so order is kept.
	flush := func() {
		if batch != nil && len(batch.lines) > 0 {
			queue <- queued{src: src, batch: batch}
			batch = nil
		}
	}
	reject := func(line []byte, reason event.Reason, detail string) {
		flush()
		queue <- queued{src: src, line: line, reason: reason, detail: detail}
	}
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
			line := frag[:len(frag)-1]
			if len(pending) > 0 {
				line = append(pending, line...)
				pending = pending[:0]
			}
			line = trimCR(line)
			if len(line) > max {
				reject(append([]byte(nil), sample(line)...), event.ReasonOversized,
					fmt.Sprintf("line of %d bytes exceeds the limit of %d bytes", len(line), max))
				continue
			}
			if batch == nil {
				batch = r.newBatch()
			}
			batch.add(line)
			// Buffered() == 0: the next read waits on the socket, so what was read goes downstream now.
			if len(batch.lines) >= batchLines || br.Buffered() == 0 {
				flush()
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if discarding {
				continue
			}
			pending = append(pending, frag...)
			if len(pending) > max+1 {
				reject(append([]byte(nil), sample(pending)...), event.ReasonOversized,
					fmt.Sprintf("line exceeds the limit of %d bytes", max))
				discarding = true
				pending = nil
			}
		case d.again(ctx, err):
			pending = append(pending, frag...) // the part of a line read before the interrupt
		default:
			flush()
			cause, rerr := endCause(ctx, err)
			if !discarding && len(pending)+len(frag) > 0 {
				partial := append(pending, frag...)
				// Over the limit already: oversized, as HighPerfTCPReader says of it (its framer checks
				// after every read; the check above runs only when the bufio buffer is full).
				if partialOver(partial, max) {
					reject(append([]byte(nil), sample(partial)...), event.ReasonOversized,
						fmt.Sprintf("line exceeds the limit of %d bytes", max))
				} else {
					reject(append([]byte(nil), sample(partial)...), event.ReasonTruncated,
						fmt.Sprintf("%s after %d bytes of a line without its newline", cause, len(partial)))
				}
			}
			return rerr
		}
	}
}
