package kafkaout

import (
	"cmp"
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// defaultCheckTimeout bounds a check whose context has no deadline.
const defaultCheckTimeout = 10 * time.Second

// metadataClient is what the checks need of a librdkafka handle.
type metadataClient interface {
	GetMetadata(topic *string, allTopics bool, timeoutMs int) (*kafka.Metadata, error)
}

// metadata asks for the metadata of topic (nil: the brokers only) within ctx's deadline. It asks in short
// steps: an authentication or TLS failure is known within a second, and waiting out the whole deadline
// before saying so would only delay a clear answer. Its error wraps ErrAuthentication, ErrTLS or
// ErrUnreachable.
func metadata(ctx context.Context, c metadataClient, errs *clientErrors, topic *string) (*kafka.Metadata, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(defaultCheckTimeout)
	}
	var err error // the last answer's error; nil until something was asked
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			// Out of time, or the caller gave up (it may be closing the client): ask nothing more.
			if err == nil {
				err = cmp.Or(ctx.Err(), context.DeadlineExceeded)
			}
			return nil, errs.classify(err)
		}
		var md *kafka.Metadata
		md, err = c.GetMetadata(topic, false, int(min(left, time.Second)/time.Millisecond))
		if err == nil {
			return md, nil
		}
		if errs.refused() {
			return nil, errs.classify(err)
		}
	}
}

// checkTopic verifies that the brokers answer and that topic exists with partitions.
func checkTopic(ctx context.Context, c metadataClient, errs *clientErrors, topic string) (kafka.TopicMetadata, error) {
	_, tm, err := topicMetadata(ctx, c, errs, topic)
	return tm, err
}

// topicMetadata is checkTopic that also returns the whole metadata answer (the live brokers).
func topicMetadata(ctx context.Context, c metadataClient, errs *clientErrors, topic string) (*kafka.Metadata, kafka.TopicMetadata, error) {
	md, err := metadata(ctx, c, errs, &topic)
	if err != nil {
		return nil, kafka.TopicMetadata{}, fmt.Errorf("checking topic %s: %w", topic, err)
	}
	tm, err := topicOf(md, topic)
	return md, tm, err
}

func topicOf(md *kafka.Metadata, topic string) (kafka.TopicMetadata, error) {
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() == kafka.ErrUnknownTopicOrPart || tm.Error.Code() == kafka.ErrUnknownTopic {
		return tm, fmt.Errorf("checking topic %s: %w", topic, ErrTopicNotFound)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return tm, fmt.Errorf("checking topic %s: %w", topic, tm.Error)
	}
	if len(tm.Partitions) == 0 {
		return tm, fmt.Errorf("checking topic %s: %w (no partitions)", topic, ErrTopicNotFound)
	}
	return tm, nil
}

// Probe is a client that only asks the brokers questions: whether they accept a Connection, whether topics
// exist and how many messages a topic holds. The health check uses it; it never produces and never creates
// the topics it checks for. Its methods are safe for concurrent use.
type Probe struct {
	p    *kafka.Producer
	errs clientErrors
	wg   sync.WaitGroup
}

// NewProbe builds a Probe for conn; clientID names it to the brokers. It does not connect until asked.
func NewProbe(conn Connection, clientID string) (*Probe, error) {
	if err := conn.validate(); err != nil {
		return nil, err
	}
	m := conn.settings(clientID)
	m["log.connection.close"] = false
	// A check must not create the topic it is checking for.
	m["allow.auto.create.topics"] = false
	// librdkafka's own log lines would interleave with the caller's JSON output; client errors still arrive
	// as events and name the cause in the checks' errors.
	m["log_level"] = 0
	kp, err := kafka.NewProducer(&m)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	pr := &Probe{p: kp}
	pr.wg.Add(1)
	go pr.events()
	return pr, nil
}

func (pr *Probe) events() {
	defer pr.wg.Done()
	for ev := range pr.p.Events() {
		if e, ok := ev.(kafka.Error); ok {
			pr.errs.record(e)
		}
	}
}

