package tcpin

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// got is one thing a reader handed to its Handler.
type got struct {
	line   string
	reason event.Reason // empty for a good line
}

// recorder is a Handler that remembers everything, in order, safe for concurrent use.
type recorder struct {
	mu    sync.Mutex
	items []got
	cond  *sync.Cond
}

func newRecorder() *recorder {
	r := &recorder{}
	r.cond = sync.NewCond(&r.mu)
	return r
}

func (r *recorder) HandleLines(_ context.Context, _ Source, lines [][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, l := range lines {
		r.items = append(r.items, got{line: string(l)})
	}
	r.cond.Broadcast()
}

func (r *recorder) HandleReject(_ context.Context, _ Source, sample []byte, reason event.Reason, _ string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.items = append(r.items, got{line: string(sample), reason: reason})
	r.cond.Broadcast()
}

func (r *recorder) snapshot() []got {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]got(nil), r.items...)
}

// waitFor waits until at least n items arrived or the deadline passes.
func (r *recorder) waitFor(tb testing.TB, n int, d time.Duration) []got {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		items := r.snapshot()
		if len(items) >= n {
			return items
		}
		if time.Now().After(deadline) {
			tb.Fatalf("got %d items after %v, want %d: %q", len(items), d, n, items)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reference frames input the way the readers must: split on "\n", strip one trailing "\r", reject lines over
// maxLine as oversized and a final line without newline as truncated (or oversized when already too long).
func reference(input []byte, maxLine int) []got {
	var out []got
	parts := bytes.Split(input, []byte("\n"))
	for i, p := range parts {
		last := i == len(parts)-1
		if last {
			if len(p) == 0 {
				break
			}
			if len(p) > maxLine+1 || (len(p) == maxLine+1 && p[len(p)-1] != '\r') {
				out = append(out, got{reason: event.ReasonOversized})
			} else {
				out = append(out, got{line: string(sample(p)), reason: event.ReasonTruncated})
			}
			break
		}
		p = trimCR(p)
		if len(p) > maxLine {
			out = append(out, got{reason: event.ReasonOversized})
			continue
		}
		out = append(out, got{line: string(p)})
	}
	return out
}

// normalize drops oversized samples, which depend on where a read boundary fell.
func normalize(items []got) []got {
	out := make([]got, len(items))
	for i, it := range items {
		if it.reason == event.ReasonOversized {
			it.line = ""
		}
		out[i] = it
	}
	return out
}

func frameAll(input []byte, maxLine int, r io.Reader) []got {
	items, _ := frameAllSized(maxLine, r)
	return items
}

// frameAllSized frames what r yields with a framer that starts at its smallest buffer, and also returns the
// largest the buffer grew to. It panics if the buffer outgrows its limit.
func frameAllSized(maxLine int, r io.Reader) (items []got, peak int) {
	rec := newRecorder()
	f := newFramer(0, maxLine)
	ctx := context.Background()
	for {
		n, err := f.fill(r)
		if peak = max(peak, len(f.buf)); peak > f.limit {
			panic(fmt.Sprintf("framer buffer grew to %d bytes, over its limit of %d", peak, f.limit))
		}
		if n > 0 {
			f.split(ctx, rec, Source{})
		}
		if err != nil {
			f.finish(ctx, rec, Source{}, "source disconnected")
			return rec.snapshot(), peak
		}
	}
}

func TestFramer(t *testing.T) {
	const max = 8
	tests := []struct {
		name  string
		input string
		want  []got
	}{
		{"one line", "abc\n", []got{{line: "abc"}}},
		{"crlf", "abc\r\ndef\n", []got{{line: "abc"}, {line: "def"}}},
		{"lone cr kept inside", "a\rb\n", []got{{line: "a\rb"}}},
		{"empty lines are handed on", "\n\r\n", []got{{line: ""}, {line: ""}}},
		{"exactly at the limit", "12345678\n", []got{{line: "12345678"}}},
		{"at the limit with crlf", "12345678\r\n", []got{{line: "12345678"}}},
		{"one byte over", "123456789\nok\n", []got{{reason: event.ReasonOversized}, {line: "ok"}}},
		{"cut by disconnect", "good\npart", []got{{line: "good"}, {line: "part", reason: event.ReasonTruncated}}},
		{"oversized cut by disconnect", "ok\n" + strings.Repeat("x", 40), []got{{line: "ok"}, {reason: event.ReasonOversized}}},
		{"long oversized then good", strings.Repeat("y", 100) + "\nafter\n", []got{{reason: event.ReasonOversized}, {line: "after"}}},
		{"nul bytes pass framing", "a\x00b\n", []got{{line: "a\x00b"}}},
	}
	readers := map[string]func(string) io.Reader{
		"whole":    func(s string) io.Reader { return strings.NewReader(s) },
		"one byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
		"half":     func(s string) io.Reader { return iotest.HalfReader(strings.NewReader(s)) },
	}
	for _, tt := range tests {
		for rname, mk := range readers {
			t.Run(tt.name+"/"+rname, func(t *testing.T) {
				gotItems := normalize(frameAll([]byte(tt.input), max, mk(tt.input)))
				if fmt.Sprint(gotItems) != fmt.Sprint(tt.want) {
					t.Errorf("frame(%q) = %q, want %q", tt.input, gotItems, tt.want)
				}
				if ref := normalize(reference([]byte(tt.input), max)); fmt.Sprint(ref) != fmt.Sprint(tt.want) {
					t.Errorf("reference(%q) = %q, want %q", tt.input, ref, tt.want)
				}
			})
		}
	}
}

func TestFramerOversizedSampleIsBounded(t *testing.T) {
	const max = 1 << 20
	input := append(bytes.Repeat([]byte("z"), 3*max), '\n')
	items := frameAll(input, max, bytes.NewReader(input))
	if len(items) != 1 || items[0].reason != event.ReasonOversized {
		t.Fatalf("got %d items, want one oversized reject", len(items))
	}
	if len(items[0].line) == 0 || len(items[0].line) > SampleBytes {
		t.Errorf("sample of %d bytes, want 1..%d", len(items[0].line), SampleBytes)
	}
}

func TestFramerBufferStaysBounded(t *testing.T) {
	const max = 64 << 10
	f := newFramer(0, max)
	rec := newRecorder()
	line := append(bytes.Repeat([]byte("q"), max), '\n')
	r := bytes.NewReader(bytes.Repeat(line, 20))
	for {
		n, err := f.fill(r)
		if n > 0 {
			f.split(context.Background(), rec, Source{})
		}
		if len(f.buf) > f.limit {
			t.Fatalf("buffer grew to %d, limit %d", len(f.buf), f.limit)
		}
		if err != nil {
			break
		}
	}
	if n := len(rec.snapshot()); n != 20 {
		t.Errorf("got %d lines, want 20", n)
	}
}

// framerInput is one input of the framing fuzz targets: a template whose bytes other than '\n' and '\r' are
// each repeated stretch+1 times (so a short template makes lines of tens or hundreds of KiB, over the
// framer's initial buffer and the basic reader's bufio buffer), a line limit and a read size.
type framerInput struct {
	template []byte
	maxLine  uint32
	chunk    uint16
	stretch  uint16
}

// maxFramerStream bounds a stretched input, to keep each fuzz run fast.
const maxFramerStream = 1 << 20

// stream returns the bytes a source sends, the line limit (1 byte to 256 KiB) and the most bytes per read.
func (in framerInput) stream() (data []byte, maxLine, step int) {
	times := int(in.stretch) + 1
	for _, b := range in.template {
		n := times
		if b == '\n' || b == '\r' {
			n = 1
		}
		n = min(n, maxFramerStream-len(data))
		if n <= 0 {
			break
		}
		data = append(data, bytes.Repeat([]byte{b}, n)...)
	}
	return data, int(in.maxLine%(256<<10)) + 1, int(in.chunk) + 1
}

// framerSeeds seed both framing fuzz targets (FuzzFramer, FuzzTCPLogReader): short lines with small limits
// and reads, and lines long enough to grow the buffers, at and around the limit, with CRLF split across
// reads and cut by the disconnect. TestFramerSeedsGrowTheBuffer checks that the long ones do grow it.
var framerSeeds = []framerInput{
	{[]byte(""), 7, 2, 0},
	{[]byte("\n"), 7, 2, 0},
	{[]byte("a\n"), 7, 2, 0},
	{[]byte("a\r\n"), 7, 2, 0},
	{[]byte("abc"), 7, 2, 0},
	{[]byte("0123456789abcdef\nshort\n"), 7, 2, 0},
	{[]byte("\r\r\n\n"), 7, 2, 0},
	{[]byte("x\ny\nz"), 7, 2, 0},
	{[]byte(`{"eventId":1,"level":"Info"}` + "\n" + `{"eventId":2}` + "\r\n"), 7, 2, 0},
	// 40 KiB lines (over the initial 32 KiB buffer) with a 64 KiB limit, read 16 KiB at a time.
	{[]byte("ab\ncd\r\nx"), 64<<10 - 1, 16<<10 - 1, 20<<10 - 1},
	// A 96 KiB line exactly at the limit, CRLF, then a short one, in 64 KiB reads (over bufio's buffer).
	{[]byte("abc\r\nz\n"), 96<<10 - 1, 64<<10 - 1, 32<<10 - 1},
	// A line at the limit, then limit+1 bytes ending in CR, cut by the disconnect.
	{[]byte("pq\nrs\r"), 8<<10 - 1, 4<<10 - 1, 4<<10 - 1},
	// Lines one byte over the limit and far over it, then a good one, in 1000-byte reads.
	{[]byte("mn\nopq\nr\n"), 24<<10 - 2, 999, 12<<10 - 1},
	// A 200 KiB partial line under the limit, cut by the disconnect, in odd-sized reads.
	{[]byte("hello"), 256<<10 - 1, 7777, 40<<10 - 1},
}

// TestFramerSeedsGrowTheBuffer: the fuzz seeds include inputs whose lines make the framer grow its buffer,
// so fuzzing starts from the growth path and not only from lines that fit the initial buffer.
func TestFramerSeedsGrowTheBuffer(t *testing.T) {
	var grew int
	for _, in := range framerSeeds {
		data, maxLine, step := in.stream()
		if _, peak := frameAllSized(maxLine, &chunkReader{b: data, step: step}); peak > 2*minRead {
			grew++
		}
	}
	if grew < 4 {
		t.Errorf("%d of %d seeds grow the framer's buffer, want at least 4", grew, len(framerSeeds))
	}
}

// FuzzFramer checks the in-place framer (HighPerfTCPReader's) against the reference framing, for any input,
// line limit and read size, including lines that grow its buffer.
func FuzzFramer(f *testing.F) {
	for _, in := range framerSeeds {
		f.Add(in.template, in.maxLine, in.chunk, in.stretch)
	}
	f.Fuzz(func(t *testing.T, template []byte, maxLine uint32, chunk, stretch uint16) {
		input, max, step := framerInput{template, maxLine, chunk, stretch}.stream()
		items, _ := frameAllSized(max, &chunkReader{b: input, step: step})
		got, want := normalize(items), normalize(reference(input, max))
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("frame(%q, max=%d, step=%d) = %.300q, want %.300q", shorten(input), max, step, got, want)
		}
	})
}

// shorten abbreviates a long input for a failure message.
func shorten(b []byte) string {
	if len(b) <= 200 {
		return string(b)
	}
	return fmt.Sprintf("%s...(%d bytes)...%s", b[:100], len(b)-200, b[len(b)-100:])
}

// chunkReader returns at most step bytes per Read.
type chunkReader struct {
	b    []byte
	step int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// countingHandler counts lines without keeping them, for benchmarks.
type countingHandler struct{ lines, rejects int }

func (c *countingHandler) HandleLines(_ context.Context, _ Source, lines [][]byte) {
	c.lines += len(lines)
}
func (c *countingHandler) HandleReject(context.Context, Source, []byte, event.Reason, string) {
	c.rejects++
}

func BenchmarkSplit(b *testing.B) {
	line := []byte(`{"eventId":123456,"level":"Info","source":"auth-service","timestamp":"2026-11-25 10:11:12.123456","computer":"web-07.prod.internal","user":"alice","message":"User login succeeded from 10.1.2.3 via SSO; session established with MFA and a 30 minute idle timeout for the web console"}` + "\n")
	data := bytes.Repeat(line, 4096)
	h := &countingHandler{}
	f := newFramer(DefaultReadBufferBytes, DefaultMaxLineBytes)
	r := bytes.NewReader(data)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		r.Reset(data)
		for {
			n, err := f.fill(r)
			if n > 0 {
				f.split(ctx, h, Source{})
			}
			if err != nil {
				break
			}
		}
	}
	b.ReportMetric(float64(len(line)), "bytes/line")
}

// readers builds each implementation for the socket tests.
var readers = map[string]func(Config, net.Listener, Handler) (Reader, error){
	"HighPerfTCPReader": func(c Config, ln net.Listener, h Handler) (Reader, error) {
		return NewHighPerfTCPReader(c, ln, h)
	},
	"TCPLogReader": func(c Config, ln net.Listener, h Handler) (Reader, error) { return NewTCPLogReader(c, ln, h) },
}

func listen(tb testing.TB) net.Listener {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	return ln
}

func startReader(tb testing.TB, mk func(Config, net.Listener, Handler) (Reader, error), cfg Config, ln net.Listener, h Handler) (stop func()) {
	tb.Helper()
	r, err := mk(cfg, ln, h)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	return func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				tb.Errorf("Run returned %v", err)
			}
		case <-time.After(10 * time.Second):
			tb.Fatal("reader did not stop within 10s")
		}
	}
}

