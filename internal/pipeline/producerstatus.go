package pipeline

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
)

// errNoProducer answers a topic check asked before the producer exists (the readiness probe only runs while
// reading, so it is not expected to be seen).
var errNoProducer = errors.New("no kafka client yet: waiting for the credentials")

// producerStatus is the watcher's and the metrics' view of the producer, which exists only once the
// credentials are known: until then it reports an idle client that has not failed, so that a reader waiting
// for its secret is alive (/healthz) and only not ready (/readyz). Safe for concurrent use.
type producerStatus struct {
	p atomic.Pointer[kafkaout.Producer]
}

var _ kafkaStatus = (*producerStatus)(nil)

func (s *producerStatus) set(p *kafkaout.Producer) { s.p.Store(p) }

func (s *producerStatus) Fatal() error {
	if p := s.p.Load(); p != nil {
		return p.Fatal()
	}
	return nil
}

func (s *producerStatus) InFlight() int {
	if p := s.p.Load(); p != nil {
		return p.InFlight()
	}
	return 0
}

func (s *producerStatus) QueuedBytes() int64 {
	if p := s.p.Load(); p != nil {
		return p.QueuedBytes()
	}
	return 0
}

func (s *producerStatus) Waiting() int {
	if p := s.p.Load(); p != nil {
		return p.Waiting()
	}
	return 0
}

func (s *producerStatus) LastClientError() (time.Time, error) {
	if p := s.p.Load(); p != nil {
		return p.LastClientError()
	}
	return time.Time{}, nil
}

func (s *producerStatus) EventLoopRunning() bool {
	if p := s.p.Load(); p != nil {
		return p.EventLoopRunning()
	}
	return true
}

func (s *producerStatus) CheckTopic(ctx context.Context, topic string) error {
	if p := s.p.Load(); p != nil {
		return p.CheckTopic(ctx, topic)
	}
	return errNoProducer
}
