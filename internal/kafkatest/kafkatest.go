// Package kafkatest helps integration tests (and the benchmark) use the real local broker: fresh topics, and
// reading a topic back to check what arrived.
package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

var seq atomic.Uint64

// BenchBootstrap returns the PLAINTEXT bootstrap address that benchmarks against a broker read from
// BENCH_KAFKA, and fails tb when it is not set.
func BenchBootstrap(tb testing.TB) string {
	tb.Helper()
	bootstrap := os.Getenv("BENCH_KAFKA")
	if bootstrap == "" {
		tb.Fatal("set BENCH_KAFKA to a PLAINTEXT bootstrap address (the benchmark stack's, e.g. 127.0.0.1:29092)")
	}
	return bootstrap
}

// UniqueTopic returns a topic name no other test run uses.
func UniqueTopic(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// CreateTopic creates topic on the PLAINTEXT bootstrap and waits until it is usable. It is deleted when the
// test ends.
func CreateTopic(tb testing.TB, bootstrap, topic string, partitions int) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := NewTopic(ctx, bootstrap, kafka.TopicSpecification{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		if err := DeleteTopic(dctx, bootstrap, topic); err != nil {
			tb.Logf("%v (left for the broker's retention)", err)
		}
	})
}

// TopicPair creates a fresh event topic with partitions and its dead-letter topic (one partition), named
// after prefix and prefix_dlq, both deleted when the test ends.
func TopicPair(tb testing.TB, bootstrap, prefix string, partitions int) (topic, dlq string) {
	tb.Helper()
	topic, dlq = UniqueTopic(prefix), UniqueTopic(prefix+"_dlq")
	CreateTopic(tb, bootstrap, topic, partitions)
	CreateTopic(tb, bootstrap, dlq, 1)
	return topic, dlq
}

