package tcpin

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// minRead is the least free space a read is given; below it the framer compacts or grows its buffer.
const minRead = 16 << 10

// framer splits a byte stream into newline-delimited lines in place, in one reused buffer. Complete lines are
// handed on as sub-slices of that buffer (no copy); only a partial line at the end of a read is moved to the
// front before the next read. The buffer grows only when a single line needs it, up to the line limit plus
// one read, so memory per connection is bounded whatever the input.
//
// A framer is used by one goroutine.
type framer struct {
	buf        []byte
	start, end int // unread window buf[start:end]
	maxLine    int
	initial    int // the buffer's usual size, which it shrinks back to after a long line
	limit      int // the largest the buffer may grow
	discarding bool
	lines      [][]byte
	// budget, when not nil, lends the bytes the buffer grows beyond initial (shared by all connections);
	// overBudget holds the reject of a line it refused, handed on by the next split or finish.
	budget     *budget
	overBudget *rejected
	// sys, when not nil, frames syslog (Format Syslog) instead of lines.
	sys *syslogFrames
}

type rejected struct {
	sample []byte
	detail string
}

func newFramer(initial, maxLine int) *framer {
	limit := maxLine + 2 + minRead // the longest allowed line, "\r\n", and room for one read
	initial = min(max(initial, 2*minRead), limit)
	return &framer{buf: make([]byte, initial), maxLine: maxLine, initial: initial, limit: limit, lines: make([][]byte, 0, 256)}
}

// fill reads once from r into the buffer's free space, making room first. When the buffer would have to grow
// past what the budget lends, the partial line is rejected instead (see overBudget) and skipped.
func (f *framer) fill(r io.Reader) (int, error) {
	if f.start == f.end {
		f.start, f.end = 0, 0
	}
	if len(f.buf)-f.end < minRead {
		if f.start > 0 {
			f.end = copy(f.buf, f.buf[f.start:f.end])
			f.start = 0
		}
		if len(f.buf)-f.end < minRead && len(f.buf) < f.limit {
			size := min(2*len(f.buf), f.limit)
			if f.budget == nil || f.budget.take(int64(size-len(f.buf))) {
				grown := make([]byte, size)
				f.end = copy(grown, f.buf[:f.end])
				f.buf = grown
			} else {
				f.overBudget = &rejected{sample: bytes.Clone(sample(f.buf[:f.end])), detail: f.budget.overDetail(f.end)}
				f.discarding = true
				f.start, f.end = 0, 0
			}
		}
	}
	n, err := r.Read(f.buf[f.end:])
	f.end += n
	return n, err
}

// handOverBudget hands on the reject of a line the budget refused, if any.
func (f *framer) handOverBudget(ctx context.Context, h Handler, src Source) {
	if f.overBudget != nil {
		h.HandleReject(ctx, src, f.overBudget.sample, event.ReasonOversized, f.overBudget.detail)
		f.overBudget = nil
	}
}

// shrink returns the buffer to its usual size once what it holds fits, giving the budget back its loan.
func (f *framer) shrink() {
	if len(f.buf) == f.initial || f.end-f.start > f.initial/2 {
		return
	}
	small := make([]byte, f.initial)
	f.end = copy(small, f.buf[f.start:f.end])
	f.start = 0
	f.release()
	f.buf = small
}

// release gives back what the budget lent (at the connection's end, or when shrinking).
func (f *framer) release() {
	if f.budget != nil && len(f.buf) > f.initial {
		f.budget.give(int64(len(f.buf) - f.initial))
	}
}

// split hands every complete line in the buffer to h, in order, and rejects lines over the limit. A partial
// line stays in the buffer unless it is already over the limit, in which case it is rejected with a sample and
// the rest of it is skipped up to the next newline.
func (f *framer) split(ctx context.Context, h Handler, src Source) {
	if f.sys != nil {
		f.splitSyslog(ctx, h, src, false, "")
		return
	}
	f.handOverBudget(ctx, h, src)
	f.lines = f.lines[:0]
	for f.start < f.end {
		i := bytes.IndexByte(f.buf[f.start:f.end], '\n')
		if i < 0 {
			break
		}
		line := f.buf[f.start : f.start+i]
		f.start += i + 1
		if f.discarding {
			// The rest of a line already rejected as oversized.
			f.discarding = false
			continue
		}
		line = trimCR(line)
		if len(line) > f.maxLine {
			f.flush(ctx, h, src)
			h.HandleReject(ctx, src, sample(line), event.ReasonOversized,
				fmt.Sprintf("line of %d bytes exceeds the limit of %d bytes", len(line), f.maxLine))
			continue
		}
		f.lines = append(f.lines, line)
	}
	f.flush(ctx, h, src)

	switch {
	case f.discarding:
		f.start, f.end = 0, 0
	case partialOver(f.buf[f.start:f.end], f.maxLine):
		h.HandleReject(ctx, src, sample(f.buf[f.start:f.end]), event.ReasonOversized,
			fmt.Sprintf("line exceeds the limit of %d bytes", f.maxLine))
		f.discarding = true
		f.start, f.end = 0, 0
	}
	f.shrink()
}

func (f *framer) flush(ctx context.Context, h Handler, src Source) {
	if len(f.lines) > 0 {
		h.HandleLines(ctx, src, f.lines)
		f.lines = f.lines[:0]
	}
}

// finish rejects a partial line left when the stream ends; cause says why it ended.
func (f *framer) finish(ctx context.Context, h Handler, src Source, cause string) {
	if f.sys != nil {
		f.splitSyslog(ctx, h, src, true, cause)
		return
	}
	f.handOverBudget(ctx, h, src)
	if !f.discarding && f.end > f.start {
		partial := f.buf[f.start:f.end]
		h.HandleReject(ctx, src, sample(partial), event.ReasonTruncated,
			fmt.Sprintf("%s after %d bytes of a line without its newline", cause, len(partial)))
	}
	f.start, f.end, f.discarding = 0, 0, false
}

// partialOver reports whether the start of a line, its newline not yet read, is already longer than max:
// more than max+1 bytes, or max+1 bytes that do not end in the "\r" of a "\r\n".
func partialOver(partial []byte, max int) bool {
	n := len(partial)
	return n > max+1 || (n == max+1 && partial[n-1] != '\r')
}

func trimCR(line []byte) []byte {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return line[:n-1]
	}
	return line
}

func sample(b []byte) []byte {
	if len(b) > SampleBytes {
		return b[:SampleBytes]
	}
	return b
}
