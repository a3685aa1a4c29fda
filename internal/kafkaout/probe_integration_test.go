package kafkaout

import (
	"context"
	"errors"
	"maps"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationProbeCommittedOffsets: the probe reads a consumer group's committed offsets from the group
// coordinator, over SASL_SSL: the partitions the group committed in, at the committed offset; a partition it
// never committed in is absent, and a group that never committed has none.
func TestIntegrationProbeCommittedOffsets(t *testing.T) {
	st := stacktest.Load(t)
	plaintext := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic := kafkatest.UniqueTopic("probe_committed")
	kafkatest.CreateTopic(t, plaintext, topic, 3)
	kafkatest.Produce(t, plaintext, topic, [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d"), []byte("e")})

	group := topic + "_group"
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": plaintext, "group.id": group, "enable.auto.commit": false})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.CommitOffsets([]kafka.TopicPartition{{Topic: &topic, Partition: 0, Offset: 2}, {Topic: &topic, Partition: 2, Offset: 1}}); err != nil {
		t.Fatalf("committing offsets for %s: %v", group, err)
	}

	pr, err := NewProbe(saslConfig(t, st).Connection, "probe-test")
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got, err := pr.CommittedOffsets(ctx, group, topic)
	if want := map[int32]int64{0: 2, 2: 1}; err != nil || !maps.Equal(got, want) {
		t.Errorf("CommittedOffsets(%s) = %v, %v; want %v", group, got, err, want)
	}
	if got, err := pr.CommittedOffsets(ctx, "never_committed_"+group, topic); err != nil || len(got) != 0 {
		t.Errorf("CommittedOffsets of a group that never committed = %v, %v; want none", got, err)
	}
	if _, err := pr.CommittedOffsets(ctx, group, "no_such_topic_"+topic); !errors.Is(err, ErrTopicNotFound) {
		t.Errorf("CommittedOffsets on a missing topic: %v, want ErrTopicNotFound", err)
	}
}