// NewTopic creates the topic spec describes on the PLAINTEXT bootstrap and waits until every partition has
// a leader, so the first produce does not race the creation. A topic of that name that exists already is an
// error: every caller creates a fresh one, and stale messages in it would spoil a read-back check.
func NewTopic(ctx context.Context, bootstrap string, spec kafka.TopicSpecification) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	defer admin.Close()
	topic := spec.Topic
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{spec})
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("creating topic %s: %w", topic, r.Error)
		}
	}
	for {
		md, err := admin.GetMetadata(&topic, false, 5000)
		if err == nil {
			if tm, ok := md.Topics[topic]; ok && tm.Error.Code() == kafka.ErrNoError && len(tm.Partitions) == spec.NumPartitions {
				ready := true
				for _, p := range tm.Partitions {
					ready = ready && p.Leader >= 0
				}
				if ready {
					return nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("topic %s not ready in time: %w", topic, errors.Join(ctx.Err(), err)) // err: the last metadata error, if any
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DeleteTopic deletes topic.
func DeleteTopic(ctx context.Context, bootstrap, topic string) error {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	defer admin.Close()
	res, err := admin.DeleteTopics(ctx, []string{topic})
	if err != nil {
		return fmt.Errorf("deleting topic %s: %w", topic, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("deleting topic %s: %w", topic, r.Error)
		}
	}
	return nil
}

// Record is one message read back.
type Record struct {
	Value     []byte
	Headers   map[string]string
	Partition int32
	Offset    int64
	Timestamp time.Time
}

// ReadAll reads topic from the beginning until it has read want messages and the topic then stays quiet for
// quiet (so extra, duplicated messages are seen too), or timeout passes. It fails the test on timeout.
func ReadAll(tb testing.TB, bootstrap, topic string, want int, timeout time.Duration) []Record {
	tb.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           UniqueTopic("kafkatest"),
		"auto.offset.reset":  "earliest",
		"enable.auto.commit": false,
		"isolation.level":    "read_committed",
		"fetch.max.bytes":    64 << 20,
	})
	if err != nil {
		tb.Fatalf("creating consumer: %v", err)
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		tb.Fatalf("subscribing to %s: %v", topic, err)
	}
	var out []Record
	deadline := time.Now().Add(timeout)
	const quiet = 2 * time.Second
	lastMsg := time.Now()
	for {
		if len(out) >= want && time.Since(lastMsg) > quiet {
			return out
		}
		if time.Now().After(deadline) {
			tb.Fatalf("read %d of %d messages from %s within %v", len(out), want, topic, timeout)
		}
		ev := c.Poll(200)
		switch e := ev.(type) {
		case *kafka.Message:
			r := Record{Value: e.Value, Partition: e.TopicPartition.Partition, Offset: int64(e.TopicPartition.Offset), Timestamp: e.Timestamp}
			if len(e.Headers) > 0 {
				r.Headers = make(map[string]string, len(e.Headers))
				for _, h := range e.Headers {
					r.Headers[h.Key] = string(h.Value)
				}
			}
			out = append(out, r)
			lastMsg = time.Now()
		case kafka.Error:
			if e.IsFatal() || strings.Contains(e.Error(), "Unknown topic") {
				tb.Fatalf("consuming %s: %v", topic, e)
			}
		}
	}
}

// Produce writes values to topic over PLAINTEXT (acks=all) and fails tb unless the broker acknowledges every
// one within 30 s.
func Produce(tb testing.TB, bootstrap, topic string, values [][]byte) {
	tb.Helper()
	ProduceKeyed(tb, bootstrap, topic, nil, values)
}

// ProduceKeyed is Produce with keys[i] as the key of values[i] (none where keys is shorter or keys[i] is nil).
func ProduceKeyed(tb testing.TB, bootstrap, topic string, keys, values [][]byte) {
	tb.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
	if err != nil {
		tb.Fatalf("creating a producer for %s: %v", bootstrap, err)
	}
	defer p.Close()
	done := make(chan kafka.Event, len(values))
	for i, v := range values {
		msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: v}
		if i < len(keys) {
			msg.Key = keys[i]
		}
		if err := p.Produce(msg, done); err != nil {
			tb.Fatalf("producing to %s: %v", topic, err)
		}
	}
	timeout := time.After(30 * time.Second)
	for range values {
		select {
		case ev := <-done:
			if m, ok := ev.(*kafka.Message); !ok || m.TopicPartition.Error != nil {
				tb.Fatalf("delivery to %s failed: %v", topic, ev)
			}
		case <-timeout:
			tb.Fatalf("deliveries to %s not confirmed within 30s", topic)
		}
	}
}

// ReadToEnd hands every record of topic, from each partition's start to the high watermark it had when
// ReadToEnd began, to f (so call it once the producers have finished). It reads over PLAINTEXT from
// bootstrap. It fails tb when reading makes no progress for a minute, or takes longer than ten minutes.
func ReadToEnd(tb testing.TB, bootstrap, topic string, f func(Record)) {
	tb.Helper()
	ReadToEndWith(tb, map[string]string{"bootstrap.servers": bootstrap}, topic, f)
}

// ReadToEndWith is ReadToEnd for a client that conn describes: librdkafka connection properties, such as
// kafkaout.Connection.Properties returns for the SASL_SSL listener.
func ReadToEndWith(tb testing.TB, conn map[string]string, topic string, f func(Record)) {
	tb.Helper()
	cfg := kafka.ConfigMap{
		"group.id":                   fmt.Sprintf("readback-%d", time.Now().UnixNano()),
		"enable.auto.commit":         false,
		"auto.offset.reset":          "earliest",
		"fetch.max.bytes":            64 << 20,
		"max.partition.fetch.bytes":  16 << 20,
		"queued.max.messages.kbytes": 256 << 10,
	}
	for k, v := range conn {
		cfg[k] = v
	}
	c, err := kafka.NewConsumer(&cfg)
	if err != nil {
		tb.Fatalf("creating read-back consumer: %v", err)
	}
	defer c.Close()
	tm := topicMetadata(tb, c, topic)
	high := make(map[int32]int64)
	var parts []kafka.TopicPartition
	for _, p := range tm.Partitions {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			tb.Fatalf("reading watermarks of %s/%d: %v", topic, p.ID, err)
		}
		if hi > lo {
			high[p.ID] = hi
			parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
		}
	}
	if len(parts) == 0 {
		return
	}
	if err := c.Assign(parts); err != nil {
		tb.Fatalf("assigning %s: %v", topic, err)
	}
	deadline := time.Now().Add(10 * time.Minute)
	lastProgress := time.Now()
	for len(high) > 0 {
		if time.Now().After(deadline) || time.Since(lastProgress) > time.Minute {
			tb.Fatalf("reading %s back: no progress; partitions left %v", topic, high)
		}
		ev := c.Poll(200)
		switch e := ev.(type) {
		case *kafka.Message:
			lastProgress = time.Now()
			f(record(e))
			p := e.TopicPartition.Partition
			if h, ok := high[p]; ok && int64(e.TopicPartition.Offset)+1 >= h {
				delete(high, p)
			}
		case kafka.Error:
			if e.IsFatal() {
				tb.Fatalf("reading %s back: %v", topic, e)
			}
		}
	}
}

// Partitions returns how many partitions the brokers list for topic, asked by a client that conn describes
// (librdkafka connection properties, such as kafkaout.Connection.Properties returns). It fails tb when the
// brokers do not answer within 10 s or report an error for the topic.
func Partitions(tb testing.TB, conn map[string]string, topic string) int {
	tb.Helper()
	cfg := kafka.ConfigMap{"allow.auto.create.topics": false}
	for k, v := range conn {
		cfg[k] = v
	}
	a, err := kafka.NewAdminClient(&cfg)
	if err != nil {
		tb.Fatalf("creating admin client: %v", err)
	}
	defer a.Close()
	return len(topicMetadata(tb, a, topic).Partitions)
}

// topicMetadata asks c for topic's metadata and fails tb unless the brokers answer within 10 s and report
// the topic without error.
func topicMetadata(tb testing.TB, c interface {
	GetMetadata(*string, bool, int) (*kafka.Metadata, error)
}, topic string) kafka.TopicMetadata {
	tb.Helper()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		tb.Fatalf("reading metadata of %s: %v", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		tb.Fatalf("topic %s not found: %v", topic, tm.Error)
	}
	return tm
}

// record converts a consumed message into a Record.
func record(m *kafka.Message) Record {
	r := Record{Value: m.Value, Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), Timestamp: m.Timestamp}
	if len(m.Headers) > 0 {
		r.Headers = make(map[string]string, len(m.Headers))
		for _, h := range m.Headers {
			r.Headers[h.Key] = string(h.Value)
		}
	}
	return r
}
