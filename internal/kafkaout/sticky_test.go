package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// view is a topic of n partitions that all have a leader.
func view(n int32, leaderless ...int32) topicView {
	v := topicView{partitions: n}
	for p := range n {
		if !slices.Contains(leaderless, p) {
			v.usable = append(v.usable, p)
		}
	}
	return v
}

// fixed is a lookup that always finds n partitions with a leader.
func fixed(n int32) func(context.Context, string) (topicView, error) {
	return func(context.Context, string) (topicView, error) { return view(n), nil }
}

// waitKnown waits until s knows topic's partition count (its lookup runs in the background).
func waitKnown(t *testing.T, s *sticky, topic string) {
	t.Helper()
	s.partition(topic, 0) // starts the lookup
	for deadline := time.Now().Add(5 * time.Second); ; {
		if s.view(topic).partitions > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partition count of %s never became known", topic)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStickyStaysOnOnePartitionForABatch(t *testing.T) {
	s := newSticky(fixed(3), 1000)
	s.window = time.Hour // only the bytes move it on here
	s.stall = time.Hour  // these messages are never reported: stalls are not what this test is about
	defer s.close()
	waitKnown(t, s, "logs")

	first := s.partition("logs", 100)
	for i := range 9 { // 1,000 bytes in all: still the same partition
		if p := s.partition("logs", 100); p != first {
			t.Fatalf("message %d went to partition %d, the batch's partition is %d", i+2, p, first)
		}
	}
	next := s.partition("logs", 100)
	if next == first || next < 0 || next >= 3 {
		t.Fatalf("after a full batch the partition is %d (was %d); want another of 0-2", next, first)
	}
	// Every partition gets its turn.
	seen := map[int32]bool{first: true, next: true}
	for range 30 {
		seen[s.partition("logs", 1000)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("partitions used: %v, want all of 0-2", seen)
	}
}

func TestStickyMovesOnAfterItsWindow(t *testing.T) {
	s := newSticky(fixed(2), 1<<20)
	s.window = 20 * time.Millisecond
	s.stall = time.Hour // these messages are never reported: stalls are not what this test is about
	defer s.close()
	waitKnown(t, s, "logs")
	first := s.partition("logs", 10)
	time.Sleep(s.window + 5*time.Millisecond)
	if p := s.partition("logs", 10); p == first {
		t.Fatalf("still on partition %d after the %v window", p, s.window)
	}
}

func TestStickyLeavesPartitioningToLibrdkafkaUntilTheCountIsKnown(t *testing.T) {
	var calls atomic.Int32
	s := newSticky(func(context.Context, string) (topicView, error) {
		calls.Add(1)
		return topicView{}, errors.New("no metadata")
	}, 1000)
	defer s.close()
	for range 5 {
		if p := s.partition("logs", 100); p != kafka.PartitionAny {
			t.Fatalf("partition %d before the count is known, want PartitionAny", p)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); calls.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the partition count was never looked up")
		}
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d lookups for one topic, want one (retried later, not per message)", n)
	}
}

func TestStickyFollowsAShrunkPartitionCount(t *testing.T) {
	s := newSticky(fixed(4), 100)
	s.window = time.Hour
	s.stall = time.Hour // these messages are never reported: stalls are not what this test is about
	defer s.close()
	waitKnown(t, s, "logs")
	for i := 0; s.partition("logs", 100) != 3; i++ {
		if i > 8 {
			t.Fatal("partition 3 of 4 never came up")
		}
	}
	s.set(s.topics["logs"], view(2), nil) // as a refresh would set it
	if p := s.partition("logs", 1); p < 0 || p >= 2 {
		t.Fatalf("partition %d of a topic now with 2", p)
	}
}

// switchable is a lookup whose answer the test changes, counting its calls.
type switchable struct {
	v     atomic.Pointer[topicView]
	err   atomic.Pointer[error]
	calls atomic.Int32
}

func (l *switchable) lookup(context.Context, string) (topicView, error) {
	l.calls.Add(1)
	if e := l.err.Load(); e != nil {
		return topicView{}, *e
	}
	return *l.v.Load(), nil
}

func (l *switchable) set(v topicView) { l.err.Store(nil); l.v.Store(&v) }

// waitView waits until s's view of topic satisfies ok, within limit.
func waitView(t *testing.T, s *sticky, topic string, limit time.Duration, what string, ok func(topicView) bool) {
	t.Helper()
	for deadline := time.Now().Add(limit); !ok(s.view(topic)); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v (view %+v)", what, limit, s.view(topic))
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStickyAvoidsPartitionsWithoutALeader(t *testing.T) {
	var l switchable
	l.set(view(3))
	s := newSticky(l.lookup, 100)
	s.window = time.Hour
	s.stall = time.Hour // these messages are never reported: stalls are not what this test is about
	defer s.close()
	waitKnown(t, s, "logs")
	// Settle on partition 1, then its broker goes: the next message already goes elsewhere.
	for i := 0; s.partition("logs", 100) != 1; i++ {
		if i > 8 {
			t.Fatal("partition 1 of 3 never came up")
		}
	}
	l.set(view(3, 1))
	s.refresh("logs")
	waitView(t, s, "logs", 3*time.Second, "partition 1 without a leader", func(v topicView) bool { return len(v.usable) == 2 })
	for i := range 100 {
		if p := s.partition("logs", 100); p == 1 || p < 0 || p >= 3 {
			t.Fatalf("message %d went to partition %d while partition 1 has no leader", i, p)
		}
	}
	// Back: partition 1 gets its share again, soon and without being asked (leaderlessRefresh).
	l.set(view(3))
	waitView(t, s, "logs", leaderlessRefresh+2*time.Second, "partition 1 with a leader again", func(v topicView) bool { return len(v.usable) == 3 })
	seen := map[int32]bool{}
	for range 30 {
		seen[s.partition("logs", 100)] = true
	}
	if !seen[1] {
		t.Fatalf("partitions used after partition 1 is back: %v", seen)
	}
}

func TestViewOfCountsOnlyPartitionsWithALiveLeader(t *testing.T) {
	md := &kafka.Metadata{Brokers: []kafka.BrokerMetadata{{ID: 1}, {ID: 3}}} // broker 2 is gone
	leaderless := kafka.NewError(kafka.ErrLeaderNotAvailable, "no leader", false)
	tests := []struct {
		name  string
		parts []kafka.PartitionMetadata
		want  topicView
	}{
		{"all led", []kafka.PartitionMetadata{{ID: 1, Leader: 3}, {ID: 0, Leader: 1}}, topicView{2, []int32{0, 1}}},
		{"no leader", []kafka.PartitionMetadata{{ID: 0, Leader: 1}, {ID: 1, Leader: -1, Error: leaderless}, {ID: 2, Leader: 3}}, topicView{3, []int32{0, 2}}},
		{"leader not among the live brokers", []kafka.PartitionMetadata{{ID: 0, Leader: 2}, {ID: 1, Leader: 1}}, topicView{2, []int32{1}}},
		{"none led: all of them, to wait there", []kafka.PartitionMetadata{{ID: 0, Leader: -1}, {ID: 1, Leader: 2}}, topicView{2, []int32{0, 1}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := viewOf(md, kafka.TopicMetadata{Partitions: tt.parts}); got.partitions != tt.want.partitions || !slices.Equal(got.usable, tt.want.usable) {
				t.Fatalf("viewOf = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// Asked to look again (a client error, a failed delivery, a partition the client does not know), sticky
// looks within refreshGap, not at the next minute's refresh; many asks make one lookup.
func TestStickyLooksAgainWhenAsked(t *testing.T) {
	var l switchable
	l.set(view(3))
	s := newSticky(l.lookup, 100)
	defer s.close()
	waitKnown(t, s, "logs")
	l.set(view(5))
	start := time.Now()
	for range 1000 {
		s.refresh("logs")
		s.refreshAll()
	}
	waitView(t, s, "logs", refreshGap+2*time.Second, "the new count", func(v topicView) bool { return v.partitions == 5 })
	time.Sleep(refreshGap / 2)
	// One lookup at the start, at most two more for 2,000 asks within this second and a half.
	if n := l.calls.Load(); n > 3 {
		t.Fatalf("%d lookups in %v for 2,000 asks, want them coalesced", n, time.Since(start))
	}
}

// A lookup that fails leaves no count in use that nothing confirms any more: messages go to librdkafka's
// partitioner (which knows its client's current count) until a lookup succeeds.
func TestStickyForgetsTheCountWhenALookupFails(t *testing.T) {
	var l switchable
	l.set(view(3))
	s := newSticky(l.lookup, 100)
	defer s.close()
	waitKnown(t, s, "logs")
	gone := ErrTopicNotFound
	l.err.Store(&gone)
	s.refresh("logs")
	waitView(t, s, "logs", refreshGap+2*time.Second, "the count forgotten", func(v topicView) bool { return v.partitions == 0 })
	if p := s.partition("logs", 1); p != kafka.PartitionAny {
		t.Fatalf("partition %d after the lookup failed, want PartitionAny", p)
	}
	l.set(view(2))
	waitView(t, s, "logs", failedRefresh+2*time.Second, "the count looked up again", func(v topicView) bool { return v.partitions == 2 })
}

// The same with the real client: the topic is deleted, the lookup that follows fails, and the count it had
// is no longer used.
func TestIntegrationStickyForgetsTheCountOfADeletedTopic(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic := kafkatest.UniqueTopic("kafkaout_deleted")
	kafkatest.CreateTopic(t, bootstrap, topic, 3)
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	waitKnown(t, p.sticky, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := kafkatest.DeleteTopic(ctx, bootstrap, topic); err != nil {
		t.Fatal(err)
	}
	p.sticky.refresh(topic)
	waitView(t, p.sticky, topic, partitionsTimeout+refreshGap+5*time.Second, "the deleted topic's count forgotten",
		func(v topicView) bool { return v.partitions == 0 })
	if got := p.sticky.partition(topic, 1); got != kafka.PartitionAny {
		t.Fatalf("partition %d of a deleted topic, want PartitionAny", got)
	}
}

// No lookup starts on a client that is closing: Close waits for the lookups under way, and none starts
// after (a Produce racing Close for a topic it has not seen, a client error or a failed delivery asking for
// a refresh). Run with -race.
func TestIntegrationNoLookupOnAClosingClient(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var after atomic.Int32
	closed := make(chan struct{})
	lookup := p.sticky.lookup
	p.sticky.lookup = func(ctx context.Context, topic string) (topicView, error) {
		select {
		case <-closed:
			after.Add(1)
		default:
		}
		return lookup(ctx, topic)
	}
	// Producers racing Close, each to topics the producer has not seen.
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				select {
				case <-stop:
					return
				default:
				}
				_ = p.Produce(context.Background(), fmt.Sprintf("closing_%d_%d", g, i), []byte("x"))
			}
		}()
	}
	time.Sleep(50 * time.Millisecond) // some lookups under way
	p.Close()
	close(closed)
	// After Close: a topic never seen, and asks for a refresh.
	if err := p.Produce(context.Background(), "after_close", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Produce after Close = %v, want ErrClosed", err)
	}
	p.sticky.partition("after_close_2", 1)
	p.sticky.refreshAll()
	close(stop)
	wg.Wait()
	p.sticky.close() // waits for any lookup that started anyway
	if n := after.Load(); n != 0 {
		t.Fatalf("%d lookups started on the closed client", n)
	}
}

// A partition that stops answering (its broker crashed, and the metadata still names it as the leader) is
// skipped once a message sent there went unreported for stallAfter, and used again at its first report.
func TestStickySkipsAPartitionThatStopsAnswering(t *testing.T) {
	s := newSticky(fixed(3), 100)
	s.window, s.stall = time.Hour, 50*time.Millisecond
	defer s.close()
	waitKnown(t, s, "logs")
	// Partition 1 never reports; the others report every message at once.
	var sentTo1 time.Time
	for sentTo1.IsZero() || time.Since(sentTo1) <= s.stall {
		p := s.partition("logs", 100)
		if p == 1 && sentTo1.IsZero() {
			sentTo1 = time.Now()
		}
		if p != 1 {
			s.reported("logs", p)
		}
		time.Sleep(time.Millisecond)
	}
	for i := range 100 {
		p := s.partition("logs", 100)
		if p == 1 {
			t.Fatalf("message %d went to partition 1, which has not answered for %v", i, time.Since(sentTo1))
		}
		s.reported("logs", p)
	}
	s.reported("logs", 1) // the broker is back: what waited is delivered
	seen := map[int32]bool{}
	for range 30 {
		p := s.partition("logs", 100)
		seen[p] = true
		s.reported("logs", p)
	}
	if !seen[1] {
		t.Fatalf("partitions used after partition 1 answered again: %v", seen)
	}
}

// When no partition answers (the whole cluster is slow or away), batches stay whole: the partition changes
// only at the end of a window, not at every message.
func TestStickyKeepsWholeBatchesWhenNoPartitionAnswers(t *testing.T) {
	s := newSticky(fixed(3), 1000)
	s.window, s.stall = time.Hour, 10*time.Millisecond
	defer s.close()
	waitKnown(t, s, "logs")
	first := s.partition("logs", 100)
	for range 2 { // one message to each of the other partitions; then none reports
		for s.partition("logs", 1000) == first {
		}
	}
	time.Sleep(3 * s.stall)
	p := s.partition("logs", 1)
	for i := range 100 {
		if q := s.partition("logs", 1); q != p {
			t.Fatalf("message %d moved from partition %d to %d within one batch while no partition answers", i, p, q)
		}
	}
}