func TestListenModeFramesAcrossConnections(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, MaxLineBytes: 16}, ln, rec)
			defer stop()
			for i := 0; i < 3; i++ {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "conn%d-a\r\nconn%d-b\n", i, i)
				if i == 2 {
					c.Write([]byte("cut-off"))
				}
				c.Close()
			}
			items := rec.waitFor(t, 7, 5*time.Second)
			var good, truncated int
			for _, it := range items {
				switch it.reason {
				case "":
					good++
				case event.ReasonTruncated:
					truncated++
					if it.line != "cut-off" {
						t.Errorf("truncated sample = %q, want %q", it.line, "cut-off")
					}
				}
			}
			if good != 6 || truncated != 1 {
				t.Errorf("good=%d truncated=%d, want 6 and 1: %q", good, truncated, items)
			}
		})
	}
}

func TestConnectModeReconnects(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			addr := ln.Addr().String()
			ln.Close() // the source is down when the reader starts: it must retry
			stop := startReader(t, mk, Config{Mode: Connect, Addr: addr, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}, nil, rec)
			defer stop()
			time.Sleep(60 * time.Millisecond)
			ln2, err := net.Listen("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer ln2.Close()
			for i := 0; i < 2; i++ { // serve two connections in turn: the reader comes back after the first ends
				c, err := ln2.Accept()
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "session%d\n", i)
				c.Close()
			}
			items := rec.waitFor(t, 2, 5*time.Second)
			if items[0].line != "session0" || items[1].line != "session1" {
				t.Errorf("got %q, want session0 then session1", items)
			}
		})
	}
}

