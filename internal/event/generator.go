package event

import (
	"strconv"
	"time"
)

// meanStepMicros is the average gap between consecutive generated timestamps: one event per millisecond of
// event time, each gap drawn from 1..1999 µs.
const meanStepMicros = 1000

// Generator produces a deterministic stream of realistic events: for one seed, firstID and start, event i
// (counting from 0) is always the same. Event i has eventId firstID+i (wrapping after 4294967295), a level
// drawn with Info most common, then Warning, Error, Debug and Critical, a source that fits its message, a
// computer and a user from fixed pools, and a timestamp start + i ms + a jitter below 1 ms, so timestamps
// strictly increase in small steps with microsecond digits. Lines average about 300 bytes of JSON, and some
// messages carry quotes, backslashes, newlines and non-ASCII text so that consumers exercise escaping.
//
// Next and AppendNext advance a cursor and are for one goroutine; At and AppendAt only read the Generator and
// are safe for concurrent use, which lets several connections of a log source share one sequence.
type Generator struct {
	seed    uint64
	firstID uint32
	startUS int64
	next    uint64
}

// NewGenerator returns a Generator whose first event has eventId firstID and timestamp start (truncated to
// the microsecond, at most 1 ms later).
func NewGenerator(seed int64, firstID uint32, start time.Time) *Generator {
	return &Generator{seed: uint64(seed), firstID: firstID, startUS: start.UnixMicro()}
}

// Next returns the next event. Building its Message costs one allocation; AppendNext costs none.
func (g *Generator) Next() Event {
	e := g.At(g.next)
	g.next++
	return e
}

// AppendNext appends the next event as JSON (exactly what Next().AppendJSON would append) and advances.
func (g *Generator) AppendNext(dst []byte) []byte {
	dst = g.AppendAt(dst, g.next)
	g.next++
	return dst
}

// ID returns the eventId of event i.
func (g *Generator) ID(i uint64) uint32 { return g.firstID + uint32(i) }

// At returns event i of the stream.
func (g *Generator) At(i uint64) Event {
	p := g.plan(i)
	var buf [512]byte
	w := msgWriter{b: buf[:0]}
	renderMessage(&w, &p.d, p.tmpl)
	return Event{
		EventID:   p.id,
		Level:     levelNames[p.level],
		Source:    templateSources[p.tmpl][p.source],
		Timestamp: time.UnixMicro(p.ts).UTC(),
		Computer:  computers[p.computer],
		User:      users[p.user],
		Message:   string(w.b),
	}
}

// AppendAt appends event i as JSON without a newline, byte for byte what At(i).AppendJSON would append, but
// without building the Event: no allocation beyond growing dst.
func (g *Generator) AppendAt(dst []byte, i uint64) []byte {
	return appendPlan(dst, g.plan(i))
}

// AppendAtMicros appends event i as AppendAt does, but stamped tsMicros (Unix microseconds) instead of its
// place on the synthetic time line: what a source that stamps events with the wall clock at send time
// writes. Everything else about the event is the same as AppendAt's.
func (g *Generator) AppendAtMicros(dst []byte, i uint64, tsMicros int64) []byte {
	p := g.plan(i)
	p.ts = tsMicros
	return appendPlan(dst, p)
}

func appendPlan(dst []byte, p plan) []byte {
	dst = append(dst, `{"eventId":`...)
	dst = strconv.AppendUint(dst, uint64(p.id), 10)
	// The pools are escaped once (see escapedPools), not per event.
	dst = append(dst, `,"level":"`...)
	dst = append(dst, levelNames[p.level]...)
	dst = append(dst, `","source":"`...)
	dst = append(dst, escapedSources[p.tmpl][p.source]...)
	dst = append(dst, `","timestamp":"`...)
	dst = appendMicros(dst, p.ts)
	dst = append(dst, `","computer":"`...)
	dst = append(dst, escapedComputers[p.computer]...)
	dst = append(dst, `","user":"`...)
	dst = append(dst, escapedUsers[p.user]...)
	dst = append(dst, `","message":"`...)
	// Render the message as is, then escape it in one pass only if it needs it (most messages do not).
	mark := len(dst)
	w := msgWriter{b: dst}
	renderMessage(&w, &p.d, p.tmpl)
	dst = w.b
	if needsEscape(dst[mark:]) {
		var tmp [1024]byte
		raw := append(tmp[:0], dst[mark:]...)
		dst = appendEscaped(dst[:mark], raw)
	}
	return append(dst, `"}`...)
}

