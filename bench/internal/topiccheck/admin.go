package topiccheck

import (
	"context"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// CreateTopic creates topic with the broker's append time as every message's timestamp (so the topic
// itself records when each event was acknowledged) and waits until every partition has a leader.
func CreateTopic(ctx context.Context, bootstrap, topic string, partitions int) error {
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	defer a.Close()
	res, err := a.CreateTopics(ctx, []kafka.TopicSpecification{{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
		Config: map[string]string{"message.timestamp.type": "LogAppendTime"},
	}})
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	for _, r := range res {
		if r.Error.Code() != kafka.ErrNoError {
			return fmt.Errorf("creating topic %s: %w", topic, r.Error)
		}
	}
	for {
		md, err := a.GetMetadata(&topic, false, 5000)
		if err == nil {
			if tm, ok := md.Topics[topic]; ok && tm.Error.Code() == kafka.ErrNoError && len(tm.Partitions) == partitions {
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
			return fmt.Errorf("waiting for topic %s: %w", topic, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DeleteTopic deletes topic (the benchmark frees the broker's disk after each check).
func DeleteTopic(ctx context.Context, bootstrap, topic string) error {
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		return fmt.Errorf("creating admin client: %w", err)
	}
	defer a.Close()
	res, err := a.DeleteTopics(ctx, []string{topic})
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
