package tcpin

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// TCPLogReader is the simple reader: a goroutine per connection reads lines with a bufio.Reader, copies them
// into batches and puts the batches on a bounded queue; one consumer hands each batch downstream. The queue's
// bounds (about Config.QueueLines lines and Config.QueueBytes bytes, counted from the moment a line is copied
// into a batch until the handler returns) are the backpressure: when it is full the socket goroutine blocks
// and stops reading. A line longer than the bufio buffer is assembled in memory lent by the partial-line
// budget.
//
// Lines travel in batches rather than one by one because a channel handoff per line costs more than the rest
// of the line's path together once the consumer is the slower side (a full queue wakes the socket goroutine
// for every line): a batch is sent when it holds batchLines lines or when everything read so far is framed,
// so a quiet source's line is not held back waiting for company.
type TCPLogReader struct {
	cfg  Config
	ln   net.Listener
	h    Handler
	pool sync.Pool  // *lineBatch, recycled once the handler returns
	sem  *semaphore // the queue's bytes
}

var _ Reader = (*TCPLogReader)(nil)

// batchLines is the most lines one queued batch carries, and batchBytes about the most bytes: a batch is sent
// once it reaches either (a single longer line travels alone), and a batch buffer grown past batchBytes is
// not kept for reuse.
const (
	batchLines = 128
	batchBytes = 64 << 10
)

// bufioBytes is each connection's bufio buffer; longer lines are assembled beyond it.
const bufioBytes = 64 << 10

// lineBatch is a run of good lines from one connection, copied back to back into buf.
type lineBatch struct {
	lines [][]byte
	buf   []byte
	taken int64 // bytes of the queue's semaphore this batch holds
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
	b.lines, b.buf, b.taken = b.lines[:0], b.buf[:0], 0
	if cap(b.buf) > batchBytes {
		b.buf = nil // grown by a long line: shrink back
	}
}

type queued struct {
	src    Source
	batch  *lineBatch   // good lines; nil for a reject
	line   []byte       // a reject's sample
	taken  int64        // a reject's bytes of the queue's semaphore
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
	return &TCPLogReader{cfg: cfg, ln: ln, h: h, sem: newSemaphore(int64(cfg.QueueBytes))}, nil
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
	return &lineBatch{lines: make([][]byte, 0, batchLines), buf: make([]byte, 0, batchBytes)}
}

func (r *TCPLogReader) consume(ctx context.Context, queue <-chan queued) {
	for q := range queue {
		if q.batch == nil {
			r.h.HandleReject(ctx, q.src, q.line, q.reason, q.detail)
			r.sem.release(q.taken)
			continue
		}
		r.h.HandleLines(ctx, q.src, q.batch.lines)
		r.sem.release(q.batch.taken)
		q.batch.reset()
		r.pool.Put(q.batch)
	}
}

