package pipeline

import (
	"sync"
	"sync/atomic"
)

// Counts is the reader's ledger. Every line framed from TCP is received once and then ends up in exactly one
// of delivered, dead-lettered or failed; until then it is in flight. So at every moment
// received = delivered + dead_lettered + failed + in_flight, and after a drain in_flight is 0.
//
// The counts are kept here only: the Prometheus series are read from them (see newMetrics), so the
// summary and /metrics cannot disagree. Counts is safe for concurrent use.
type Counts struct {
	received     atomic.Uint64
	delivered    atomic.Uint64
	deadLettered atomic.Uint64
	failed       atomic.Uint64
	// owed counts the lines abandon counted failed while they were still in flight. The Kafka client's close
	// may go on past the deadline and report on them after all; such a late line turns from failed into
	// what it became (see settle), so no line is counted twice.
	owed atomic.Uint64

	reasons tally // lines sent to the dead-letter path, by reason
	// deliveryErrors counts the lines Kafka gave up on (their delivery reports' errors), by error: the
	// watcher logs them as episodes, not line by line.
	deliveryErrors tally
}

// addDelivered, addDeadLettered and addFailed settle n lines in the ledger.
func (c *Counts) addDelivered(n uint64)    { c.settle(&c.delivered, n) }
func (c *Counts) addDeadLettered(n uint64) { c.settle(&c.deadLettered, n) }
func (c *Counts) addFailed(n uint64)       { c.settle(&c.failed, n) }

// settle adds n to the counter to, first paying back lines abandon already counted as failed.
func (c *Counts) settle(to *atomic.Uint64, n uint64) {
	for {
		owed := c.owed.Load()
		k := min(owed, n)
		if k == 0 {
			to.Add(n)
			return
		}
		if !c.owed.CompareAndSwap(owed, owed-k) {
			continue
		}
		if to == &c.failed {
			to.Add(n - k) // k of them are counted failed already
			return
		}
		to.Add(n)
		c.failed.Add(^(k - 1)) // subtracts k
		return
	}
}

// deadLetterAttempt counts a line sent to the dead-letter path for reason (whether or not it gets there).
func (c *Counts) deadLetterAttempt(reason string) { c.reasons.add(reason) }

// abandon counts every line still in flight as failed and returns how many: for a shutdown whose deadline
// passed before the Kafka client reported on them.
func (c *Counts) abandon() uint64 {
	n := c.Snapshot().InFlight
	c.owed.Add(n)
	c.failed.Add(n)
	return n
}

// deliveryFailed counts n lines whose delivery report carried err.
func (c *Counts) deliveryFailed(err error, n uint64) { c.deliveryErrors.addN(err.Error(), n) }

// DeliveryErrors returns a copy of the counts of lines Kafka gave up on, by error.
func (c *Counts) DeliveryErrors() map[string]uint64 { return c.deliveryErrors.snapshot() }

// Reasons returns a copy of the dead-letter counts by reason.
func (c *Counts) Reasons() map[string]uint64 { return c.reasons.snapshot() }

// tally counts by key. It is safe for concurrent use; the zero value is ready.
type tally struct {
	mu     sync.Mutex
	counts map[string]uint64
}

func (t *tally) add(key string) { t.addN(key, 1) }

func (t *tally) addN(key string, n uint64) {
	t.mu.Lock()
	if t.counts == nil {
		t.counts = make(map[string]uint64)
	}
	t.counts[key] += n
	t.mu.Unlock()
}

// snapshot returns a copy of the counts.
func (t *tally) snapshot() map[string]uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]uint64, len(t.counts))
	for k, v := range t.counts {
		out[k] = v
	}
	return out
}

// Summary is a consistent-enough snapshot of Counts, printed as JSON when a run ends.
type Summary struct {
	Received     uint64  `json:"received"`
	Delivered    uint64  `json:"delivered"`
	DeadLettered uint64  `json:"dead_lettered"`
	Failed       uint64  `json:"failed"`
	InFlight     uint64  `json:"in_flight"`
	Duration     float64 `json:"duration_seconds"`
	EventsPerSec float64 `json:"events_per_second"`
	// DeadLetterReasons counts dead-lettered lines by reason.
	DeadLetterReasons map[string]uint64 `json:"dead_letter_reasons,omitempty"`
	// Error is set when the run ended in error.
	Error string `json:"error,omitempty"`
}

// Snapshot reads the counters. The settled counters are read before received, so in_flight never goes
// negative while lines are moving.
func (c *Counts) Snapshot() Summary {
	d := c.delivered.Load()
	dl := c.deadLettered.Load()
	f := c.failed.Load()
	r := c.received.Load()
	s := Summary{Received: r, Delivered: d, DeadLettered: dl, Failed: f}
	if settled := d + dl + f; r > settled {
		s.InFlight = r - settled
	}
	return s
}

// Balanced reports whether every received line is settled.
func (s Summary) Balanced() bool {
	return s.InFlight == 0 && s.Received == s.Delivered+s.DeadLettered+s.Failed
}