func TestListenModeRefusesOverMaxConns(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			obs := &countingObserver{}
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, MaxConns: 2, Observer: obs}, ln, rec)
			defer stop()
			var conns []net.Conn
			for i := 0; i < 2; i++ {
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprintf(c, "held%d\n", i)
				conns = append(conns, c)
			}
			rec.waitFor(t, 2, 5*time.Second)
			extra, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			extra.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := extra.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("third connection read = %v, want EOF (closed by the reader)", err)
			}
			if obs.refused() != 1 {
				t.Errorf("refused = %d, want 1", obs.refused())
			}
			for _, c := range conns {
				c.Close()
			}
		})
	}
}

// TestListenModeIdleTimeout: a connection that sends half a line and then nothing is closed after the idle
// timeout, and the half line is dead-lettered as truncated.
func TestListenModeIdleTimeout(t *testing.T) {
	// Long enough that the reader surely reads the half line before it times out, even on a busy machine:
	// the test proves that it did before it waits for the close.
	const idle = 500 * time.Millisecond
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, IdleTimeout: idle}, ln, rec)
			defer stop()
			start := time.Now()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.Write([]byte("half a li"))
			waitPeerRead(t, c, idle)
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Errorf("idle connection read = %v, want EOF (closed by the reader)", err)
			}
			if took := time.Since(start); took < idle {
				t.Errorf("the connection was closed %v after it opened, before the %v idle timeout", took, idle)
			}
			items := rec.waitFor(t, 1, 5*time.Second)
			if items[0].reason != event.ReasonTruncated || items[0].line != "half a li" {
				t.Errorf("got %q, want the partial line rejected as truncated", items)
			}
		})
	}
}

