package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
)

// Reasons the pipeline itself adds to the event package's validation reasons.
const (
	// ReasonDeliveryFailed marks a valid line Kafka did not take (message timeout, purge at shutdown).
	ReasonDeliveryFailed = "delivery_failed"
)

// DeadLetter is one rejected line: a bounded sample of its bytes and why.
type DeadLetter struct {
	Time   time.Time
	Reason string
	Detail string
	Source string
	Line   []byte
}

// DeadLetterSink stores dead letters. Put is called concurrently. A sink that settles asynchronously (Kafka)
// reports the outcome later through the pipeline's delivery accounting; a synchronous one returns its error.
type DeadLetterSink interface {
	// Put stores dl; async reports whether the outcome arrives later through a delivery report.
	Put(ctx context.Context, dl DeadLetter) (async bool, err error)
	Close() error
}

// fileSink appends dead letters to a file as JSON lines (for local runs and as a fallback that needs no broker).
type fileSink struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
}

func newFileSink(path string) (*fileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening dead-letter file: %w", err)
	}
	return &fileSink{f: f, w: bufio.NewWriterSize(f, 64<<10)}, nil
}

// fileRecord is one line of the dead-letter file. Line holds the sample when it is valid UTF-8, LineBase64
// (encoding/json's []byte form) otherwise, so any input survives the round trip.
type fileRecord struct {
	Time       time.Time `json:"time"`
	Reason     string    `json:"reason"`
	Detail     string    `json:"detail,omitempty"`
	Source     string    `json:"source,omitempty"`
	Line       *string   `json:"line,omitempty"`
	LineBase64 []byte    `json:"line_base64,omitempty"`
}

func (s *fileSink) Put(_ context.Context, dl DeadLetter) (bool, error) {
	rec := fileRecord{Time: dl.Time.UTC(), Reason: dl.Reason, Detail: dl.Detail, Source: dl.Source}
	if utf8.Valid(dl.Line) {
		line := string(dl.Line)
		rec.Line = &line
	} else {
		rec.LineBase64 = dl.Line
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("encoding dead letter: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.w.Write(append(b, '\n')); err != nil {
		return false, fmt.Errorf("writing dead-letter file: %w", err)
	}
	return false, nil
}

func (s *fileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.w.Flush(); err != nil {
		s.f.Close()
		return fmt.Errorf("flushing dead-letter file: %w", err)
	}
	return s.f.Close()
}

// producer is what the pipeline needs of kafkaout.Producer.
type producer interface {
	Produce(ctx context.Context, topic string, value []byte, headers ...kafkaout.Header) error
}

// kafkaSink produces dead letters to a topic: the value is the line's sample, headers say why.
type kafkaSink struct {
	p     producer
	topic string
}

func (s *kafkaSink) Put(ctx context.Context, dl DeadLetter) (bool, error) {
	err := s.p.Produce(ctx, s.topic, dl.Line,
		kafkaout.Header{Key: "reason", Value: []byte(dl.Reason)},
		kafkaout.Header{Key: "detail", Value: []byte(dl.Detail)},
		kafkaout.Header{Key: "source", Value: []byte(dl.Source)},
		kafkaout.Header{Key: "received_at", Value: []byte(dl.Time.UTC().Format(time.RFC3339Nano))},
	)
	return true, err
}

func (s *kafkaSink) Close() error { return nil }
