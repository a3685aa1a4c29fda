package topiccheck

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Result is what a topic held, compared with what was sent.
type Result struct {
	Messages   int64  `json:"messages"`
	Events     uint64 `json:"events"`
	Missing    uint64 `json:"missing"`
	Duplicates uint64 `json:"duplicates"`
	// Unknown counts lines whose eventId is absent or outside the stream sent.
	Unknown uint64 `json:"unknown"`
	// ContentMatch is true when the lines' digest equals the expected lines' digest.
	ContentMatch bool `json:"content_match"`
	// FirstAppend and LastAppend are the broker's earliest and latest append time on the topic.
	FirstAppend time.Time `json:"first_append"`
	LastAppend  time.Time `json:"last_append"`
	// Latencies are append time minus send time for the sampled events found (see Read).
	Latencies []time.Duration `json:"-"`
}

// Exact reports whether the topic held every event sent, once, unchanged, and nothing else.
func (r Result) Exact(exp Expect) bool {
	return r.Events == exp.Count && r.Missing == 0 && r.Duplicates == 0 && r.Unknown == 0 && r.ContentMatch
}

// String summarises a result for logs and error messages.
func (r Result) String() string {
	return fmt.Sprintf("%d messages, %d events, %d missing, %d duplicated, %d unknown, content match %t",
		r.Messages, r.Events, r.Missing, r.Duplicates, r.Unknown, r.ContentMatch)
}

// Read reads topic from its start to its current high-water marks and checks it against exp, whose digest
// is wantDigest (Expect.Digest, computed once per stream). sendNanos, when not nil, holds the send time in
// Unix nanoseconds of sampled events, indexed by eventId - FirstID (0 for events not sampled); their
// latencies are returned in the result.
func Read(ctx context.Context, bootstrap, topic string, exp Expect, wantDigest uint64, sendNanos []int64) (Result, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers":         bootstrap,
		"group.id":                  "bench-verify",
		"enable.auto.commit":        false,
		"enable.partition.eof":      true,
		"fetch.max.bytes":           64 << 20,
		"max.partition.fetch.bytes": 16 << 20,
		"go.logs.channel.enable":    false,
	})
	if err != nil {
		return Result{}, fmt.Errorf("creating consumer: %w", err)
	}
	defer c.Close()
	ends, err := endOffsets(c, topic)
	if err != nil {
		return Result{}, err
	}
	var parts []kafka.TopicPartition
	left := 0
	for p, end := range ends {
		if end > 0 {
			parts = append(parts, kafka.TopicPartition{Topic: &topic, Partition: p, Offset: kafka.OffsetBeginning})
			left++
		}
	}
	res := Result{}
	t := newTally(exp, sendNanos)
	if left > 0 {
		if err := c.Assign(parts); err != nil {
			return Result{}, fmt.Errorf("assigning %s: %w", topic, err)
		}
	}
	done := map[int32]bool{}
	for left > 0 {
		if err := ctx.Err(); err != nil {
			return res, fmt.Errorf("reading %s: %w: %w", topic, ErrIncomplete, err)
		}
		switch e := c.Poll(200).(type) {
		case *kafka.Message:
			res.Messages++
			ts := e.Timestamp
			if res.FirstAppend.IsZero() || ts.Before(res.FirstAppend) {
				res.FirstAppend = ts
			}
			if ts.After(res.LastAppend) {
				res.LastAppend = ts
			}
			t.addMessage(e.Value, ts)
			p := e.TopicPartition.Partition
			if int64(e.TopicPartition.Offset)+1 >= ends[p] && !done[p] {
				done[p] = true
				left--
			}
		case kafka.Error:
			if e.IsFatal() {
				return res, fmt.Errorf("reading %s: %w", topic, e)
			}
		}
	}
	res.Events, res.Duplicates, res.Unknown = t.events, t.duplicates, t.unknown
	res.Missing = t.missing()
	res.ContentMatch = t.digest == wantDigest && t.events == exp.Count
	res.Latencies = t.latencies
	return res, nil
}

func endOffsets(c *kafka.Consumer, topic string) (map[int32]int64, error) {
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return nil, fmt.Errorf("reading metadata of %s: %w", topic, err)
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("reading metadata of %s: the broker does not list the topic", topic)
	}
	if tm.Error.Code() != kafka.ErrNoError {
		return nil, fmt.Errorf("reading metadata of %s: %w", topic, tm.Error)
	}
	ends := make(map[int32]int64, len(tm.Partitions))
	for _, p := range tm.Partitions {
		_, hi, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			return nil, fmt.Errorf("reading the end offset of %s/%d: %w", topic, p.ID, err)
		}
		ends[p.ID] = hi
	}
	return ends, nil
}

// Watcher reports how many messages a topic holds, cheaply, while a contender is still producing.
type Watcher struct {
	c     *kafka.Consumer
	topic string
}

// NewWatcher opens a client for counting topic's messages. Close it when done.
func NewWatcher(bootstrap, topic string) (*Watcher, error) {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "group.id": "bench-watch", "go.logs.channel.enable": false})
	if err != nil {
		return nil, fmt.Errorf("creating consumer: %w", err)
	}
	return &Watcher{c: c, topic: topic}, nil
}

// Messages returns the sum of the topic's partitions' high-water marks.
func (w *Watcher) Messages() (int64, error) {
	ends, err := endOffsets(w.c, w.topic)
	if err != nil {
		return 0, err
	}
	var n int64
	for _, v := range ends {
		n += v
	}
	return n, nil
}

// Close releases the client.
func (w *Watcher) Close() { w.c.Close() }

// Percentiles returns the p50, p99 and maximum of ds (zero when ds is empty). It sorts ds.
func Percentiles(ds []time.Duration) (p50, p99, maxD time.Duration) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	at := func(q float64) time.Duration { return ds[min(len(ds)-1, int(q*float64(len(ds))))] }
	return at(0.50), at(0.99), ds[len(ds)-1]
}
