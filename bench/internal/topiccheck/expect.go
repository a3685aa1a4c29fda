// Package topiccheck reads a benchmark topic back and checks that it holds exactly the events the log source
// sent: every eventId once, and byte for byte the lines the generator made. It also reports the broker's
// append times (topics are created with LogAppendTime), which give each contender's end time and latency.
package topiccheck

import (
	"bytes"
	"encoding/json"
	"hash/maphash"
	"strconv"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// seed keys the content digests; both sides of a comparison are computed in this process.
var seed = maphash.MakeSeed()

// Expect describes the stream a log source sent: Count events from event.NewGenerator(Seed, FirstID, Start).
type Expect struct {
	Seed    int64
	FirstID uint32
	Start   time.Time
	Count   uint64
	// Quoted: each message holds one line written as a JSON string, quoted and escaped (what the
	// OpenTelemetry Collector's raw encoding makes of a text body). The check decodes it first, so it still
	// proves every line arrived once and byte for byte, under that quoting; a message that is not a JSON
	// string counts as an unknown event.
	Quoted bool
}

// Digest returns the order-independent digest of the expected lines (the sum of their hashes), which a topic
// holding exactly those lines, in any order and any grouping into messages, also sums to.
func (e Expect) Digest() uint64 {
	g := event.NewGenerator(e.Seed, e.FirstID, e.Start)
	var sum uint64
	buf := make([]byte, 0, 1024)
	for i := uint64(0); i < e.Count; i++ {
		buf = g.AppendAt(buf[:0], i)
		sum += maphash.Bytes(seed, buf)
	}
	return sum
}

// tally accumulates what the lines of a topic hold.
type tally struct {
	exp        Expect
	seen       []uint64 // bitmap of ids seen, indexed by id - FirstID
	events     uint64
	duplicates uint64
	unknown    uint64
	digest     uint64
	sendNanos  []int64 // by id - FirstID; 0 = not sampled
	latencies  []time.Duration
}

func newTally(exp Expect, sendNanos []int64) *tally {
	return &tally{exp: exp, seen: make([]uint64, (exp.Count+63)/64), sendNanos: sendNanos}
}

var idKey = []byte(`"eventId":`)

// eventID finds the eventId of a line; the generator writes it first, but any position is accepted.
func eventID(line []byte) (uint32, bool) {
	i := bytes.Index(line, idKey)
	if i < 0 {
		return 0, false
	}
	rest := line[i+len(idKey):]
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	id, err := strconv.ParseUint(string(rest[:j]), 10, 32)
	if err != nil {
		return 0, false
	}
	return uint32(id), true
}

// addMessage counts the newline-separated lines of one message appended at appended.
func (t *tally) addMessage(value []byte, appended time.Time) {
	if t.exp.Quoted {
		var line string
		if err := json.Unmarshal(value, &line); err != nil {
			t.events++ // an event whose line cannot be recovered: it adds nothing to the digest
			t.unknown++
			return
		}
		value = []byte(line)
	}
	for len(value) > 0 {
		line := value
		if i := bytes.IndexByte(value, '\n'); i >= 0 {
			line, value = value[:i], value[i+1:]
		} else {
			value = nil
		}
		if len(line) == 0 {
			continue
		}
		t.addLine(line, appended)
	}
}

func (t *tally) addLine(line []byte, appended time.Time) {
	t.events++
	t.digest += maphash.Bytes(seed, line)
	id, ok := eventID(line)
	if !ok || id < t.exp.FirstID || uint64(id-t.exp.FirstID) >= t.exp.Count {
		t.unknown++
		return
	}
	k := uint64(id - t.exp.FirstID)
	if t.seen[k/64]&(1<<(k%64)) != 0 {
		t.duplicates++
		return
	}
	t.seen[k/64] |= 1 << (k % 64)
	if k < uint64(len(t.sendNanos)) && t.sendNanos[k] != 0 && !appended.IsZero() {
		t.latencies = append(t.latencies, time.Duration(appended.UnixNano()-t.sendNanos[k]))
	}
}

func (t *tally) missing() uint64 {
	var have uint64
	for _, w := range t.seen {
		have += uint64(popcount(w))
	}
	return t.exp.Count - have
}

func popcount(x uint64) int {
	n := 0
	for x != 0 {
		x &= x - 1
		n++
	}
	return n
}
