package logsource

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

var testStart = time.Date(2026, 11, 25, 10, 11, 12, 0, time.UTC)

type result struct {
	stats Stats
	err   error
}

// startServe runs Serve on a free loopback port and returns its address and its result, to come.
func startServe(t *testing.T, ctx context.Context, cfg Config) (string, <-chan result) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// These tests compare bytes with the generator's: synthetic time, from testStart unless set.
	if cfg.TimeMode == "" {
		cfg.TimeMode = TimeSynthetic
	}
	if cfg.Start.IsZero() && cfg.TimeMode == TimeSynthetic {
		cfg.Start = testStart
	}
	done := make(chan result, 1)
	go func() {
		st, err := Serve(ctx, ln, cfg)
		done <- result{st, err}
	}()
	return ln.Addr().String(), done
}

func wait(t *testing.T, done <-chan result) result {
	t.Helper()
	select {
	case r := <-done:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the source did not finish within 30s")
		return result{}
	}
}

// readConn connects to addr and reads until the source closes the connection.
func readConn(t testing.TB, addr string) []byte {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connecting to the source: %v", err)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	data, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("reading from the source: %v", err)
	}
	return data
}

// readUntilDone reads connection after connection, as a reader that reconnects would, for as long as
// connections end in the middle of a line (the truncated class); a connection that ends cleanly ends the
// stream. It returns each connection's bytes and the source's result.
func readUntilDone(t *testing.T, addr string, done <-chan result) ([][]byte, result) {
	t.Helper()
	var conns [][]byte
	for {
		data := readConn(t, addr)
		conns = append(conns, data)
		if len(data) == 0 || data[len(data)-1] == '\n' {
			return conns, wait(t, done)
		}
	}
}

// splitLines splits data at '\n'; the last element is what followed the last newline (empty if none).
func splitLines(data []byte) [][]byte { return bytes.Split(data, []byte("\n")) }

// eventIDs decodes the eventId of every good line in data and fails on any line that is not strictly valid.
func eventIDs(t *testing.T, data []byte) []uint32 {
	t.Helper()
	v := event.NewValidator(event.Strict)
	ls := splitLines(data)
	if len(ls[len(ls)-1]) != 0 {
		t.Fatalf("stream does not end with a newline: ...%q", tail(ls[len(ls)-1]))
	}
	var ids []uint32
	for _, l := range ls[:len(ls)-1] {
		if err := v.Validate(l); err != nil {
			t.Fatalf("line fails strict validation: %v: %q", err, tail(l))
		}
		ids = append(ids, idOf(t, l))
	}
	return ids
}

func idOf(t *testing.T, line []byte) uint32 {
	t.Helper()
	// Generated lines start with their eventId; fall back to decoding anything else.
	if rest, ok := bytes.CutPrefix(line, []byte(`{"eventId":`)); ok {
		if end := bytes.IndexByte(rest, ','); end > 0 {
			if id, err := strconv.ParseUint(string(rest[:end]), 10, 32); err == nil {
				return uint32(id)
			}
		}
	}
	var e struct {
		EventID uint32 `json:"eventId"`
	}
	if err := json.Unmarshal(line, &e); err != nil {
		t.Fatalf("decoding %q: %v", tail(line), err)
	}
	return e.EventID
}

func tail(b []byte) []byte {
	if len(b) > 200 {
		return b[:200]
	}
	return b
}

func checkSequence(t *testing.T, ids []uint32, first uint32, n int) {
	t.Helper()
	if len(ids) != n {
		t.Fatalf("received %d events, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != first+uint32(i) {
			t.Fatalf("event %d has eventId %d, want %d", i, id, first+uint32(i))
		}
	}
}

func TestServeSendsTheExactSequence(t *testing.T) {
	addr, done := startServe(t, t.Context(), Config{Count: 1000, FirstID: 1, Seed: 3})
	data := readConn(t, addr)
	r := wait(t, done)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	checkSequence(t, eventIDs(t, data), 1, 1000)
	want := Stats{Sent: 1000, FirstEventID: 1, LastEventID: 1000, Bytes: uint64(len(data)), BadSent: map[string]uint64{}, Connections: 1}
	r.stats.Seconds = 0
	if !equalStats(r.stats, want) {
		t.Errorf("Stats = %+v, want %+v", r.stats, want)
	}
	// Same seed, same stream: the source is the generator, byte for byte.
	g := event.NewGenerator(3, 1, testStart)
	var expect []byte
	for range 1000 {
		expect = append(g.AppendNext(expect), '\n')
	}
	if !bytes.Equal(data, expect) {
		t.Error("stream differs from the generator's events for the same seed")
	}
}

