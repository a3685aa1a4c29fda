package kafkaout

import (
	"context"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Every message carries its 8-byte sequence as its key (see pending), and librdkafka's partitioner hashes a
// keyed message to a partition of its own: consecutive messages scatter over every partition, each
// partition's batches stay a fraction of what they could be, and the producer sends and settles that many
// more of them. Measured with BenchmarkProduceFloor, the scatter cost about 1 CPU second per million
// messages, a fifth of the producer's cost. The keys mean nothing to consumers, so the producer picks the
// partition itself, as librdkafka does for messages without a key: one partition at a time, moving on to
// the next after stickyWindow or stickyBytes, whichever comes first.
const (
	stickyWindow = 10 * time.Millisecond // librdkafka's sticky.partitioning.linger.ms default
	// partitionsRefresh is how often a topic's partition count is looked up again, so partitions added
	// to a topic are used.
	partitionsRefresh = time.Minute
	partitionsTimeout = 5 * time.Second
)

// sticky picks partitions for keyed messages. Until a topic's partition count is known (it is looked up in
// the background) or when the lookup fails, messages go to kafka.PartitionAny and librdkafka's partitioner.
type sticky struct {
	lookup func(ctx context.Context, topic string) (int32, error)
	bytes  int           // move on after this many bytes in one partition: a full batch
	window time.Duration // or after this long

	mu     sync.Mutex
	topics map[string]*stickyTopic
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

type stickyTopic struct {
	partitions int32 // 0: not known (yet)
	current    int32
	until      time.Time
	bytes      int
}

func newSticky(lookup func(ctx context.Context, topic string) (int32, error), batchBytes int) *sticky {
	ctx, stop := context.WithCancel(context.Background())
	return &sticky{lookup: lookup, bytes: batchBytes, window: stickyWindow, topics: make(map[string]*stickyTopic), ctx: ctx, stop: stop}
}

// partition returns the partition for a message of size bytes to topic.
func (s *sticky) partition(topic string, size int) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.topics[topic]
	if t == nil {
		t = &stickyTopic{}
		s.topics[topic] = t
		s.wg.Add(1)
		go s.watch(topic)
	}
	if t.partitions <= 0 {
		return kafka.PartitionAny
	}
	now := time.Now()
	if t.bytes >= s.bytes || now.After(t.until) || t.current >= t.partitions {
		t.current = (t.current + 1) % t.partitions
		t.until, t.bytes = now.Add(s.window), 0
	}
	t.bytes += size
	return t.current
}

// watch looks up topic's partition count now and every partitionsRefresh until close.
func (s *sticky) watch(topic string) {
	defer s.wg.Done()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, partitionsTimeout)
		n, err := s.lookup(ctx, topic)
		cancel()
		if err == nil && n > 0 {
			s.mu.Lock()
			s.topics[topic].partitions = n
			s.mu.Unlock()
		}
		next := partitionsRefresh
		if err != nil || n <= 0 {
			next = partitionsTimeout // the topic may be created shortly; PartitionAny meanwhile
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(next):
		}
	}
}

func (s *sticky) close() {
	s.stop()
	s.wg.Wait()
}