// Close releases the client and waits for its event loop.
func (pr *Probe) Close() {
	pr.p.Close()
	pr.wg.Wait()
}

// Brokers checks within ctx's deadline that at least one broker answers a metadata request with the
// Connection's credentials. Its error wraps ErrAuthentication, ErrTLS or ErrUnreachable.
func (pr *Probe) Brokers(ctx context.Context) error {
	md, err := metadata(ctx, pr.p, &pr.errs, nil)
	if err != nil {
		return fmt.Errorf("asking the brokers for metadata: %w", err)
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("asking the brokers for metadata: %w: no broker listed", ErrUnreachable)
	}
	return nil
}

// CheckTopic checks within ctx's deadline that topic exists with partitions. Its error wraps
// ErrTopicNotFound, ErrAuthentication, ErrTLS or ErrUnreachable.
func (pr *Probe) CheckTopic(ctx context.Context, topic string) error {
	_, err := checkTopic(ctx, pr.p, &pr.errs, topic)
	return err
}

// TopicMessages checks topic as CheckTopic does and returns its message count: the sum of its partitions'
// high watermarks.
func (pr *Probe) TopicMessages(ctx context.Context, topic string) (int64, error) {
	ends, err := pr.EndOffsets(ctx, topic)
	if err != nil {
		return 0, err
	}
	var total int64
	for _, high := range ends {
		total += high
	}
	return total, nil
}

// EndOffsets checks topic as CheckTopic does and returns each partition's high watermark (the offset the
// next message gets), e.g. to tell how far a consumer is behind.
func (pr *Probe) EndOffsets(ctx context.Context, topic string) (map[int32]int64, error) {
	tm, err := checkTopic(ctx, pr.p, &pr.errs, topic)
	if err != nil {
		return nil, err
	}
	ends := make(map[int32]int64, len(tm.Partitions))
	for _, p := range tm.Partitions {
		_, high, err := pr.p.QueryWatermarkOffsets(topic, p.ID, timeoutMs(ctx))
		if err != nil {
			return nil, fmt.Errorf("reading offsets of %s[%d]: %w", topic, p.ID, pr.errs.classify(err))
		}
		ends[p.ID] = high
	}
	return ends, nil
}

// timeoutMs is what is left of ctx's deadline, in the milliseconds librdkafka takes, at least 1.
func timeoutMs(ctx context.Context) int {
	d := defaultCheckTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	return max(int(d/time.Millisecond), 1)
}

// CommittedOffsets returns the offsets consumer group group has committed in topic's partitions (the offset
// of the next message it will read), from the group coordinator; a partition it never committed in is
// absent. It is what a consumer such as a ClickHouse Kafka table has finished with: the engine commits after
// it has written a block. Its error wraps ErrAuthentication, ErrTLS or ErrUnreachable when the brokers do.
func (pr *Probe) CommittedOffsets(ctx context.Context, group, topic string) (map[int32]int64, error) {
	tm, err := checkTopic(ctx, pr.p, &pr.errs, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]kafka.TopicPartition, len(tm.Partitions))
	for i, p := range tm.Partitions {
		parts[i] = kafka.TopicPartition{Topic: &topic, Partition: p.ID}
	}
	admin, err := kafka.NewAdminClientFromProducer(pr.p)
	if err != nil {
		return nil, fmt.Errorf("creating an admin client: %w", err)
	}
	defer admin.Close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultCheckTimeout)
		defer cancel()
	}
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		return nil, fmt.Errorf("reading the committed offsets of group %s: %w", group, pr.errs.classify(err))
	}
	out := make(map[int32]int64, len(parts))
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, tp := range g.Partitions {
			if tp.Error != nil {
				return nil, fmt.Errorf("reading the committed offset of group %s in %s[%d]: %w", group, topic, tp.Partition, pr.errs.classify(tp.Error))
			}
			if tp.Topic != nil && *tp.Topic == topic && tp.Offset >= 0 {
				out[tp.Partition] = int64(tp.Offset)
			}
		}
	}
	return out, nil
}