func equalStats(a, b Stats) bool {
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestServeSplitsOneSequenceAcrossClients(t *testing.T) {
	const n, clients = 30000, 3
	addr, done := startServe(t, t.Context(), Config{Count: n, FirstID: 1000, Clients: clients, WriteBuffer: 8 << 10})
	var (
		mu    sync.Mutex
		all   []uint32
		wg    sync.WaitGroup
		datas [clients][]byte
	)
	for c := range clients {
		wg.Go(func() { datas[c] = readConn(t, addr) })
	}
	wg.Wait()
	r := wait(t, done)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	var bytesRead uint64
	for _, d := range datas {
		ids := eventIDs(t, d)
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("ids within a connection go backwards: %d after %d", ids[i], ids[i-1])
			}
		}
		mu.Lock()
		all = append(all, ids...)
		mu.Unlock()
		bytesRead += uint64(len(d))
	}
	seen := make(map[uint32]bool, n)
	for _, id := range all {
		if seen[id] || id < 1000 || id >= 1000+n {
			t.Fatalf("eventId %d duplicated or out of the sequence", id)
		}
		seen[id] = true
	}
	if len(seen) != n {
		t.Errorf("received %d distinct events over %d connections, want %d", len(seen), clients, n)
	}
	if r.stats.Sent != n || r.stats.Connections != clients || r.stats.Bytes != bytesRead || r.stats.FirstEventID != 1000 || r.stats.LastEventID != 1000+n-1 {
		t.Errorf("Stats = %+v, want %d sent over %d connections, %d bytes, ids 1000..%d", r.stats, n, clients, bytesRead, 1000+n-1)
	}
}

func TestServeWaitsForItsClients(t *testing.T) {
	addr, done := startServe(t, t.Context(), Config{Count: 10, FirstID: 1, Clients: 2})
	first := readConn(t, addr)
	checkSequence(t, eventIDs(t, first), 1, 10)
	select {
	case r := <-done:
		t.Fatalf("Serve returned after one of two clients: %+v", r)
	case <-time.After(100 * time.Millisecond):
	}
	if second := readConn(t, addr); len(second) != 0 {
		t.Errorf("second client got %d bytes of an exhausted stream, want none", len(second))
	}
	if r := wait(t, done); r.err != nil || r.stats.Connections != 2 || r.stats.Sent != 10 {
		t.Errorf("Serve = %+v, %v; want 10 sent over 2 connections", r.stats, r.err)
	}
}

func TestDialRetriesUntilTheReaderIsUp(t *testing.T) {
	// Find a free port, leave it closed for a while, then listen on it.
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	done := make(chan result, 1)
	go func() {
		st, err := Dial(t.Context(), addr, Config{Count: 500, FirstID: 1, Start: testStart, TimeMode: TimeSynthetic})
		done <- result{st, err}
	}()
	time.Sleep(300 * time.Millisecond)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("re-listening on %s: %v", addr, err)
	}
	defer ln.Close()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(conn)
	conn.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := wait(t, done)
	if r.err != nil {
		t.Fatalf("Dial: %v", r.err)
	}
	checkSequence(t, eventIDs(t, data), 1, 500)
	if r.stats.Sent != 500 || r.stats.Bytes != uint64(len(data)) || r.stats.Connections != 1 {
		t.Errorf("Stats = %+v, want 500 sent, %d bytes, 1 connection", r.stats, len(data))
	}
}

func TestDialGivesUpAfterConnectTimeout(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	began := time.Now()
	_, err = Dial(t.Context(), addr, Config{Count: 1, ConnectTimeout: 300 * time.Millisecond})
	if err == nil || !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "connecting to") {
		t.Fatalf("Dial to a closed port = %v, want a connect error", err)
	}
	if d := time.Since(began); d < 250*time.Millisecond || d > 5*time.Second {
		t.Errorf("Dial gave up after %v, want about 300ms", d)
	}
}

