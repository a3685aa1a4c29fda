package topiccheck

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

func lines(exp Expect) [][]byte {
	g := event.NewGenerator(exp.Seed, exp.FirstID, exp.Start)
	out := make([][]byte, exp.Count)
	for i := range out {
		out[i] = g.AppendAt(nil, uint64(i))
	}
	return out
}

func TestTally(t *testing.T) {
	exp := Expect{Seed: 3, FirstID: 1, Start: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Count: 100}
	want := exp.Digest()
	ls := lines(exp)
	at := time.Unix(100, 0)
	tests := []struct {
		name  string
		feed  func(t *tally)
		exact bool
		miss  uint64
		dup   uint64
		unk   uint64
	}{
		{"one per message", func(t *tally) {
			for _, l := range ls {
				t.addMessage(l, at)
			}
		}, true, 0, 0, 0},
		{"many per message, reversed", func(t *tally) {
			for i := len(ls); i > 0; i -= 10 {
				t.addMessage(bytes.Join(ls[i-10:i], []byte("\n")), at)
			}
		}, true, 0, 0, 0},
		{"one missing", func(t *tally) {
			for _, l := range ls[1:] {
				t.addMessage(l, at)
			}
		}, false, 1, 0, 0},
		{"one duplicated", func(t *tally) {
			for _, l := range ls {
				t.addMessage(l, at)
			}
			t.addMessage(ls[5], at)
		}, false, 0, 1, 0},
		{"one altered", func(t *tally) {
			for _, l := range ls[1:] {
				t.addMessage(l, at)
			}
			t.addMessage(bytes.Replace(ls[0], []byte(`"level":"`), []byte(`"level":"X`), 1), at)
		}, false, 0, 0, 0},
		{"a foreign line", func(t *tally) {
			for _, l := range ls {
				t.addMessage(l, at)
			}
			t.addMessage([]byte(`{"eventId":4000000,"x":1}`), at)
		}, false, 0, 0, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ty := newTally(exp, nil)
			tc.feed(ty)
			r := Result{Events: ty.events, Missing: ty.missing(), Duplicates: ty.duplicates, Unknown: ty.unknown,
				ContentMatch: ty.digest == want && ty.events == exp.Count}
			if r.Exact(exp) != tc.exact || r.Missing != tc.miss || r.Duplicates != tc.dup || r.Unknown != tc.unk {
				t.Fatalf("result %s, exact %t; want exact %t, missing %d, duplicated %d, unknown %d",
					r, r.Exact(exp), tc.exact, tc.miss, tc.dup, tc.unk)
			}
		})
	}
}

// The collector's raw encoding writes each line as a JSON string: decoded, it must be the line itself.
func TestTallyQuoted(t *testing.T) {
	exp := Expect{Seed: 3, FirstID: 1, Start: time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC), Count: 50, Quoted: true}
	want := exp.Digest()
	ls := lines(exp)
	quote := func(l []byte) []byte {
		b, err := json.Marshal(string(l))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	tests := []struct {
		name      string
		feed      func(t *tally)
		exact     bool
		unk, miss uint64
		contentOK bool
	}{
		{"every line quoted", func(ty *tally) {
			for _, l := range ls {
				ty.addMessage(quote(l), time.Time{})
			}
		}, true, 0, 0, true},
		{"one line sent unquoted", func(ty *tally) {
			for _, l := range ls[1:] {
				ty.addMessage(quote(l), time.Time{})
			}
			ty.addMessage(ls[0], time.Time{})
		}, false, 1, 1, false},
		{"one line altered inside its quotes", func(ty *tally) {
			for _, l := range ls[1:] {
				ty.addMessage(quote(l), time.Time{})
			}
			ty.addMessage(quote(bytes.Replace(ls[0], []byte(`"level":"`), []byte(`"level":"X`), 1)), time.Time{})
		}, false, 0, 0, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ty := newTally(exp, nil)
			tc.feed(ty)
			r := Result{Events: ty.events, Missing: ty.missing(), Duplicates: ty.duplicates, Unknown: ty.unknown,
				ContentMatch: ty.digest == want && ty.events == exp.Count}
			if r.Exact(exp) != tc.exact || r.Unknown != tc.unk || r.Missing != tc.miss || r.ContentMatch != tc.contentOK {
				t.Fatalf("result %s, exact %t; want exact %t, unknown %d, missing %d, content match %t",
					r, r.Exact(exp), tc.exact, tc.unk, tc.miss, tc.contentOK)
			}
		})
	}
}

func TestLatencyOfSampledEvents(t *testing.T) {
	exp := Expect{Seed: 3, FirstID: 10, Start: time.Unix(0, 0), Count: 4}
	ls := lines(exp)
	send := []int64{0, time.Unix(5, 0).UnixNano(), 0, 0}
	ty := newTally(exp, send)
	for _, l := range ls {
		ty.addMessage(l, time.Unix(5, int64(7*time.Millisecond)))
	}
	if len(ty.latencies) != 1 || ty.latencies[0] != 7*time.Millisecond {
		t.Fatalf("latencies = %v, want [7ms]", ty.latencies)
	}
	p50, p99, mx := Percentiles([]time.Duration{3, 1, 2, 100})
	if p50 != 3 || p99 != 100 || mx != 100 {
		t.Fatalf("Percentiles = %v %v %v, want 3 100 100", p50, p99, mx)
	}
}
