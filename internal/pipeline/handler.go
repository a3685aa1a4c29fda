package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// handler validates framed lines, produces the good ones and dead-letters the rest. It implements
// tcpin.Handler; its Produce calls block while Kafka's local queue is full, which stops the reader's socket.
type handler struct {
	v          *event.Validator
	prod       producer
	topic      string
	dlq        DeadLetterSink
	counts     *Counts
	log        *slog.Logger
	perMessage int // events per Kafka message; 1 sends each line as its own message
	maxMsg     int // byte cap of a many-events message
	// produceCtx ends at the drain deadline: until then a blocked Produce keeps waiting for Kafka.
	produceCtx context.Context
	// maxEvents, when > 0, stops reading (via stopReading) once that many lines were received.
	maxEvents   uint64
	stopReading context.CancelFunc

	bufs sync.Pool
	// clientDown limits to one the logs of failures that hit every line alike once the Kafka client failed
	// or closed (see logClientDown); the summary and the metrics count every line.
	clientDown atomic.Bool
}

var _ tcpin.Handler = (*handler)(nil)

func (h *handler) HandleLines(_ context.Context, src tcpin.Source, lines [][]byte) {
	n := h.counts.received.Add(uint64(len(lines)))
	if h.perMessage <= 1 {
		for _, line := range lines {
			if err := h.v.Validate(line); err != nil {
				h.rejectInvalid(src, line, err)
				continue
			}
			if err := h.prod.Produce(h.produceCtx, h.topic, line); err != nil {
				h.deadLetter(h.produceCtx, src, line, ReasonDeliveryFailed, err.Error())
			}
		}
	} else {
		h.produceJoined(src, lines)
	}
	h.checkBound(n)
}

// checkBound stops reading once the bounded run's count of received lines is reached. Rejected lines count
// too, so a run whose last line is rejected still ends.
func (h *handler) checkBound(received uint64) {
	if h.maxEvents > 0 && received >= h.maxEvents {
		h.stopReading()
	}
}

// produceJoined sends valid lines newline-joined, up to perMessage events or maxMsg bytes per message.
// ClickHouse's JSONEachRow reads every row of such a message.
func (h *handler) produceJoined(src tcpin.Source, lines [][]byte) {
	bp, _ := h.bufs.Get().(*[]byte)
	if bp == nil {
		b := make([]byte, 0, h.maxMsg)
		bp = &b
	}
	buf := (*bp)[:0]
	count := 0
	flush := func() {
		if count == 0 {
			return
		}
		if err := h.prod.Produce(h.produceCtx, h.topic, buf); err != nil {
			for _, line := range bytes.Split(buf, []byte{'\n'}) {
				h.deadLetter(h.produceCtx, src, line, ReasonDeliveryFailed, err.Error())
			}
		}
		buf, count = buf[:0], 0
	}
	for _, line := range lines {
		if err := h.v.Validate(line); err != nil {
			h.rejectInvalid(src, line, err)
			continue
		}
		if count > 0 && (count == h.perMessage || len(buf)+1+len(line) > h.maxMsg) {
			flush()
		}
		if count > 0 {
			buf = append(buf, '\n')
		}
		buf = append(buf, line...)
		count++
	}
	flush()
	*bp = buf
	h.bufs.Put(bp)
}

func (h *handler) HandleReject(_ context.Context, src tcpin.Source, sample []byte, reason event.Reason, detail string) {
	n := h.counts.received.Add(1)
	h.deadLetter(h.produceCtx, src, sample, string(reason), detail)
	h.checkBound(n)
}

func (h *handler) rejectInvalid(src tcpin.Source, line []byte, err error) {
	reason := event.ReasonOf(err)
	if reason == "" {
		reason = event.ReasonInvalidJSON
	}
	h.deadLetter(h.produceCtx, src, line, string(reason), err.Error())
}

// deadLetter hands a line to the dead-letter sink and settles it in the ledger (now, or at its delivery
// report for an asynchronous sink). A line the sink cannot take is counted as failed, never dropped silently.
func (h *handler) deadLetter(ctx context.Context, src tcpin.Source, line []byte, reason, detail string) {
	h.putDeadLetter(ctx, src, line, reason, detail, false)
}

