package harness

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// Tally is what a topic holds of a stream whose line i has eventId First+i, for i < N, counted eventId by
// eventId.
type Tally struct {
	Topic string
	First uint32
	N     uint64
	// Messages is how many Kafka records were read; Lines how many event lines they held.
	Messages, Lines uint64
	// Unique counts the stream's eventIds seen at least once; Duplicated the extra copies.
	Unique, Duplicated uint64
	// OutOfRange counts lines whose eventId is not in the stream; Invalid lines that fail strict validation
	// (a partial line forwarded as an event would be one).
	OutOfRange, Invalid uint64
	counts              []uint8
}

// Seen reports whether line i of the stream arrived.
func (t *Tally) Seen(i uint64) bool { return i < t.N && t.counts[i] > 0 }

// Lost counts the lines among the first upTo of the stream that never arrived.
func (t *Tally) Lost(upTo uint64) uint64 {
	var lost uint64
	for i := uint64(0); i < min(upTo, t.N); i++ {
		if t.counts[i] == 0 {
			lost++
		}
	}
	return lost
}

// Prefix is the length of the longest run of lines 0, 1, 2, ... that all arrived.
func (t *Tally) Prefix() uint64 {
	for i := uint64(0); i < t.N; i++ {
		if t.counts[i] == 0 {
			return i
		}
	}
	return t.N
}

// Missing returns up to k eventIds among the first upTo lines that never arrived, for failure messages.
func (t *Tally) Missing(upTo uint64, k int) []uint32 {
	var out []uint32
	for i := uint64(0); i < min(upTo, t.N) && len(out) < k; i++ {
		if t.counts[i] == 0 {
			out = append(out, t.First+uint32(i))
		}
	}
	return out
}

// String summarises the tally.
func (t *Tally) String() string {
	return fmt.Sprintf("topic %s: %d messages, %d lines, %d unique of %d, %d duplicated, %d out of range, %d invalid",
		t.Topic, t.Messages, t.Lines, t.Unique, t.N, t.Duplicated, t.OutOfRange, t.Invalid)
}

// ReadEvents reads topic from the beginning up to its high watermarks (so call it once the producer has
// finished) and counts every eventId of the stream First..First+n-1.
func ReadEvents(tb testing.TB, bootstrap, topic string, first uint32, n uint64) *Tally {
	tb.Helper()
	t := &Tally{Topic: topic, First: first, N: n, counts: make([]uint8, n)}
	v := event.NewValidator(event.Strict)
	kafkatest.ReadToEnd(tb, bootstrap, topic, func(m kafkatest.Record) {
		t.Messages++
		for line := range bytes.SplitSeq(m.Value, []byte{'\n'}) {
			t.Lines++
			if v.Validate(line) != nil {
				t.Invalid++
				continue
			}
			id, ok := eventID(line)
			if !ok || id < first || uint64(id-first) >= n {
				t.OutOfRange++
				continue
			}
			i := uint64(id - first)
			switch t.counts[i] {
			case 0:
				t.Unique++
			default:
				t.Duplicated++
			}
			if t.counts[i] < 255 {
				t.counts[i]++
			}
		}
	})
	return t
}

// eventID reads the eventId of a valid line.
func eventID(line []byte) (uint32, bool) {
	const key = `"eventId":`
	i := bytes.Index(line, []byte(key))
	if i < 0 {
		return 0, false
	}
	rest := bytes.TrimLeft(line[i+len(key):], " \t")
	j := 0
	for j < len(rest) && rest[j] >= '0' && rest[j] <= '9' {
		j++
	}
	id, err := strconv.ParseUint(string(rest[:j]), 10, 32)
	return uint32(id), err == nil
}

// DeadLetter is one record of a dead-letter topic.
type DeadLetter struct {
	Reason, Detail, Source string
	Value                  []byte
}

// ReadDeadLetters reads every record of a dead-letter topic up to its high watermarks.
func ReadDeadLetters(tb testing.TB, bootstrap, topic string) []DeadLetter {
	tb.Helper()
	var out []DeadLetter
	kafkatest.ReadToEnd(tb, bootstrap, topic, func(m kafkatest.Record) {
		out = append(out, DeadLetter{Value: append([]byte(nil), m.Value...),
			Reason: m.Headers["reason"], Detail: m.Headers["detail"], Source: m.Headers["source"]})
	})
	return out
}

// ReasonCounts counts dead letters by reason.
func ReasonCounts(dls []DeadLetter) map[string]int {
	out := make(map[string]int)
	for _, d := range dls {
		out[d.Reason]++
	}
	return out
}