// Each class, injected on its own, produces what it says, in the right place, and leaves the good
// sequence whole.
func TestEachBadClass(t *testing.T) {
	const oversize = 5000
	for _, class := range AllBadClasses {
		t.Run(string(class), func(t *testing.T) {
			addr, done := startServe(t, t.Context(), Config{Count: 5, FirstID: 1, Bad: []BadClass{class}, BadEvery: 2, OversizeBytes: oversize})
			conns, r := readUntilDone(t, addr, done)
			if r.err != nil {
				t.Fatalf("Serve: %v", r.err)
			}
			strict, lenient := event.NewValidator(event.Strict), event.NewValidator(event.Lenient)
			var ids []uint32
			var bad [][]byte
			var total int
			for ci, data := range conns {
				total += len(data)
				ls := splitLines(data)
				last := ls[len(ls)-1]
				if class == BadTruncated && ci < 2 {
					// The connection ends in half a line, which must not validate as it stands.
					if len(last) == 0 || strict.Validate(last) == nil {
						t.Fatalf("connection %d ends with %q, want a cut line", ci, last)
					}
					bad = append(bad, last)
				} else if len(last) != 0 {
					t.Fatalf("connection %d ends without a newline: %q", ci, tail(last))
				}
				for _, l := range ls[:len(ls)-1] {
					if class == BadCRLF && bytes.HasSuffix(l, []byte("\r")) {
						ids = append(ids, idOf(t, bytes.TrimSuffix(l, []byte("\r"))))
						bad = append(bad, l)
						continue
					}
					if strict.Validate(l) == nil {
						ids = append(ids, idOf(t, l))
						continue
					}
					bad = append(bad, l)
				}
			}
			checkSequence(t, ids, 1, 5)
			if len(bad) != 2 {
				t.Fatalf("got %d injected lines, want 2 (after events 2 and 4)", len(bad))
			}
			for _, l := range bad {
				switch class {
				case BadOversized:
					if len(l) != oversize {
						t.Errorf("oversized line has %d bytes, want %d", len(l), oversize)
					}
				case BadTruncated:
				case BadCRLF:
					if err := strict.Validate(bytes.TrimSuffix(l, []byte("\r"))); err != nil {
						t.Errorf("crlf line is not a good event: %v", err)
					}
				default:
					for _, v := range []*event.Validator{strict, lenient} {
						if got, want := event.ReasonOf(v.Validate(l)), class.Reason(v.Mode()); got != want {
							t.Errorf("%s validation of %q = %q, want %q", v.Mode(), tail(l), got, want)
						}
					}
				}
			}
			wantConns := 1
			if class == BadTruncated {
				wantConns = 3
			}
			if r.stats.Connections != wantConns || len(conns) != wantConns {
				t.Errorf("%d connections (stats say %d), want %d", len(conns), r.stats.Connections, wantConns)
			}
			if r.stats.Sent != 5 || r.stats.Bytes != uint64(total) {
				t.Errorf("Stats = %+v, want 5 sent and %d bytes", r.stats, total)
			}
			if class == BadCRLF {
				if r.stats.CRLFSent != 2 || r.stats.BadTotal() != 0 {
					t.Errorf("Stats = %+v, want crlf_sent 2 and no bad lines", r.stats)
				}
			} else if r.stats.BadSent[string(class)] != 2 || r.stats.BadTotal() != 2 {
				t.Errorf("bad_sent = %v, want {%s: 2}", r.stats.BadSent, class)
			}
		})
	}
}

