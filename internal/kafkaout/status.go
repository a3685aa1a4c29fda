package kafkaout

import (
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Fatal returns nil while the producer can still deliver, and an error wrapping ErrFatal once librdkafka
// raised a fatal error (after which every Produce fails): the reader's /healthz reports it so that the task is
// replaced.
func (pr *Producer) Fatal() error {
	if fe := pr.fatalErr.Load(); fe != nil {
		return fmt.Errorf("%w: %s", ErrFatal, fe.Error())
	}
	return nil
}

// QueuedBytes is the size of the message values librdkafka holds (queued or awaiting acknowledgement).
func (pr *Producer) QueuedBytes() int64 { return max(pr.queuedBytes.Load(), 0) }

// Waiting is how many Produce calls are waiting for room in the full local queue: while it is above zero the
// reader is not reading its sockets.
func (pr *Producer) Waiting() int { return int(pr.waiting.Load()) }

// LastClientError returns when librdkafka last reported a client-level error (broker down, authentication,
// TLS) and that error, or the zero time and nil.
func (pr *Producer) LastClientError() (time.Time, error) {
	e := pr.errs.last.Load()
	if e == nil {
		return time.Time{}, nil
	}
	return time.Unix(0, pr.lastErrAt.Load()), *e
}

// EventLoopRunning reports whether the goroutine that turns delivery reports into accounting still runs. It
// ends only at Close; if it ended otherwise, no line would ever settle.
func (pr *Producer) EventLoopRunning() bool {
	select {
	case <-pr.eventsDone:
		return false
	default:
		return true
	}
}

// InjectFatalError makes librdkafka raise a fatal error with code ErrOutOfOrderSequenceNumber through its own
// fatal-error path, as a broker-side idempotence failure would. It exists for fault-injection tests: no
// broker can be asked to produce that failure on demand.
func (pr *Producer) InjectFatalError(reason string) error {
	if code := pr.p.TestFatalError(kafka.ErrOutOfOrderSequenceNumber, reason); code != kafka.ErrNoError {
		return fmt.Errorf("injecting a fatal error: %s", code)
	}
	return nil
}
