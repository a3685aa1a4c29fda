package kafkaout

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Every message carries its producer's instance id and sequence as its key (see pending), and librdkafka's
// partitioner hashes a keyed message to a partition of its own: consecutive messages scatter over every partition, each
// partition's batches stay a fraction of what they could be, and the producer sends and settles that many
// more of them. Measured with BenchmarkProduceFloor, the scatter cost about 1 CPU second per million
// messages, a fifth of the producer's cost. The keys say nothing about placement (consumers use them only to
// recognise a message's copies), so the producer picks the
// partition itself, as librdkafka does for messages without a key: one partition at a time, moving on to
// the next after stickyWindow or stickyBytes, whichever comes first, and only among the partitions that
// have a leader (librdkafka's own partitioner skips unavailable partitions too): a message sent to a
// partition without a leader waits in the local queue until the partition has one again or the message
// times out, so sending more there only grows what waits, until the whole queue waits for one partition and
// reading stops. The metadata says so only some time after the broker went away (at once for a clean stop,
// after the controller's session timeout for a crash), so a partition is also skipped while it answers
// nothing: a message was sent to it more than stallAfter ago and no delivery report came from it since. Its
// first report (the broker is back and takes what waited, or a message timed out) makes it usable again.
const (
	stickyWindow = 10 * time.Millisecond // librdkafka's sticky.partitioning.linger.ms default
	// partitionsRefresh is how often a topic's partitions and their leaders are looked up again while all
	// of them have a leader, so partitions added to a topic are used.
	partitionsRefresh = time.Minute
	// leaderlessRefresh is how often they are looked up while a partition has no leader, so it is used
	// again soon after its broker is back.
	leaderlessRefresh = 2 * time.Second
	// failedRefresh is how soon a failed lookup is tried again; meanwhile the topic's partitions count as
	// unknown.
	failedRefresh = time.Second
	// refreshGap is the least time between two lookups of one topic that the producer asks for (on client
	// errors, failed deliveries, or a partition the client does not know), however many ask.
	refreshGap        = time.Second
	partitionsTimeout = 5 * time.Second
	// stallAfter is how long a partition may leave a message unreported before it is skipped: far above a
	// broker's answer under load (librdkafka's linger is 5 ms), short enough that a stalled partition holds
	// only a second of its share of the traffic.
	stallAfter = time.Second
)

// topicView is what a lookup learns of a topic: how many partitions it has and which of them have a leader
// among the live brokers (usable, ascending). When none has, every partition is usable: messages then wait
// for a leader wherever they go.
type topicView struct {
	partitions int32
	usable     []int32
}

// sticky picks partitions for keyed messages. Until a topic's partitions are known (they are looked up in
// the background), and after a lookup failed until one succeeds, messages go to kafka.PartitionAny and
// librdkafka's partitioner, which always knows the client's current partition count: a count this type can
// no longer confirm is not used.
type sticky struct {
	lookup func(ctx context.Context, topic string) (topicView, error)
	bytes  int           // move on after this many bytes in one partition: a full batch
	window time.Duration // or after this long
	stall  time.Duration // skip a partition that left a message unreported this long (stallAfter)

	mu     sync.Mutex
	topics map[string]*stickyTopic
	closed bool // no lookup starts once close began
	ctx    context.Context
	stop   context.CancelFunc
	wg     sync.WaitGroup
}

type stickyTopic struct {
	view    topicView // zero: not known (yet, or since a failed lookup)
	next    int       // index in view.usable of the partition to move on to
	current int32
	until   time.Time
	bytes   int
	refresh chan struct{} // a lookup is asked for (capacity 1: asks coalesce)
	// waiting holds, per partition, when a message was sent there with no delivery report from it since.
	waiting map[int32]time.Time
}

func newSticky(lookup func(ctx context.Context, topic string) (topicView, error), batchBytes int) *sticky {
	ctx, stop := context.WithCancel(context.Background())
	return &sticky{lookup: lookup, bytes: batchBytes, window: stickyWindow, stall: stallAfter, topics: make(map[string]*stickyTopic), ctx: ctx, stop: stop}
}

// partition returns the partition for a message of size bytes to topic.
func (s *sticky) partition(topic string, size int) int32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return kafka.PartitionAny
	}
	t := s.topics[topic]
	if t == nil {
		t = &stickyTopic{refresh: make(chan struct{}, 1), waiting: make(map[int32]time.Time)}
		s.topics[topic] = t
		s.wg.Add(1)
		go s.watch(topic, t)
	}
	usable := t.view.usable
	if len(usable) == 0 {
		return kafka.PartitionAny
	}
	now := time.Now()
	if over := t.bytes >= s.bytes || now.After(t.until); over || s.stalled(t, t.current, now) {
		// A stalled partition is left at once for one that answers; when none does, the batch stays whole.
		if p, answers := s.next(t, now, over); answers || over {
			t.current = p
			t.until, t.bytes = now.Add(s.window), 0
		}
	}
	t.bytes += size
	if _, ok := t.waiting[t.current]; !ok {
		t.waiting[t.current] = now
	}
	return t.current
}