func TestAllBadClassesInTurn(t *testing.T) {
	const n, every = 200, 3
	addr, done := startServe(t, t.Context(), Config{Count: n, FirstID: 1, Bad: AllBadClasses, BadEvery: every, OversizeBytes: 2000})
	conns, r := readUntilDone(t, addr, done)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	want := map[string]uint64{}
	var wantCRLF uint64
	for k := 1; k <= n/every; k++ {
		c := AllBadClasses[(k-1)%len(AllBadClasses)]
		if c == BadCRLF {
			wantCRLF++
		} else {
			want[string(c)]++
		}
	}
	if !equalStats(Stats{BadSent: r.stats.BadSent}, Stats{BadSent: want}) || r.stats.CRLFSent != wantCRLF {
		t.Errorf("bad_sent = %v crlf_sent = %d, want %v and %d", r.stats.BadSent, r.stats.CRLFSent, want, wantCRLF)
	}
	// Good events arrive once each, in order, across the reconnections the truncated class forces.
	strict := event.NewValidator(event.Strict)
	var ids []uint32
	var total int
	for _, data := range conns {
		total += len(data)
		ls := splitLines(data)
		for _, l := range ls[:len(ls)-1] {
			l = bytes.TrimSuffix(l, []byte("\r"))
			if strict.Validate(l) == nil {
				ids = append(ids, idOf(t, l))
			}
		}
	}
	checkSequence(t, ids, 1, n)
	if wantConns := int(want[string(BadTruncated)]) + 1; len(conns) != wantConns || r.stats.Connections != wantConns {
		t.Errorf("%d connections (stats %d), want %d", len(conns), r.stats.Connections, wantConns)
	}
	if r.stats.Sent != n || r.stats.Bytes != uint64(total) {
		t.Errorf("Stats = %+v, want %d sent, %d bytes", r.stats, n, total)
	}
}

func TestRateIsHonoured(t *testing.T) {
	const n, rate = 1000, 2000.0 // half a second of events
	began := time.Now()
	addr, done := startServe(t, t.Context(), Config{Count: n, FirstID: 1, Rate: rate})
	data := readConn(t, addr)
	r := wait(t, done)
	elapsed := time.Since(began)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	checkSequence(t, eventIDs(t, data), 1, n)
	// Loose bounds: the point is pacing, not timer precision on a busy machine.
	if elapsed < 400*time.Millisecond || elapsed > 5*time.Second {
		t.Errorf("%d events at %v/s took %v, want about 500ms", n, rate, elapsed)
	}
	if r.stats.Seconds < 0.4 || r.stats.Seconds > 5 {
		t.Errorf("Stats.Seconds = %v, want about 0.5", r.stats.Seconds)
	}
}

func TestDurationBoundsTheStream(t *testing.T) {
	addr, done := startServe(t, t.Context(), Config{Duration: 400 * time.Millisecond, Rate: 1000, FirstID: 1})
	began := time.Now()
	data := readConn(t, addr)
	r := wait(t, done)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	ids := eventIDs(t, data)
	checkSequence(t, ids, 1, len(ids))
	if len(ids) < 200 || len(ids) > 600 {
		t.Errorf("sent %d events in 400ms at 1000/s, want about 400", len(ids))
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Errorf("a 400ms run took %v", d)
	}
	if r.stats.Sent != uint64(len(ids)) {
		t.Errorf("Stats.Sent = %d, received %d", r.stats.Sent, len(ids))
	}
}

func TestCancelStopsTheSource(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"unbounded ends quietly", Config{Rate: 5000}, false},
		{"bounded reports the interruption", Config{Count: 1 << 40, Rate: 5000}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			addr, done := startServe(t, ctx, tc.cfg)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			br := bufio.NewReader(conn)
			for range 100 {
				if _, err := br.ReadBytes('\n'); err != nil {
					t.Fatal(err)
				}
			}
			cancel()
			go func() {
				io.Copy(io.Discard, br)
				conn.Close()
			}()
			r := wait(t, done)
			if (r.err != nil) != tc.wantErr || (tc.wantErr && !errors.Is(r.err, context.Canceled)) {
				t.Errorf("Serve after cancel = %v, want error: %v", r.err, tc.wantErr)
			}
			if r.stats.Sent < 100 {
				t.Errorf("Stats.Sent = %d, want at least the 100 events read", r.stats.Sent)
			}
		})
	}
}