// plan is everything about one event but its rendered message; d is positioned to draw the message's
// parameters.
type plan struct {
	id       uint32
	level    int
	tmpl     int
	source   int // index in templateSources[tmpl]
	computer int // index in computers
	user     int // index in users
	ts       int64
	d        draw
}

func (g *Generator) plan(i uint64) plan {
	d := draw{s: mix64(g.seed ^ mix64(i+0x632BE59BD9B4E019))}
	p := plan{id: g.firstID + uint32(i)}
	p.ts = g.startUS + int64(i)*meanStepMicros + int64(mix64(g.seed+i*0x9E3779B97F4A7C15+1)%meanStepMicros)
	p.level = pickLevel(d.n(1000))
	choices := levelTemplates[p.level]
	p.tmpl = choices[d.n(len(choices))]
	p.source = d.n(len(templateSources[p.tmpl]))
	p.computer = d.n(len(computers))
	p.user = d.n(len(users))
	p.d = d
	return p
}

// draw is a splitmix64 stream: tiny, fast, and good enough for synthetic logs.
type draw struct{ s uint64 }

func (d *draw) u64() uint64 {
	d.s += 0x9E3779B97F4A7C15
	return mix64(d.s)
}

// n returns a number in [0, k).
func (d *draw) n(k int) int { return int(d.u64() % uint64(k)) }

// between returns a number in [lo, hi].
func (d *draw) between(lo, hi int) uint64 { return uint64(lo + d.n(hi-lo+1)) }

func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
	z = (z ^ z>>27) * 0x94D049BB133111EB
	return z ^ z>>31
}

// Levels, with their share of events in thousandths.
const (
	levelInfo = iota
	levelWarning
	levelError
	levelDebug
	levelCritical
	levelCount
)

var levelNames = [levelCount]string{"Info", "Warning", "Error", "Debug", "Critical"}

func pickLevel(permille int) int {
	switch {
	case permille < 620:
		return levelInfo
	case permille < 800:
		return levelWarning
	case permille < 900:
		return levelError
	case permille < 975:
		return levelDebug
	}
	return levelCritical
}

// msgWriter appends raw message text.
type msgWriter struct {
	b []byte
}

func (w *msgWriter) s(x string) { w.b = append(w.b, x...) }

func (w *msgWriter) u(x uint64) { w.b = strconv.AppendUint(w.b, x, 10) }

func (w *msgWriter) hex(x uint64, digits int) {
	for i := digits - 1; i >= 0; i-- {
		w.b = append(w.b, hexDigits[x>>(4*uint(i))&0xF])
	}
}

func (w *msgWriter) pick(d *draw, xs []string) { w.s(xs[d.n(len(xs))]) }

func (w *msgWriter) ip(d *draw) {
	switch d.n(3) {
	case 0:
		w.s("10.")
		w.u(d.between(0, 40))
		w.s(".")
		w.u(d.between(0, 255))
	case 1:
		w.s("192.168.")
		w.u(d.between(0, 20))
	default:
		w.s("172.16.")
		w.u(d.between(0, 31))
	}
	w.s(".")
	w.u(d.between(1, 254))
}

func (w *msgWriter) ms(d *draw, lo, hi int) { w.u(d.between(lo, hi)) }
