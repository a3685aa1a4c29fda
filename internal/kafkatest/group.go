package kafkatest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// GroupLag returns how many messages of topic the consumer group has not committed yet: the sum over the
// partitions of the high watermark minus the group's committed offset (a partition the group never
// committed counts whole). Zero means the group has committed everything the topic holds, so nothing it
// already read will be read again. It asks over PLAINTEXT from bootstrap.
func GroupLag(ctx context.Context, bootstrap, group, topic string) (int64, error) {
	// Watermarks come from a consumer: the admin client does not offer them in this client version.
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "lag-" + group})
	if err != nil {
		return 0, fmt.Errorf("creating watermark consumer: %w", err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return 0, fmt.Errorf("reading metadata of %s: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok || tm.Error.Code() != kafka.ErrNoError {
		return 0, fmt.Errorf("topic %s not found: %w", topic, tm.Error)
	}
	committed, err := CommittedOffsets(ctx, bootstrap, group, topic, len(tm.Partitions))
	if err != nil {
		return 0, err
	}
	var lag int64
	for _, p := range tm.Partitions {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			return 0, fmt.Errorf("reading watermarks of %s/%d: %w", topic, p.ID, err)
		}
		at, ok := committed[p.ID]
		if !ok {
			at = lo
		}
		lag += max(0, hi-at)
	}
	return lag, nil
}

// JoinGroup starts a consumer in group on topic that never commits, waits until the group coordinator has
// assigned it at least one partition (the rebalance took place: the group's other members gave partitions
// up), and returns a function that closes it (the group rebalances again) together with the partitions it
// held. Every message it polled meanwhile is left uncommitted for the other members to read. It fails tb
// when no partition is assigned within timeout.
func JoinGroup(tb testing.TB, bootstrap, group, topic string, timeout time.Duration) (leave func(), assigned []int32) {
	tb.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":  bootstrap,
		"group.id":           group,
		"enable.auto.commit": false,
		"auto.offset.reset":  "earliest",
		// The engine's consumers use librdkafka's default eager assignment; so does this one, so the
		// group can balance them.
		"partition.assignment.strategy": "range,roundrobin",
	})
	if err != nil {
		tb.Fatalf("creating the joining consumer: %v", err)
	}
	if err := c.Subscribe(topic, nil); err != nil {
		c.Close()
		tb.Fatalf("subscribing the joining consumer to %s: %v", topic, err)
	}
	deadline := time.Now().Add(timeout)
	for {
		_ = c.Poll(200)
		parts, err := c.Assignment()
		if err == nil && len(parts) > 0 {
			for _, p := range parts {
				assigned = append(assigned, p.Partition)
			}
			break
		}
		if time.Now().After(deadline) {
			c.Close()
			tb.Fatalf("the joining consumer got no partition of %s in group %s within %v", topic, group, timeout)
		}
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	// The consumer keeps polling while it is a member, as a real one would: a member that stops polling
	// is expelled after max.poll.interval.ms instead of leaving when the test says.
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				_ = c.Poll(100)
			}
		}
	}()
	var closed bool
	leave = func() {
		if closed {
			return
		}
		closed = true
		close(stop)
		<-done
		if err := c.Close(); err != nil {
			tb.Errorf("closing the joining consumer: %v", err)
		}
	}
	tb.Cleanup(leave)
	return leave, assigned
}
