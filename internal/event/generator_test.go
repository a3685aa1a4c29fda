package event

import (
	"bytes"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

var genStart = time.Date(2026, 11, 25, 10, 11, 12, 0, time.UTC)

// wire is the JSON shape of an event as consumers decode it.
type wire struct {
	EventID   uint32 `json:"eventId"`
	Level     string `json:"level"`
	Source    string `json:"source"`
	Timestamp string `json:"timestamp"`
	Computer  string `json:"computer"`
	User      string `json:"user"`
	Message   string `json:"message"`
}

func TestGeneratorIsDeterministic(t *testing.T) {
	a, b := NewGenerator(42, 1, genStart), NewGenerator(42, 1, genStart)
	c := NewGenerator(43, 1, genStart)
	differs := 0
	for i := range 2000 {
		la, lb, lc := a.AppendNext(nil), b.AppendNext(nil), c.AppendNext(nil)
		if !bytes.Equal(la, lb) {
			t.Fatalf("event %d differs between two generators with the same seed:\n%s\n%s", i, la, lb)
		}
		if !bytes.Equal(la, lc) {
			differs++
		}
	}
	if differs < 1900 {
		t.Errorf("seeds 42 and 43 produced %d/2000 different events, want nearly all", differs)
	}
}

// Next, At, AppendNext and AppendAt describe the same stream.
func TestGeneratorPathsAgree(t *testing.T) {
	g := NewGenerator(5, 100, genStart)
	h := NewGenerator(5, 100, genStart)
	for i := range uint64(5000) {
		e := g.Next()
		fromEvent := e.AppendJSON(nil)
		fromAppend := h.AppendNext(nil)
		if !bytes.Equal(fromEvent, fromAppend) {
			t.Fatalf("event %d: Next().AppendJSON = %s\nAppendNext = %s", i, fromEvent, fromAppend)
		}
		if at := g.AppendAt(nil, i); !bytes.Equal(at, fromAppend) {
			t.Fatalf("event %d: AppendAt = %s, want %s", i, at, fromAppend)
		}
		if g.At(i) != e {
			t.Fatalf("At(%d) = %+v, want %+v", i, g.At(i), e)
		}
	}
}

func TestGeneratorStream(t *testing.T) {
	const n = 20000
	g := NewGenerator(1, 1000, genStart)
	v := NewValidator(Strict)
	var (
		total    int
		prev     time.Time
		levels   = map[string]int{}
		sources  = map[string]bool{}
		escaped  = map[string]bool{}
		nonASCII int
		micros   = map[int]bool{}
	)
	for i := range n {
		line := g.AppendAt(nil, uint64(i))
		total += len(line)
		if err := v.Validate(line); err != nil {
			t.Fatalf("event %d fails strict validation: %v\n%s", i, err, line)
		}
		var w wire
		if err := json.Unmarshal(line, &w); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if want := uint32(1000 + i); w.EventID != want {
			t.Fatalf("event %d has eventId %d, want %d", i, w.EventID, want)
		}
		ts, err := time.Parse(TimestampLayout, w.Timestamp)
		if err != nil {
			t.Fatalf("event %d timestamp %q: %v", i, w.Timestamp, err)
		}
		if i == 0 && (ts.Before(genStart) || ts.Sub(genStart) >= time.Millisecond) {
			t.Errorf("first timestamp %v, want within 1ms after %v", ts, genStart)
		}
		if i > 0 {
			if d := ts.Sub(prev); d <= 0 || d >= 2*time.Millisecond {
				t.Fatalf("event %d: timestamp step %v, want a small positive step", i, d)
			}
		}
		prev = ts
		micros[ts.Nanosecond()/1000%1000] = true
		levels[w.Level]++
		sources[w.Source] = true
		for _, c := range []string{`\"`, `\\`, `\n`, `\t`} {
			if bytes.Contains(line, []byte(c)) {
				escaped[c] = true
			}
		}
		if strings.ContainsFunc(w.Message+w.User, func(r rune) bool { return r > utf8.RuneSelf }) {
			nonASCII++
		}
	}
	if avg := total / n; avg < 270 || avg > 330 {
		t.Errorf("average line length %d bytes, want about 300", avg)
	}
	for _, l := range levelNames {
		if levels[l] == 0 {
			t.Errorf("level %q never generated", l)
		}
	}
	if levels["Info"] <= levels["Warning"] || levels["Warning"] <= levels["Error"] || levels["Error"] <= levels["Critical"] {
		t.Errorf("level mix %v: want Info most common, then Warning, then Error, Critical rare", levels)
	}
	if len(sources) < 15 {
		t.Errorf("only %d distinct sources", len(sources))
	}
	if len(escaped) != 4 {
		t.Errorf("escapes seen %v: want quotes, backslashes, newlines and tabs to occur", escaped)
	}
	if nonASCII == 0 {
		t.Error("no non-ASCII text generated")
	}
	if len(micros) < 900 {
		t.Errorf("only %d distinct sub-millisecond parts: timestamps should carry microseconds", len(micros))
	}
}

func TestGeneratorIDsWrap(t *testing.T) {
	g := NewGenerator(1, math.MaxUint32-1, genStart)
	for _, want := range []uint32{math.MaxUint32 - 1, math.MaxUint32, 0, 1} {
		if got := g.Next().EventID; got != want {
			t.Fatalf("eventId %d, want %d", got, want)
		}
	}
	if got := g.ID(3); got != 1 {
		t.Errorf("ID(3) = %d, want 1", got)
	}
}

func TestAppendJSONEscapingRoundTrips(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // what a JSON decoder reads back; empty means in itself
	}{
		{"plain", "hello world", ""},
		{"quotes", `say "hi"`, ""},
		{"backslashes", `C:\Windows\System32\`, ""},
		{"control characters", "a\nb\rc\td\be\ff\x00g\x01h\x1fi\x7fj", ""},
		{"unicode", "zoë 漢字 😀 µs →", ""},
		{"line separators", "a\u2028b\u2029c", ""},
		{"html stays literal", "<a href='x'>&amp;</a>", ""},
		{"invalid UTF-8 becomes U+FFFD", "bad\xffbyte\xc0\xafend\xed\xa0\x80", "bad\uFFFDbyte\uFFFD\uFFFDend\uFFFD\uFFFD\uFFFD"},
		{"cut sequence at end", "x\xe2\x82", "x\uFFFD\uFFFD"},
	}
	v := NewValidator(Strict)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := Event{EventID: 7, Level: "Info", Source: tc.in, Timestamp: genStart, Computer: tc.in, User: tc.in, Message: tc.in}
			out := e.AppendJSON([]byte("prefix"))
			if !bytes.HasPrefix(out, []byte("prefix{")) {
				t.Fatalf("AppendJSON did not append to dst: %q", out)
			}
			line := out[len("prefix"):]
			if err := v.Validate(line); err != nil {
				t.Fatalf("AppendJSON output fails strict validation: %v\n%s", err, line)
			}
			var w wire
			if err := json.Unmarshal(line, &w); err != nil {
				t.Fatalf("json.Unmarshal(%s): %v", line, err)
			}
			want := tc.want
			if want == "" {
				want = tc.in
			}
			for _, got := range []string{w.Source, w.Computer, w.User, w.Message} {
				if got != want {
					t.Errorf("round trip = %q, want %q (JSON %s)", got, want, line)
				}
			}
			if bytes.ContainsAny(line, "\n\r\x00") {
				t.Errorf("encoded line holds a raw newline or NUL: %q", line)
			}
		})
	}
}

func TestAppendJSONShape(t *testing.T) {
	e := Event{EventID: 4294967295, Level: "Warning", Source: "s", Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 6007000, time.FixedZone("X", 3600)),
		Computer: "c", User: "u", Message: "m"}
	want := `{"eventId":4294967295,"level":"Warning","source":"s","timestamp":"2026-01-02 02:04:05.006007","computer":"c","user":"u","message":"m"}`
	if got := string(e.AppendJSON(nil)); got != want {
		t.Errorf("AppendJSON = %s\nwant        %s", got, want)
	}
}

func TestAppendTimestampMatchesTimeFormat(t *testing.T) {
	g := draw{s: 99}
	lo, hi := time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMicro(), time.Date(9999, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()
	cases := []int64{0, -1, 1, lo, hi, time.Date(1900, 2, 28, 23, 59, 59, 999999000, time.UTC).UnixMicro(),
		time.Date(2000, 2, 29, 12, 0, 0, 0, time.UTC).UnixMicro(), time.Date(2299, 12, 31, 23, 59, 59, 999999000, time.UTC).UnixMicro()}
	for range 20000 {
		cases = append(cases, lo+int64(g.u64()%uint64(hi-lo)))
	}
	for _, us := range cases {
		tm := time.UnixMicro(us).UTC()
		want := tm.Format(TimestampLayout)
		if got := string(appendMicros(nil, us)); got != want {
			t.Fatalf("appendMicros(%d) = %s, want %s", us, got, want)
		}
		if got := string(appendTimestamp(nil, tm)); got != want {
			t.Fatalf("appendTimestamp(%v) = %s, want %s", tm, got, want)
		}
	}
	far := time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, want := string(appendTimestamp(nil, far)), far.Format(TimestampLayout); got != want {
		t.Errorf("appendTimestamp(year 12000) = %s, want %s", got, want)
	}
}

func TestAppendAtDoesNotAllocate(t *testing.T) {
	g := NewGenerator(3, 1, genStart)
	buf := make([]byte, 0, 4096)
	var i uint64
	allocs := testing.AllocsPerRun(5000, func() {
		buf = g.AppendAt(buf[:0], i)
		i++
	})
	if allocs != 0 {
		t.Errorf("AppendAt allocates %.2f times per event, want 0", allocs)
	}
}

// BenchmarkGeneratorAppend measures the log source's path: events appended as JSON into a reused buffer.
func BenchmarkGeneratorAppend(b *testing.B) {
	g := NewGenerator(1, 1, genStart)
	buf := make([]byte, 0, 64<<10)
	var n int
	b.ReportAllocs()
	for b.Loop() {
		if len(buf) > 60<<10 {
			buf = buf[:0]
		}
		before := len(buf)
		buf = g.AppendNext(buf)
		n += len(buf) - before
	}
	b.SetBytes(int64(n / b.N))
}

// BenchmarkGeneratorNext measures building Event values (one allocation: the message).
func BenchmarkGeneratorNext(b *testing.B) {
	g := NewGenerator(1, 1, genStart)
	b.ReportAllocs()
	for b.Loop() {
		_ = g.Next()
	}
}

// BenchmarkAppendJSON measures encoding an Event.
func BenchmarkAppendJSON(b *testing.B) {
	e := NewGenerator(1, 1, genStart).Next()
	buf := e.AppendJSON(nil)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		buf = e.AppendJSON(buf[:0])
	}
}

// TestAppendAtMicros: a wall-clock stamp changes the timestamp and nothing else.
func TestAppendAtMicros(t *testing.T) {
	g := NewGenerator(5, 100, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	at := time.Date(2026, 11, 29, 5, 6, 7, 891011000, time.UTC)
	for i := range uint64(50) {
		want := g.At(i)
		want.Timestamp = at
		got := g.AppendAtMicros(nil, i, at.UnixMicro())
		if exp := want.AppendJSON(nil); string(got) != string(exp) {
			t.Fatalf("AppendAtMicros(%d) = %s, want %s", i, got, exp)
		}
	}
}
