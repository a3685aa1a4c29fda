package kafkatest

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// SetGroupOffsets commits offsets (by partition of topic) for group, as an operator's offset reset does, so
// that the group's next consumer starts there. The broker accepts this only while the group has no member:
// SetGroupOffsets retries until it does, and fails tb when it has not within timeout (a member still
// holding the partitions), so a caller knows the reset took hold.
func SetGroupOffsets(tb testing.TB, bootstrap, group, topic string, offsets map[int32]int64, timeout time.Duration) {
	tb.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		tb.Fatalf("creating admin client: %v", err)
	}
	defer admin.Close()
	parts := make([]kafka.TopicPartition, 0, len(offsets))
	for p, o := range offsets {
		parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.Offset(o)})
	}
	sort.Slice(parts, func(i, j int) bool { return parts[i].Partition < parts[j].Partition })
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		res, err := admin.AlterConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
		cancel()
		if err == nil {
			for _, g := range res.ConsumerGroupsTopicPartitions {
				for _, p := range g.Partitions {
					if p.Error != nil && err == nil {
						err = p.Error
					}
				}
			}
		}
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("setting the offsets of group %s on %s to %v: %v", group, topic, offsets, err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// GroupOffsets returns group's committed offsets on partitions 0..partitions-1 of topic; a partition
// without a committed offset is missing from the map. It fails tb when the broker does not answer.
func GroupOffsets(tb testing.TB, bootstrap, group, topic string, partitions int) map[int32]int64 {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := CommittedOffsets(ctx, bootstrap, group, topic, partitions)
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// CommittedOffsets is GroupOffsets returning its error, for callers that poll.
func CommittedOffsets(ctx context.Context, bootstrap, group, topic string, partitions int) (map[int32]int64, error) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return nil, fmt.Errorf("creating admin client: %w", err)
	}
	defer admin.Close()
	parts := make([]kafka.TopicPartition, partitions)
	for i := range parts {
		parts[i] = kafka.TopicPartition{Topic: &topic, Partition: int32(i)}
	}
	res, err := admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: group, Partitions: parts}})
	if err != nil {
		return nil, fmt.Errorf("reading the offsets of group %s: %w", group, err)
	}
	out := map[int32]int64{}
	for _, g := range res.ConsumerGroupsTopicPartitions {
		for _, p := range g.Partitions {
			if p.Error != nil {
				return nil, fmt.Errorf("reading the offset of group %s on %s/%d: %w", group, topic, p.Partition, p.Error)
			}
			if p.Offset >= 0 {
				out[p.Partition] = int64(p.Offset)
			}
		}
	}
	return out, nil
}