// A reader that vanishes mid-stream loses at most the write in flight; the next one continues the sequence.
func TestBrokenConnectionHandsBackItsEvents(t *testing.T) {
	const n = 60000 // about 18 MB: more than loopback socket buffers hold, so writes must fail
	addr, done := startServe(t, t.Context(), Config{Count: n, FirstID: 1, WriteBuffer: 16 << 10})
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(conn)
	for range 10 {
		if _, err := br.ReadBytes('\n'); err != nil {
			t.Fatal(err)
		}
	}
	conn.(*net.TCPConn).SetLinger(0) // reset: the source's next writes fail
	conn.Close()
	data := readConn(t, addr)
	r := wait(t, done)
	if r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	// The second reader may connect while the first connection still looks healthy (its writes land in
	// kernel buffers until the reset arrives), so it gets fresh blocks first and the handed-back ones after.
	ids := eventIDs(t, data)
	seen := map[uint32]bool{}
	for _, id := range ids {
		if seen[id] || id < 1 || id > n {
			t.Fatalf("second reader got eventId %d twice or out of range", id)
		}
		seen[id] = true
	}
	if !seen[n] {
		t.Errorf("second reader never got the last event %d", n)
	}
	if r.stats.Sent+r.stats.Lost != n || r.stats.Connections != 2 || r.stats.Lost == 0 {
		t.Errorf("Stats = %+v: want sent + lost = %d over 2 connections, some lost", r.stats, n)
	}
	// What the second reader did not get went to the first connection (at least the 10 lines it read) or
	// was lost in the failed write.
	if toFirst := n - uint64(len(ids)) - r.stats.Lost; toFirst < 10 || toFirst > r.stats.Sent {
		t.Errorf("%d events accounted to the first connection, want at least the 10 it read (stats %+v)", toFirst, r.stats)
	}
}