// putDeadLetter is deadLetter for a line that may also be in the topic (possiblyPersisted, see
// DeadLetter).
func (h *handler) putDeadLetter(ctx context.Context, src tcpin.Source, line []byte, reason, detail string, possiblyPersisted bool) {
	h.counts.deadLetterAttempt(reason)
	lineBytes := len(line)
	// Every dead letter carries a bounded sample: a line Kafka refused as too large would be refused again
	// on the dead-letter topic, and lost, if it went there whole.
	if len(line) > tcpin.SampleBytes {
		detail = fmt.Sprintf("%s (line of %d bytes; the first %d kept)", detail, len(line), tcpin.SampleBytes)
		line = line[:tcpin.SampleBytes]
	}
	dl := DeadLetter{Time: time.Now(), Reason: reason, Detail: detail, Source: src.Remote, Line: line, LineBytes: lineBytes,
		PossiblyPersisted: possiblyPersisted}
	async, err := h.dlq.Put(ctx, dl)
	switch {
	case err != nil:
		h.counts.addFailed(1)
		if !h.logClientDown(err, "dead-lettering failed: the kafka client is down; every line it cannot take from now is counted failed",
			"reason", reason, "err", err) {
			h.log.Error("dead-lettering a line failed: line lost", "reason", reason, "source", src.Remote, "err", err)
		}
	case !async:
		h.counts.addDeadLettered(1)
	}
}

// delivered is the producer's DeliveryFunc: it settles messages in the ledger.
func (h *handler) delivered(topic string, value []byte, err error) {
	if topic != h.topic { // the dead-letter topic
		if err != nil {
			h.counts.addFailed(1)
			if !h.logClientDown(err, "dead-letter deliveries failed: the kafka client is down; they are counted failed", "topic", topic, "err", err) {
				h.log.Error("dead-letter delivery failed: line lost", "topic", topic, "err", err)
			}
			return
		}
		h.counts.addDeadLettered(1)
		return
	}
	events := 1
	if h.perMessage > 1 {
		events = bytes.Count(value, []byte{'\n'}) + 1
	}
	if err == nil {
		h.counts.addDelivered(uint64(events))
		return
	}
	// Kafka gave up on these lines. This runs on the producer's event goroutine, which must not block (it
	// is what frees the queue), so the dead-letter attempt may not wait for queue space. A timeout or a
	// purge hits thousands of lines at once: they are counted by error here and logged as one episode by
	// the watcher (deliveries failed ... delivery failures stopped), never line by line.
	if !h.logClientDown(err, "deliveries failed: the kafka client is down; the lines it held are dead-lettered", "topic", topic, "err", err) {
		h.counts.deliveryFailed(err, uint64(events))
	}
	src := tcpin.Source{Remote: "delivery-report"}
	persisted := kafkaout.PossiblyPersisted(err)
	for _, line := range bytes.Split(value, []byte{'\n'}) {
		h.putDeadLetter(doneCtx, src, line, ReasonDeliveryFailed, err.Error(), persisted)
	}
}

// logClientDown reports whether err means the Kafka client failed (ErrFatal) or was closed (ErrClosed: the
// purge at the end of the drain). Such an error hits every line still held, possibly tens of thousands at
// once, so only the first is logged (with msg and args); the others are counted, not logged. A client that
// failed is closed after the drain, so a fatal error is often followed by ErrClosed on the same paths: that
// is the same episode and is not logged again.
func (h *handler) logClientDown(err error, msg string, args ...any) bool {
	if !errors.Is(err, kafkaout.ErrFatal) && !errors.Is(err, kafkaout.ErrClosed) {
		return false
	}
	if !h.clientDown.Swap(true) {
		h.log.Error(msg, args...)
	}
	return true
}

// doneCtx is already cancelled: a Produce given it tries once and never waits for queue space.
var doneCtx = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()
