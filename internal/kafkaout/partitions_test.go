package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// recreate deletes topic and creates it again with partitions, retrying while the broker still finishes the
// deletion.
func recreate(t *testing.T, bootstrap, topic string, partitions int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := kafkatest.DeleteTopic(ctx, bootstrap, topic); err != nil {
		t.Fatal(err)
	}
	for {
		err := kafkatest.NewTopic(ctx, bootstrap, kafka.TopicSpecification{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1})
		if err == nil {
			return
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrTopicAlreadyExists || ctx.Err() != nil {
			t.Fatalf("creating %s again: %v", topic, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A topic deleted and created again with fewer partitions: the producer's count of its partitions is stale
// the moment the broker answers with the new one, and no message may fail for it (before the fix, every
// message sent to a partition beyond the new count failed at once with "Unknown partition" and was
// dead-lettered, until the next refresh a minute later).
func TestIntegrationProduceFollowsATopicThatShrank(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic := kafkatest.UniqueTopic("kafkaout_shrunk")
	kafkatest.CreateTopic(t, bootstrap, topic, 3)

	var delivered, failed atomic.Int64
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext}}, func(_ string, _ []byte, err error) {
		if err != nil {
			failed.Add(1)
			return
		}
		delivered.Add(1)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	waitKnown(t, p.sticky, topic)
	if n := p.sticky.view(topic).partitions; n != 3 {
		t.Fatalf("the producer counts %d partitions of a topic with 3", n)
	}

	recreate(t, bootstrap, topic, 1)
	// The producer's own client learns the new count (librdkafka refreshes its metadata on errors too; this
	// makes it certain): from now on it refuses partitions 1 and 2 of the topic.
	for {
		md, err := p.p.GetMetadata(&topic, false, 5000)
		if err == nil && len(md.Topics[topic].Partitions) == 1 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the producer's client never saw the topic with one partition: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	const n = 300
	for i := range n {
		if err := p.Produce(ctx, topic, []byte(fmt.Sprintf("after %d", i))); err != nil {
			t.Fatalf("Produce #%d to the shrunk topic: %v", i, err)
		}
		time.Sleep(time.Millisecond) // across many sticky windows: every stale partition gets its turn
	}
	if left := p.Flush(ctx); left != 0 {
		t.Fatalf("Flush left %d messages", left)
	}
	if delivered.Load() != n || failed.Load() != 0 {
		t.Fatalf("delivered %d, failed %d; want %d and 0", delivered.Load(), failed.Load(), n)
	}
	if got := len(kafkatest.ReadAll(t, bootstrap, topic, n, time.Minute)); got != n {
		t.Fatalf("the topic holds %d messages, want %d", got, n)
	}
}
