package topiccheck

import (
	"context"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// CreateTopic creates topic with the broker's append time as every message's timestamp (so the topic
// itself records when each event was acknowledged) and waits until every partition has a leader.
func CreateTopic(ctx context.Context, bootstrap, topic string, partitions int) error {
	return kafkatest.NewTopic(ctx, bootstrap, kafka.TopicSpecification{
		Topic: topic, NumPartitions: partitions, ReplicationFactor: 1,
		Config: map[string]string{"message.timestamp.type": "LogAppendTime"},
	})
}