func TestStopDrainsEveryCompleteLine(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen}, ln, rec)
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var buf bytes.Buffer
			for i := 0; i < 1000; i++ {
				fmt.Fprintf(&buf, "line-%d\n", i)
			}
			c.Write(buf.Bytes())
			rec.waitFor(t, 1000, 5*time.Second)
			c.Write([]byte("partial"))
			// Once stopped the reader reads no more from the socket: "partial" must be out of the kernel first.
			waitPeerRead(t, c, 10*time.Second)
			stop()
			items := rec.snapshot()
			if len(items) != 1001 || items[1000].reason != event.ReasonTruncated {
				t.Fatalf("got %d items (last %q), want 1000 lines and the partial one rejected", len(items), items[len(items)-1])
			}
		})
	}
}

type countingObserver struct {
	mu         sync.Mutex
	n          int
	handshakes map[string]int // failed handshakes by reason
	opened     int
}

func (o *countingObserver) ConnOpened(Source) {
	o.mu.Lock()
	o.opened++
	o.mu.Unlock()
}
func (o *countingObserver) HandshakeFailed(_, reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.handshakes == nil {
		o.handshakes = map[string]int{}
	}
	o.handshakes[reason]++
}
func (o *countingObserver) failures() map[string]int {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := map[string]int{}
	for k, v := range o.handshakes {
		out[k] = v
	}
	return out
}
func (o *countingObserver) ConnClosed(Source, error) {}
func (o *countingObserver) BytesRead(int)            {}
func (o *countingObserver) ConnRefused(string, error) {
	o.mu.Lock()
	o.n++
	o.mu.Unlock()
}
func (o *countingObserver) refused() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.n
}
