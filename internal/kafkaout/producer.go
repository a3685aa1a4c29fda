// Package kafkaout produces validated log lines to Kafka with confluent-kafka-go (librdkafka) and turns its
// delivery reports into accounting. Its local queue is bounded: when the broker is slow, Produce waits, the
// caller stops reading its socket, and TCP pushes back on the log source.
package kafkaout

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// DeliveryFunc is called once per produced message, from the producer's event goroutine, when the broker
// acknowledged it (err == nil) or librdkafka gave up on it (err != nil, e.g. message timeout; err wraps
// ErrClosed for a message purged by Close, ErrFatal for one dropped after a fatal error). value is the
// message's bytes: for a delivered message they are valid only during the call (they live in the producer's
// ring of pending messages); for a failed one they are the caller's to keep. It must not block for long.
type DeliveryFunc func(topic string, value []byte, err error)

// Producer is safe for concurrent use.
type Producer struct {
	cfg      Config
	p        *kafka.Producer
	report   DeliveryFunc
	log      *slog.Logger
	space    chan struct{} // pinged after deliveries: the local queue may have room again
	pending  *pending      // the bytes of every message not yet reported on (see pending)
	sticky   *sticky       // picks the partitions of the (keyed) messages (see sticky)
	wg       sync.WaitGroup
	closed   atomic.Bool
	errs     clientErrors // the client-level errors that explain failed calls
	fatalErr atomic.Pointer[kafka.Error]
	authFail func()
	onFatal  func(error)

	// What the health watcher reads (status.go): bytes held by librdkafka, Produce calls waiting for room,
	// when the last client error arrived, and whether the event loop still runs.
	queuedBytes atomic.Int64
	waiting     atomic.Int64
	// unreported counts messages from their Produce call to the end of their DeliveryFunc: librdkafka's own
	// count (what its Flush waits for) drops to zero as soon as the last report is taken off the events
	// channel, before the DeliveryFunc has run, so a Flush that trusted it could return while a report was
	// still being counted.
	unreported atomic.Int64
	lastErrAt  atomic.Int64 // unix nanoseconds
	eventsDone chan struct{}
	// topic is the topic of the last Produce, kept so the message can point at it: taking the address of
	// Produce's own topic parameter would move it to the heap on every call.
	topic atomic.Pointer[string]
}

// Option tunes a Producer.
type Option func(*Producer)

// OnAuthFailure registers f to run (on its own goroutine) when the broker rejects the credentials, so the
// caller can fetch rotated credentials and call SetCredentials.
func OnAuthFailure(f func()) Option { return func(p *Producer) { p.authFail = f } }

// OnFatal registers f to run once, on the producer's event goroutine, when librdkafka raises a fatal error
// (after which nothing more can be delivered), with an error wrapping ErrFatal. f must not block: delivery
// reports wait for it. The caller uses it to stop taking lines at once.
func OnFatal(f func(error)) Option { return func(p *Producer) { p.onFatal = f } }

// New connects a producer. It does not wait for the brokers: call CheckTopic for that.
func New(cfg Config, report DeliveryFunc, opts ...Option) (*Producer, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	cm := cfg.configMap()
	kp, err := kafka.NewProducer(&cm)
	if err != nil {
		return nil, fmt.Errorf("creating kafka producer (%s): %w", cfg, err)
	}
	pr := &Producer{cfg: cfg, p: kp, report: report, log: cfg.Logger, space: make(chan struct{}, 1), eventsDone: make(chan struct{}),
		pending: newPending(pendingBytes(cfg), cfg.QueueMaxMessages+cfg.QueueMaxMessages/4)}
	pr.sticky = newSticky(pr.partitions, cfg.BatchBytes)
	for _, o := range opts {
		o(pr)
	}
	if cfg.InsecureSkipVerify {
		pr.log.Warn("kafka broker certificate verification is OFF: any server can impersonate the broker")
	}
	pr.wg.Add(2)
	go pr.events()
	go pr.logs()
	return pr, nil
}

func (pr *Producer) events() {
	defer pr.wg.Done()
	defer close(pr.eventsDone)
	for ev := range pr.p.Events() {
		switch e := ev.(type) {
		case *kafka.Message:
			pr.delivered(e)
			pr.unreported.Add(-1)
			select {
			case pr.space <- struct{}{}:
			default:
			}
		case kafka.Error:
			pr.clientError(e)
		}
	}
}