func TestSendTimes(t *testing.T) {
	var buf bytes.Buffer
	began := time.Now()
	addr, done := startServe(t, t.Context(), Config{Count: 100, FirstID: 1, SendTimes: &buf, SendTimesEvery: 10})
	readConn(t, addr)
	if r := wait(t, done); r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 11 || lines[0] != "event_id,sent_unix_nano" {
		t.Fatalf("send times = %q, want a header and 10 rows", buf.String())
	}
	for k, l := range lines[1:] {
		id, nanos, _ := strings.Cut(l, ",")
		if id != strconv.Itoa(1+10*k) {
			t.Errorf("row %d names event %s, want %d", k, id, 1+10*k)
		}
		ns, err := strconv.ParseInt(nanos, 10, 64)
		if err != nil || ns < began.UnixNano() || ns > time.Now().UnixNano() {
			t.Errorf("row %d time %q is not a time of this run", k, nanos)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"bounded with bad lines", Config{Count: 10, Bad: []BadClass{BadEmpty}, BadEvery: 2}, true},
		{"negative duration", Config{Duration: -time.Second}, false},
		{"negative rate", Config{Rate: -1}, false},
		{"negative clients", Config{Clients: -1}, false},
		{"bad without bad-every", Config{Bad: []BadClass{BadEmpty}}, false},
		{"bad-every without bad", Config{BadEvery: 3}, false},
		{"unknown class", Config{Bad: []BadClass{"nope"}, BadEvery: 1}, false},
		{"negative oversize", Config{OversizeBytes: -1}, false},
		{"negative write buffer", Config{WriteBuffer: -1}, false},
		{"negative connect timeout", Config{ConnectTimeout: -1}, false},
	}
	for _, tc := range tests {
		err := tc.cfg.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%s: Validate() = %v, want ok %v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate() = %v, want it to wrap ErrInvalidConfig", tc.name, err)
		}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Serve(t.Context(), ln, Config{Rate: -1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Serve with an invalid config = %v, want ErrInvalidConfig", err)
	}
}

func TestParseBadClasses(t *testing.T) {
	tests := []struct {
		in      string
		want    []BadClass
		wantErr bool
	}{
		{"", nil, false},
		{"empty", []BadClass{BadEmpty}, false},
		{" nul , bom,", []BadClass{BadNUL, BadBOM}, false},
		{"all", AllBadClasses, false},
		{"empty,nope", nil, true},
	}
	for _, tc := range tests {
		got, err := ParseBadClasses(tc.in)
		if (err != nil) != tc.wantErr || strings.Join(toStrings(got), ",") != strings.Join(toStrings(tc.want), ",") {
			t.Errorf("ParseBadClasses(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnknownBadClass) {
			t.Errorf("ParseBadClasses(%q) error %v does not wrap ErrUnknownBadClass", tc.in, err)
		}
	}
}

func toStrings(cs []BadClass) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// The prebuilt bad lines get exactly the reasons BadClass.Reason promises, in both modes.
func TestBadLinesMatchTheirReasons(t *testing.T) {
	lines := badLines(testStart, 3000)
	for i, c := range AllBadClasses {
		l := lines[i]
		switch c {
		case BadCRLF:
			if l != nil {
				t.Errorf("crlf has a prebuilt line %q; it should alter a good line", l)
			}
			continue
		case BadTruncated:
			if bytes.IndexByte(l, '\n') >= 0 || len(l) == 0 {
				t.Errorf("truncated line %q must be a non-empty line without its newline", l)
			}
			continue
		case BadOversized:
			if len(l) != 3001 || bytes.IndexByte(l, '\n') != 3000 {
				t.Errorf("oversized line has %d bytes, want 3000 and a newline", len(l))
			}
			continue
		}
		if !bytes.HasSuffix(l, []byte("\n")) || bytes.Count(l, []byte("\n")) != 1 {
			t.Errorf("%s line %q must be one line ending in a newline", c, l)
			continue
		}
		for _, m := range []event.Mode{event.Strict, event.Lenient} {
			got := event.ReasonOf(event.NewValidator(m).Validate(bytes.TrimSuffix(l, []byte("\n"))))
			if want := c.Reason(m); got != want {
				t.Errorf("%s: %s validation gives %q, Reason promises %q (line %q)", c, m, got, want, tail(l))
			}
		}
	}
}

// BenchmarkServeLoopback measures the source's throughput to a reader that only discards, over loopback.
func BenchmarkServeLoopback(b *testing.B) {
	const n = 200000
	var total uint64
	var events uint64
	b.ReportAllocs()
	for b.Loop() {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		done := make(chan result, 1)
		go func() {
			st, err := Serve(context.Background(), ln, Config{Count: n, FirstID: 1, Start: testStart, TimeMode: TimeSynthetic})
			done <- result{st, err}
		}()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		buf := make([]byte, 1<<20)
		for {
			if _, err := conn.Read(buf); err != nil {
				break
			}
		}
		conn.Close()
		r := <-done
		if r.err != nil || r.stats.Sent != n {
			b.Fatalf("Serve = %+v, %v", r.stats, r.err)
		}
		total += r.stats.Bytes
		events += r.stats.Sent
	}
	b.SetBytes(int64(total) / int64(b.N))
	b.ReportMetric(float64(events)/b.Elapsed().Seconds(), "events/s")
}

// TestWallClockTimestamps: by default each event is stamped with the clock when it is sent, so a
// rate-limited run never writes an event in the future: at 2,000 events/s the synthetic time line (1 ms per
// event) would run 0.5 s ahead of the clock by the end of this stream. Stamps increase strictly.
func TestWallClockTimestamps(t *testing.T) {
	const n, rate = 1000, 2000
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	done := make(chan result, 1)
	go func() {
		st, err := Serve(t.Context(), ln, Config{Count: n, FirstID: 1, Rate: rate})
		done <- result{st, err}
	}()
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	sc := bufio.NewScanner(conn)
	var last time.Time
	count := 0
	for sc.Scan() {
		readAt := time.Now()
		var ev struct {
			Timestamp string `json:"timestamp"`
		}
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		ts, err := time.ParseInLocation(event.TimestampLayout, ev.Timestamp, time.UTC)
		if err != nil {
			t.Fatalf("timestamp %q: %v", ev.Timestamp, err)
		}
		if ts.After(readAt) || ts.Before(before.Truncate(time.Microsecond)) {
			t.Fatalf("event %d stamped %s, read at %s, run started %s: want a stamp between the start and the read",
				count, ts.Format(time.RFC3339Nano), readAt.Format(time.RFC3339Nano), before.Format(time.RFC3339Nano))
		}
		if !ts.After(last) {
			t.Fatalf("event %d stamped %s, not after the previous %s", count, ts, last)
		}
		last = ts
		if count++; count == n {
			break
		}
	}
	if count != n {
		t.Fatalf("read %d events, want %d (%v)", count, n, sc.Err())
	}
	if r := wait(t, done); r.err != nil {
		t.Fatalf("Serve: %v", r.err)
	}
}
