package tcpin

import (
	"context"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// stage runs one connection's Handler calls on a goroutine of its own, so the connection's next read and
// framing overlap with validating and producing the lines of the previous one. Without it the two
// alternate on one goroutine: while the handler works, nothing reads the socket, and while the socket is
// read, the producer is not fed.
//
// It copies what it is handed (the framer reuses its buffer as soon as a call returns) into one of depth+1
// jobs. When every job is taken, a call waits for the handler to finish one: backpressure still reaches
// the socket, with at most depth batches read ahead. Calls keep their order.
type stage struct {
	h    Handler
	keep int // a job's buffer grown past this (by a long line) is dropped after use
	jobs chan *job
	free chan *job
	done chan struct{}
}

type job struct {
	ctx       context.Context
	src       Source
	lineBatch // the lines; for a reject, buf holds its sample and lines is empty
	// A reject: reason is set.
	reason event.Reason
	detail string
}

var _ Handler = (*stage)(nil)

// newStage starts the handler goroutine; close stops it.
func newStage(h Handler, depth, keep int) *stage {
	s := &stage{h: h, keep: keep, jobs: make(chan *job, depth), free: make(chan *job, depth+1), done: make(chan struct{})}
	for range depth + 1 {
		s.free <- &job{}
	}
	go s.run()
	return s
}

func (s *stage) run() {
	defer close(s.done)
	for j := range s.jobs {
		if j.reason != "" {
			s.h.HandleReject(j.ctx, j.src, j.buf, j.reason, j.detail)
		} else {
			s.h.HandleLines(j.ctx, j.src, j.lines)
		}
		j.reset()
		if cap(j.buf) > s.keep {
			j.buf = nil // shrink back after a long line
		}
		j.ctx, j.reason, j.detail = nil, "", ""
		s.free <- j
	}
}

func (s *stage) HandleLines(ctx context.Context, src Source, lines [][]byte) {
	j := <-s.free
	n := 0
	for _, l := range lines {
		n += len(l)
	}
	if cap(j.buf) < n {
		j.buf = make([]byte, 0, n) // one allocation, not a growth per line
	}
	for _, l := range lines {
		j.add(l)
	}
	j.ctx, j.src = ctx, src
	s.jobs <- j
}

func (s *stage) HandleReject(ctx context.Context, src Source, sample []byte, reason event.Reason, detail string) {
	j := <-s.free
	j.buf = append(j.buf[:0], sample...)
	j.ctx, j.src, j.reason, j.detail = ctx, src, reason, detail
	s.jobs <- j
}

// close waits until every call handed to the stage has returned, then stops its goroutine. The stage must
// not be used afterwards.
func (s *stage) close() {
	close(s.jobs)
	<-s.done
}