// next picks the next usable partition that is not stalled, in turn, and reports true. When every one is
// stalled it reports false, and picks the next in turn only if force is set (the messages wait wherever
// they go).
func (s *sticky) next(t *stickyTopic, now time.Time, force bool) (int32, bool) {
	usable := t.view.usable
	for i := range usable {
		p := usable[(t.next+i)%len(usable)]
		if !s.stalled(t, p, now) {
			t.next = (t.next + i + 1) % len(usable)
			return p, true
		}
		ask(t) // a partition stopped answering: perhaps it lost its leader
	}
	if !force {
		return t.current, false
	}
	p := usable[t.next%len(usable)]
	t.next = (t.next + 1) % len(usable)
	return p, false
}

// stalled reports whether partition p of t left a message unreported for longer than s.stall.
func (s *sticky) stalled(t *stickyTopic, p int32, now time.Time) bool {
	since, ok := t.waiting[p]
	return ok && now.Sub(since) > s.stall
}

// reported notes a delivery report (success or failure) from partition p of topic: it answers.
func (s *sticky) reported(topic string, p int32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[topic]; t != nil {
		delete(t.waiting, p)
	}
}

// refresh asks for a lookup of topic now (at most one per refreshGap): what the producer knows of its
// partitions may be stale.
func (s *sticky) refresh(topic string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[topic]; t != nil {
		ask(t)
	}
}

// refreshAll asks for a lookup of every topic, e.g. after a broker connection failed.
func (s *sticky) refreshAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range s.topics {
		ask(t)
	}
}

func ask(t *stickyTopic) {
	select {
	case t.refresh <- struct{}{}:
	default:
	}
}

// view returns what is known of topic's partitions.
func (s *sticky) view(topic string) topicView {
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.topics[topic]; t != nil {
		return t.view
	}
	return topicView{}
}

// set installs a lookup's result; a failed lookup (err != nil) makes the partitions unknown.
func (s *sticky) set(t *stickyTopic, v topicView, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		v = topicView{}
	}
	t.view = v
	if !slices.Contains(v.usable, t.current) {
		t.until = time.Time{} // move on at the next message
	}
}

// watch looks up topic's partitions now, again on request (refresh) and on a timer, until close.
func (s *sticky) watch(topic string, t *stickyTopic) {
	defer s.wg.Done()
	for {
		if s.ctx.Err() != nil {
			return // closing: the client may be gone
		}
		looked := time.Now()
		ctx, cancel := context.WithTimeout(s.ctx, partitionsTimeout)
		v, err := s.lookup(ctx, topic)
		cancel()
		if err == nil && v.partitions <= 0 {
			err = ErrTopicNotFound
		}
		s.set(t, v, err)
		next := partitionsRefresh
		switch {
		case err != nil:
			next = failedRefresh // the topic may be created shortly, or the brokers answer again
		case len(v.usable) < int(v.partitions):
			next = leaderlessRefresh
		}
		if !s.sleep(t, next, looked) {
			return
		}
	}
}

// sleep waits until d has passed, or until a lookup is asked for and refreshGap has passed since looked. It
// reports false when close began.
func (s *sticky) sleep(t *stickyTopic, d time.Duration, looked time.Time) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-s.ctx.Done():
		return false
	case <-timer.C:
		return true
	case <-t.refresh:
	}
	wait := refreshGap - time.Since(looked)
	if wait <= 0 {
		return true
	}
	timer.Reset(wait) // Go 1.23 timers: Reset drops a value the stopped timer might have had
	select {
	case <-s.ctx.Done():
		return false
	case <-timer.C:
		return true
	}
}

// close stops every lookup and waits for the ones under way; no lookup starts after it began, so the client
// can be closed once it returns.
func (s *sticky) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	s.stop()
	s.wg.Wait()
}

// viewOf reads a topic's view from its metadata: a partition is usable when its leader is one of the live
// brokers the metadata lists and the partition reports no error.
func viewOf(md *kafka.Metadata, tm kafka.TopicMetadata) topicView {
	live := make(map[int32]bool, len(md.Brokers))
	for _, b := range md.Brokers {
		live[b.ID] = true
	}
	v := topicView{partitions: int32(len(tm.Partitions))}
	all := make([]int32, 0, len(tm.Partitions))
	for _, p := range tm.Partitions {
		all = append(all, p.ID)
		if p.Leader >= 0 && live[p.Leader] && p.Error.Code() == kafka.ErrNoError {
			v.usable = append(v.usable, p.ID)
		}
	}
	slices.Sort(all)
	slices.Sort(v.usable)
	if len(v.usable) == 0 {
		v.usable = all
	}
	return v
}
