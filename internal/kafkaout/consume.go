package kafkaout

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Message is one consumed record.
type Message struct {
	Partition int32
	Offset    int64
	// Time is the record's timestamp (the producer's create time, unless the topic says log append time).
	Time    time.Time
	Value   []byte
	Headers []Header
}

// Header returns the value of the first header named key, and whether there is one.
func (m Message) Header(key string) (string, bool) {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// ReadTopic hands fn every message of topic from each partition's first offset at or after since (the zero
// time: the partition's start) up to the high watermark the partition had when ReadTopic began, partition by
// partition in offset order. It reads without a consumer group (nothing is committed), stops at fn's first
// error, and fails when ctx is done or no message arrives for a minute while some are due. fn may keep what
// it is given.
func ReadTopic(ctx context.Context, conn Connection, clientID, topic string, since time.Time, fn func(Message) error) error {
	if err := conn.validate(); err != nil {
		return err
	}
	cfg := conn.settings(clientID)
	cfg["group.id"] = clientID + "-" + strconv.FormatInt(time.Now().UnixNano(), 36) // required; never joined
	cfg["enable.auto.commit"] = false
	cfg["enable.auto.offset.store"] = false
	cfg["allow.auto.create.topics"] = false
	cfg["log_level"] = 0 // client errors arrive as events; librdkafka's own lines would interleave with output
	c, err := kafka.NewConsumer(&cfg)
	if err != nil {
		return fmt.Errorf("creating kafka consumer: %w", err)
	}
	defer c.Close()
	var errs clientErrors
	tm, err := checkTopic(ctx, c, &errs, topic)
	if err != nil {
		return err
	}
	high := make(map[int32]int64, len(tm.Partitions))
	var start []kafka.TopicPartition
	for _, p := range tm.Partitions {
		lo, hi, err := c.QueryWatermarkOffsets(topic, p.ID, timeoutMs(ctx))
		if err != nil {
			return fmt.Errorf("reading offsets of %s[%d]: %w", topic, p.ID, errs.classify(err))
		}
		if hi > lo {
			high[p.ID] = hi
			off := kafka.OffsetBeginning
			if !since.IsZero() {
				off = kafka.Offset(since.UnixMilli())
			}
			start = append(start, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: off})
		}
	}
	if !since.IsZero() && len(start) > 0 {
		if start, err = c.OffsetsForTimes(start, timeoutMs(ctx)); err != nil {
			return fmt.Errorf("finding the offsets of %s at %s: %w", topic, since.Format(time.RFC3339), errs.classify(err))
		}
		kept := start[:0]
		for _, tp := range start {
			switch {
			case tp.Error != nil:
				return fmt.Errorf("finding the offset of %s[%d] at %s: %w", topic, tp.Partition, since.Format(time.RFC3339), tp.Error)
			case tp.Offset < 0 || int64(tp.Offset) >= high[tp.Partition]: // nothing that recent
				delete(high, tp.Partition)
			default:
				kept = append(kept, tp)
			}
		}
		start = kept
	}
	if len(start) == 0 {
		return nil
	}
	if err := c.Assign(start); err != nil {
		return fmt.Errorf("assigning %s: %w", topic, err)
	}
	lastProgress := time.Now()
	for len(high) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("reading %s: %w", topic, err)
		}
		if time.Since(lastProgress) > time.Minute {
			return fmt.Errorf("reading %s: no message for a minute with partitions %v unread: %w", topic, high, errs.classify(context.DeadlineExceeded))
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			lastProgress = time.Now()
			p, off := e.TopicPartition.Partition, int64(e.TopicPartition.Offset)
			h, ok := high[p]
			if !ok || off >= h {
				continue
			}
			if off+1 >= h {
				delete(high, p)
			}
			if err := fn(Message{Partition: p, Offset: off, Time: e.Timestamp, Value: e.Value, Headers: fromKafkaHeaders(e.Headers)}); err != nil {
				return err
			}
		case kafka.Error:
			errs.record(e)
			if e.IsFatal() {
				return fmt.Errorf("reading %s: %w", topic, e)
			}
		}
	}
	return nil
}
