// Package kafkatest helps integration tests use the real local broker: fresh topics, and reading a topic back
// to check what arrived.
package kafkatest

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

var seq atomic.Uint64

// UniqueTopic returns a topic name no other test run uses.
func UniqueTopic(prefix string) string {
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano(), seq.Add(1))
}

// CreateTopic creates topic on the PLAINTEXT bootstrap and waits until it is usable. It is deleted when the
// test ends.
func CreateTopic(tb testing.TB, bootstrap, topic string, partitions int) {
	tb.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		tb.Fatalf("creating admin client: %v", err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}})
	if err != nil {
		tb.Fatalf("creating topic %s: %v", topic, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError && r.Error.Code() != kafka.ErrTopicAlreadyExists {
			tb.Fatalf("creating topic %s: %v", topic, r.Error)
		}
	}
	// Wait for leaders, so the first produce does not race topic creation.
	for {
		md, err := admin.GetMetadata(&topic, false, 5000)
		if err == nil {
			if tm, ok := md.Topics[topic]; ok && tm.Error.Code() == kafka.ErrNoError && len(tm.Partitions) == partitions {
				ready := true
				for _, p := range tm.Partitions {
					ready = ready && p.Leader >= 0
				}
				if ready {
					break
				}
			}
		}
		if ctx.Err() != nil {
			tb.Fatalf("topic %s not ready in time: %v", topic, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	tb.Cleanup(func() {
		a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
		if err != nil {
			return
		}
		defer a.Close()
		dctx, dcancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer dcancel()
		if _, err := a.DeleteTopics(dctx, []string{topic}); err != nil {
			tb.Logf("deleting topic %s: %v (left for the broker's retention)", topic, err)
		}
	})
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