func (r *TCPLogReader) serve(ctx context.Context, conn net.Conn, src Source, queue chan<- queued) error {
	if r.cfg.Format == Syslog {
		// Octet-counted frames need not end in LF, so syslog is framed in place (as HighPerfTCPReader does)
		// and the events are then queued like lines.
		q := &queuer{r: r, queue: queue}
		defer q.flush()
		return readFramed(ctx, context.WithoutCancel(ctx), r.cfg, conn, src, newFramerFor(r.cfg), q)
	}
	br := bufio.NewReaderSize(conn, bufioBytes)
	d := newDeadliner(ctx, conn, r.cfg)
	defer d.stop()
	defer d.closing(src)
	maxLine := r.cfg.MaxLineBytes
	partial := r.cfg.shared.partial
	var (
		pending    []byte // the start of a line longer than the bufio buffer
		lent       int64  // bytes of pending lent by the partial-line budget
		discarding bool   // skipping the rest of an oversized line
		batch      *lineBatch
	)
	defer func() { partial.give(lent) }()
	// flush queues the lines batched so far; a reject is queued only after it, so order is kept.
	flush := func() {
		if batch != nil && len(batch.lines) > 0 {
			queue <- queued{src: src, batch: batch}
			batch = nil
		}
	}
	// take reserves n bytes of the queue before they are copied into its custody. Before waiting it sends
	// the batch it holds, so connections never wait for room that their own unsent batches take.
	take := func(n int) int64 {
		if t, ok := r.sem.tryAcquire(int64(n)); ok {
			return t
		}
		flush()
		return r.sem.acquire(int64(n))
	}
	reject := func(line []byte, reason event.Reason, detail string) {
		flush()
		taken := take(len(line))
		queue <- queued{src: src, line: bytes.Clone(line), taken: taken, reason: reason, detail: detail}
	}
	// grow appends b to pending, in memory the partial-line budget lends (its whole capacity); false when
	// the budget has not enough left.
	grow := func(b []byte) bool {
		need := len(pending) + len(b)
		if need > cap(pending) {
			size := max(min(2*cap(pending), maxLine+1+bufioBytes), need, bufioBytes)
			if !partial.take(int64(size - cap(pending))) {
				return false
			}
			lent += int64(size - cap(pending))
			pending = append(make([]byte, 0, size), pending...)
		}
		pending = append(pending, b...)
		return true
	}
	// endPending gives back what pending borrowed, and drops it: a long line's buffer does not outlive it.
	endPending := func() {
		partial.give(lent)
		lent, pending = 0, nil
	}
	// overBudget rejects the line pending and b make up, which the budget cannot hold, and skips its rest.
	overBudget := func(b []byte) {
		reject(sampleOf(pending, b), event.ReasonOversized, partial.overDetail(len(pending)+len(b)))
		discarding = true
		endPending()
	}
	for {
		d.arm(ctx)
		frag, err := br.ReadSlice('\n')
		r.cfg.Observer.BytesRead(len(frag))
		switch {
		case err == nil:
			d.lines(len(frag))
			if discarding {
				discarding = false
				endPending()
				continue
			}
			line := frag[:len(frag)-1]
			if len(pending) > 0 {
				if !grow(line) {
					overBudget(nil)
					discarding = false // the newline was this fragment's
					continue
				}
				line = pending
			}
			line = trimCR(line)
			if len(line) > maxLine {
				reject(sample(line), event.ReasonOversized,
					fmt.Sprintf("line of %d bytes exceeds the limit of %d bytes", len(line), maxLine))
				endPending()
				continue
			}
			taken := take(len(line))
			if batch == nil {
				batch = r.newBatch()
			}
			batch.add(line)
			batch.taken += taken
			endPending()
			// Buffered() == 0: the next read waits on the socket, so what was read goes downstream now.
			if len(batch.lines) >= batchLines || len(batch.buf) >= batchBytes || br.Buffered() == 0 {
				flush()
			}
		case errors.Is(err, bufio.ErrBufferFull):
			if discarding {
				continue
			}
			if !grow(frag) {
				overBudget(frag)
				continue
			}
			if len(pending) > maxLine+1 {
				reject(sample(pending), event.ReasonOversized, fmt.Sprintf("line exceeds the limit of %d bytes", maxLine))
				discarding = true
				endPending()
			}
		case d.again(ctx, err):
			// The part of a line read before the interrupt: assembled like a long line's start.
			if len(frag) > 0 && !grow(frag) {
				overBudget(frag)
			}
		default:
			flush()
			cause, rerr := d.endCause(ctx, err)
			if !discarding && len(pending)+len(frag) > 0 {
				partialLine := append(pending, frag...)
				// Over the limit already: oversized, as HighPerfTCPReader says of it (its framer checks
				// after every read; the check above runs only when the bufio buffer is full).
				if partialOver(partialLine, maxLine) {
					reject(sample(partialLine), event.ReasonOversized, fmt.Sprintf("line exceeds the limit of %d bytes", maxLine))
				} else {
					reject(sample(partialLine), event.ReasonTruncated,
						fmt.Sprintf("%s after %d bytes of a line without its newline", cause, len(partialLine)))
				}
			}
			return rerr
		}
	}
}

// sampleOf is the sample of the line a and b make up, without copying more of them than the sample.
func sampleOf(a, b []byte) []byte {
	s := sample(a)
	if n := min(len(b), SampleBytes-len(s)); n > 0 {
		s = append(s[:len(s):len(s)], b[:n]...)
	}
	return s
}

// queuer is the Handler through which a connection framed in place puts its lines and rejects on the queue,
// with the same bounds as the bufio path: each line's bytes are taken from the queue's semaphore before
// they are copied into a batch.
type queuer struct {
	r     *TCPLogReader
	queue chan<- queued
	batch *lineBatch
	src   Source
}

func (q *queuer) take(n int) int64 {
	if t, ok := q.r.sem.tryAcquire(int64(n)); ok {
		return t
	}
	q.flush()
	return q.r.sem.acquire(int64(n))
}

func (q *queuer) flush() {
	if q.batch != nil && len(q.batch.lines) > 0 {
		q.queue <- queued{src: q.src, batch: q.batch}
		q.batch = nil
	}
}

func (q *queuer) HandleLines(_ context.Context, src Source, lines [][]byte) {
	q.src = src
	for _, line := range lines {
		taken := q.take(len(line))
		if q.batch == nil {
			q.batch = q.r.newBatch()
		}
		q.batch.add(line)
		q.batch.taken += taken
		if len(q.batch.lines) >= batchLines || len(q.batch.buf) >= batchBytes {
			q.flush()
		}
	}
	// Called once per read: what was read goes downstream now, as the bufio path does when its buffer is empty.
	q.flush()
}

func (q *queuer) HandleReject(_ context.Context, src Source, sample []byte, reason event.Reason, detail string) {
	q.src = src
	q.flush()
	taken := q.take(len(sample))
	q.queue <- queued{src: src, line: bytes.Clone(sample), taken: taken, reason: reason, detail: detail}
}