// delivered hands one delivery report to the DeliveryFunc with the message's bytes from the ring, and
// frees them. A failed message's bytes are copied and freed before the call, so the caller can keep them
// and its own dead-letter attempt through this producer finds their room free.
func (pr *Producer) delivered(e *kafka.Message) {
	var err error
	if e.TopicPartition.Error != nil {
		err = e.TopicPartition.Error
		// Failures that hit every message alike are marked, so callers can tell them apart with errors.Is:
		// the client failed (ErrFatal), or Close purged what was left (ErrClosed).
		switch {
		case pr.fatalErr.Load() != nil:
			err = fmt.Errorf("%w: %w", ErrFatal, err)
		case pr.closed.Load():
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
	}
	topic := ""
	if e.TopicPartition.Topic != nil {
		topic = *e.TopicPartition.Topic
	}
	seq, ok := pr.pending.seqOf(e.Key)
	var value []byte
	if ok {
		value, ok = pr.pending.value(seq)
	}
	pr.queuedBytes.Add(-int64(len(value)))
	if !ok {
		// Every message this producer sends carries its sequence; a report without one is a bug, and
		// the ledger still hears of the message.
		pr.log.Error("kafka delivery report for a message the producer does not hold", "topic", topic, "key_bytes", len(e.Key))
	}
	pr.sticky.reported(topic, e.TopicPartition.Partition)
	if err != nil {
		pr.sticky.refresh(topic) // e.g. the partition has had no leader for the whole message timeout
	}
	if err != nil && ok {
		value = append([]byte(nil), value...)
		pr.pending.settle(seq)
		ok = false
	}
	if pr.report != nil {
		pr.report(topic, value, err)
	}
	if ok {
		pr.pending.settle(seq)
	}
}

func (pr *Producer) clientError(e kafka.Error) {
	pr.errs.record(e)
	pr.lastErrAt.Store(time.Now().UnixNano())
	// A broker may be gone, and with it the leader of some partitions: look again which have one.
	pr.sticky.refreshAll()
	if e.IsFatal() {
		if pr.fatalErr.Swap(&e) == nil {
			pr.log.Error("kafka fatal error", "code", e.Code().String(), "err", e.Error())
			if pr.onFatal != nil {
				pr.onFatal(pr.Fatal())
			}
		}
		return
	}
	pr.log.Warn("kafka client error", "code", e.Code().String(), "err", e.Error())
	if isAuth(e) && pr.authFail != nil {
		go pr.authFail()
	}
}

func (pr *Producer) logs() {
	defer pr.wg.Done()
	for l := range pr.p.Logs() {
		// librdkafka levels are syslog levels: 0-3 errors, 4 warning, 5-6 info, 7 debug.
		level := slog.LevelDebug
		switch {
		case l.Level <= 3:
			level = slog.LevelError
		case l.Level == 4:
			level = slog.LevelWarn
		case l.Level <= 6:
			level = slog.LevelInfo
		}
		pr.log.Log(context.Background(), level, l.Message, "component", "librdkafka", "facility", l.Tag)
	}
}

// Produce enqueues value for topic. While the local queue is full it waits for deliveries to make room,
// until ctx is done. The value is copied; the caller may reuse it when Produce returns. The message's key
// is the producer's instance id and sequence number (see keyBytes): unique to the message, the identity
// ClickHouse's logs deduplicates on.
// After Close it returns ErrClosed, and after a fatal error an error wrapping ErrFatal, at once.
func (pr *Producer) Produce(ctx context.Context, topic string, value []byte, headers ...Header) error {
	msg := kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: pr.topicRef(topic), Partition: pr.sticky.partition(topic, len(value))},
		Value:          value,
		Headers:        toKafkaHeaders(headers),
	}
	var (
		wait     *time.Timer
		waiting  bool
		seq      uint64
		reserved bool
	)
	defer func() {
		if waiting {
			pr.waiting.Add(-1)
		}
		if wait != nil {
			wait.Stop()
		}
	}()
	for {
		if pr.closed.Load() {
			return pr.abandon(seq, reserved, ErrClosed)
		}
		if pr.fatalErr.Load() != nil {
			return pr.abandon(seq, reserved, fmt.Errorf("producing to %s: %w", topic, pr.Fatal()))
		}
		if !reserved {
			var err error
			if seq, msg.Key, reserved, err = pr.pending.reserve(value); err != nil {
				return fmt.Errorf("producing to %s: %d bytes: %w", topic, len(value), err)
			}
		}
		if reserved {
			// Counted before the call: the delivery report that subtracts it may arrive before Produce returns.
			pr.queuedBytes.Add(int64(len(value)))
			pr.unreported.Add(1)
			err := pr.p.Produce(&msg, nil)
			if err == nil {
				return nil
			}
			pr.unreported.Add(-1)
			pr.queuedBytes.Add(-int64(len(value)))
			if isFatalCode(err) {
				// librdkafka failed before its error event reached this producer.
				return pr.abandon(seq, reserved, fmt.Errorf("producing to %s: %w: %w", topic, ErrFatal, err))
			}
			if isUnknownPartition(err) && msg.TopicPartition.Partition != kafka.PartitionAny {
				// The client knows the topic has fewer partitions than sticky counted (it was created
				// again smaller): librdkafka's partitioner, which knows the count, places this one, and
				// sticky looks again.
				pr.sticky.refresh(topic)
				msg.TopicPartition.Partition = kafka.PartitionAny
				continue
			}
			if !isQueueFull(err) {
				return pr.abandon(seq, reserved, fmt.Errorf("producing to %s: %w", topic, err))
			}
		}
		// The queue is full: wait for a delivery (or a short tick, in case the ping was taken by another caller).
		if !waiting {
			waiting = true
			pr.waiting.Add(1)
		}
		if wait == nil {
			wait = time.NewTimer(10 * time.Millisecond)
		} else {
			wait.Reset(10 * time.Millisecond)
		}
		select {
		case <-ctx.Done():
			return pr.abandon(seq, reserved, fmt.Errorf("producing to %s: local queue full: %w", topic, context.Cause(ctx)))
		case <-pr.space:
		case <-wait.C:
		}
	}
}

// abandon frees the ring's copy of a message librdkafka never took, and returns err.
func (pr *Producer) abandon(seq uint64, reserved bool, err error) error {
	if reserved {
		pr.pending.settle(seq)
	}
	return err
}

// pendingBytes sizes the ring of pending messages: librdkafka's own bound plus a quarter, so that reports
// arriving out of order seldom make the ring, rather than the local queue, the limit; and at least room for
// the largest message twice.
func pendingBytes(cfg Config) int {
	b := cfg.QueueMaxKBytes << 10
	return max(b+b/4, 2*(cfg.MessageMaxBytes+1024))
}

// topicRef returns a pointer to a string equal to topic, allocating only when the topic differs from the
// last one produced to (the dead-letter topic, now and then).
func (pr *Producer) topicRef(topic string) *string {
	if p := pr.topic.Load(); p != nil && *p == topic {
		return p
	}
	t := topic
	pr.topic.Store(&t)
	return &t
}

// partitions looks up topic's partitions and which of them have a leader, for sticky.
func (pr *Producer) partitions(ctx context.Context, topic string) (topicView, error) {
	md, tm, err := topicMetadata(ctx, pr.p, &pr.errs, topic)
	if err != nil {
		return topicView{}, err
	}
	return viewOf(md, tm), nil
}

// InFlight returns how many messages are produced and not yet reported on (queued, awaiting
// acknowledgement, or with their report being handled).
func (pr *Producer) InFlight() int { return int(pr.unreported.Load()) }

// Flush waits until every message is acknowledged or failed and its DeliveryFunc has returned, or ctx is
// done, and returns how many remain.
func (pr *Producer) Flush(ctx context.Context) int {
	for {
		n := pr.p.Flush(100)
		if u := int(pr.unreported.Load()); u > n {
			n = u
		}
		if n == 0 || ctx.Err() != nil {
			return n
		}
		if pr.p.Len() == 0 {
			// librdkafka is done; the last reports are still in the DeliveryFunc.
			time.Sleep(time.Millisecond)
		}
	}
}

// SetCredentials swaps the SASL credentials of a running producer (after a password rotation).
func (pr *Producer) SetCredentials(username, password string) error {
	if err := pr.p.SetSaslCredentials(username, password); err != nil {
		return fmt.Errorf("setting sasl credentials: %w", err)
	}
	return nil
}

// Close purges what is still queued (each purged message gets a failing delivery report, so nothing
// vanishes from the accounting), waits for the reports, and closes the client. Call Flush first to deliver.
func (pr *Producer) Close() {
	if pr.closed.Swap(true) {
		return
	}
	pr.sticky.close()
	if err := pr.p.Purge(kafka.PurgeQueue | kafka.PurgeInFlight); err != nil {
		pr.log.Warn("purging kafka queue", "err", err)
	}
	pr.p.Flush(1000) // serves the purge's delivery reports
	pr.p.Close()
	pr.wg.Wait()
}

// CheckTopic verifies within ctx's deadline that the brokers answer with our credentials and that topic
// exists. Its error wraps ErrTopicNotFound, ErrAuthentication, ErrTLS or ErrUnreachable.
func (pr *Producer) CheckTopic(ctx context.Context, topic string) error {
	_, err := checkTopic(ctx, pr.p, &pr.errs, topic)
	if err == nil {
		pr.errs.forget() // the brokers accept us now: an old failure explains nothing later
	}
	return err
}
