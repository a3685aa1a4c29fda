package abuse

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/pipeline"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// hostile is one hostile input of the battery.
type hostile struct {
	name string
	// write writes the input. It ends with a newline unless endsConn is set.
	write func(w io.Writer, s *stream) error
	// endsConn: the input has no final newline, so its connection must end right after it.
	endsConn bool
	// lines is how many lines the reader frames from it; spent how many eventIds it consumes without
	// delivering them (valid events made invalid, or embedded in a rejected line).
	lines, spent int
	// reasons are the dead letters the input must produce.
	reasons map[event.Reason]int
}

// stream hands out the good lines of a battery with sequential eventIds, so the read-back can check each.
type stream struct {
	gen       *event.Generator
	next      uint64 // eventIds handed out
	goodLines uint64 // plain good lines written
}

func (s *stream) good(w io.Writer, k int) error {
	var b []byte
	for range k {
		b = s.gen.AppendAt(b, s.next)
		b = append(b, '\n')
		s.next++
	}
	s.goodLines += uint64(k)
	_, err := w.Write(b)
	return err
}

// event returns the next good event (consuming an eventId) for inputs that embed a valid line.
func (s *stream) event() event.Event {
	e := s.gen.At(s.next)
	s.next++
	return e
}

// sized returns a valid event line (consuming an eventId) of exactly n bytes, its message padded with
// pseudo-random letters so that compression does not shrink it much.
func (s *stream) sized(n int) []byte {
	e := s.event()
	e.Message = ""
	base := len(e.AppendJSON(nil))
	pad := make([]byte, max(n-base, 0))
	r := rand.New(rand.NewPCG(uint64(n), 7))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 "
	for i := range pad {
		pad[i] = letters[r.IntN(len(letters))]
	}
	e.Message = string(pad)
	return e.AppendJSON(nil)
}

func writeAll(w io.Writer, parts ...[]byte) error {
	for _, p := range parts {
		if _, err := w.Write(p); err != nil {
			return err
		}
	}
	return nil
}

// brokerMessageLimit is Kafka's default message.max.bytes, which the local stack keeps: the largest record
// batch a broker accepts. A batch of one record adds about batchOverhead bytes to the line, and lz4 does not
// shrink the high-entropy padding of stream.sized.
const (
	brokerMessageLimit = 1048588
	batchOverhead      = 72
)

// battery returns the hostile inputs; bigLine is the size of the line without newline.
func battery(bigLine int) []hostile {
	nl := []byte{'\n'}
	one := func(r event.Reason) map[event.Reason]int { return map[event.Reason]int{r: 1} }
	// A line at the framing limit passes framing. Whether Kafka takes it depends on the broker's message
	// limit: when it does not fit, the reader must dead-letter it (a sample, reason delivery_failed), not
	// lose it.
	atLimit := hostile{name: "line exactly at the limit", lines: 1, reasons: map[event.Reason]int{},
		write: func(w io.Writer, s *stream) error { return writeAll(w, s.sized(tcpin.DefaultMaxLineBytes), nl) }}
	if tcpin.DefaultMaxLineBytes+batchOverhead > brokerMessageLimit {
		atLimit.name += " (larger than the broker's message limit)"
		atLimit.spent = 1
		atLimit.reasons = map[event.Reason]int{pipeline.ReasonDeliveryFailed: 1}
	}
	return []hostile{
		{name: fmt.Sprintf("%d MiB line without newline", bigLine>>20), endsConn: true, lines: 1, spent: 0, reasons: one(event.ReasonOversized),
			write: func(w io.Writer, _ *stream) error {
				chunk := bytes.Repeat([]byte("A"), 1<<20)
				for range bigLine >> 20 {
					if _, err := w.Write(chunk); err != nil {
						return err
					}
				}
				return nil
			}},
		atLimit,
		{name: "line one byte over the limit", lines: 1, spent: 1, reasons: one(event.ReasonOversized),
			write: func(w io.Writer, s *stream) error { return writeAll(w, s.sized(tcpin.DefaultMaxLineBytes+1), nl) }},
		{name: "NUL bytes", lines: 1, spent: 1, reasons: one(event.ReasonInvalidJSON),
			write: func(w io.Writer, s *stream) error {
				line := s.event().AppendJSON(nil)
				return writeAll(w, line[:20], []byte{0, 0, 0}, line[20:], nl)
			}},
		{name: "invalid UTF-8", lines: 1, spent: 1, reasons: one(event.ReasonInvalidUTF8),
			write: func(w io.Writer, s *stream) error {
				line := s.event().AppendJSON(nil)
				i := bytes.Index(line, []byte(`"message":"`)) + len(`"message":"`)
				return writeAll(w, line[:i], []byte("caf\xc3\x28\xff"), line[i:], nl)
			}},
		{name: "UTF-8 BOM", lines: 1, spent: 1, reasons: one(event.ReasonInvalidJSON),
			write: func(w io.Writer, s *stream) error {
				return writeAll(w, []byte("\xef\xbb\xbf"), s.event().AppendJSON(nil), nl)
			}},
		{name: "CRLF line ending (a good line)", lines: 1, spent: 0, reasons: map[event.Reason]int{},
			write: func(w io.Writer, s *stream) error { return writeAll(w, s.event().AppendJSON(nil), []byte("\r\n")) }},
		{name: "lone CR between two events", lines: 1, spent: 2, reasons: one(event.ReasonInvalidJSON),
			write: func(w io.Writer, s *stream) error {
				return writeAll(w, s.event().AppendJSON(nil), []byte("\r"), s.event().AppendJSON(nil), nl)
			}},
		{name: "lone CR as a line", lines: 1, spent: 0, reasons: one(event.ReasonEmpty),
			write: func(w io.Writer, _ *stream) error { return writeAll(w, []byte("\r\r\n")) }},
		{name: "deeply nested JSON", lines: 1, spent: 0, reasons: one(event.ReasonTooDeep),
			write: func(w io.Writer, _ *stream) error {
				return writeAll(w, []byte(`{"eventId":1,"level":"Info","x":`), bytes.Repeat([]byte("["), 100_000), bytes.Repeat([]byte("]"), 100_000), []byte("}"), nl)
			}},
		{name: "huge numbers", lines: 1, spent: 1, reasons: one(event.ReasonEventIDRange),
			write: func(w io.Writer, s *stream) error {
				line := s.event().AppendJSON(nil)
				i := bytes.IndexByte(line, ',')
				return writeAll(w, []byte(`{"eventId":`), bytes.Repeat([]byte("9"), 100_000), line[i:], nl)
			}},
		{name: "duplicate keys", lines: 1, spent: 1, reasons: one(event.ReasonDuplicateKey),
			write: func(w io.Writer, s *stream) error {
				line := s.event().AppendJSON(nil)
				return writeAll(w, []byte(`{"eventId":7,`), line[1:], nl)
			}},
		{name: "non-object JSON", lines: 5, spent: 0, reasons: map[event.Reason]int{event.ReasonNotObject: 5},
			write: func(w io.Writer, _ *stream) error {
				return writeAll(w, []byte("[1,2,3]\n\"a string\"\n42\nnull\ntrue\n"))
			}},
	}
}

// TestHostileInputs sends the battery, each input between good lines, in listen and connect mode with both
// readers. Each hostile input is dead-lettered with its reason, every good line arrives exactly once, and
// the reader's memory stays bounded.
func TestHostileInputs(t *testing.T) {
	bigLine := pick(8<<20, 100<<20)
	for _, mode := range []string{"listen", "connect"} {
		for _, impl := range []string{"highperf", "basic"} {
			t.Run(mode+"/"+impl, func(t *testing.T) { runBattery(t, mode, impl, bigLine) })
		}
	}
}

func runBattery(t *testing.T, mode, impl string, bigLine int) {
	e := loadEnv(t)
	topic, dlq := e.topics(t)
	const goodPerStep = 20
	s := &stream{gen: event.NewGenerator(3, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))}
	inputs := battery(bigLine)

	// One step (connection) per input: good lines, the input, good lines (unless the input ends it).
	var steps []harness.Step
	wantReasons := map[string]int{}
	for _, h := range inputs {
		steps = append(steps, func(w io.Writer) error {
			if err := s.good(w, goodPerStep); err != nil {
				return err
			}
			if err := h.write(w, s); err != nil {
				return fmt.Errorf("%s: %w", h.name, err)
			}
			if h.endsConn {
				return nil
			}
			return s.good(w, goodPerStep)
		})
		for r, n := range h.reasons {
			wantReasons[string(r)] += n
		}
	}
	var addr string
	var script *harness.ScriptSource
	if mode == "connect" {
		script = harness.NewScriptSource(t, steps)
		addr = script.Addr()
	} else {
		addr = harness.FreeAddr(t)
	}
	r := harness.StartReader(t, readerBin, e.creds(), e.baseArgs(mode, addr, topic, dlq, "--reader", impl)...)
	r.WaitReady(time.Minute)
	if mode == "listen" {
		for i, step := range steps {
			conn, err := harness.Dial(addr)
			if err != nil {
				t.Fatalf("step %d: %v", i, err)
			}
			if err := step(conn); err != nil {
				t.Fatalf("step %d (%s): %v", i, inputs[i].name, err)
			}
			conn.Close()
		}
	} else {
		select {
		case <-script.Done():
		case <-time.After(2 * time.Minute):
			t.Fatalf("the reader did not take every step of the script")
		}
		if errs := script.Errs(); len(errs) > 0 {
			t.Fatalf("script errors: %v", errs)
		}
	}
	var lines, spent uint64
	for _, h := range inputs {
		lines += uint64(h.lines)
		spent += uint64(h.spent)
	}
	expected := s.goodLines + lines
	wantDelivered := s.next - spent
	got := waitReceived(t, r, expected, time.Minute)
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(time.Minute)

	tally := harness.ReadEvents(t, e.plaintext, topic, 1, s.next)
	dls := harness.ReadDeadLetters(t, e.plaintext, dlq)
	gotReasons := harness.ReasonCounts(dls)
	report.Add(harness.Row{Scenario: fmt.Sprintf("A. hostile input battery (%s mode, %s reader)", mode, impl),
		Sent: wantDelivered, Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: wantDelivered - min(wantDelivered, tally.Unique),
		Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("%d inputs incl. a %d MiB line without newline; reasons %v; peak RSS %s; exit %d",
			len(inputs), bigLine>>20, gotReasons, mib(r.PeakRSS()), code)})
	t.Logf("%s; received %d of %d expected; summary %+v", tally, got, expected, sum)

	if code != 0 || !sum.Balanced() || sum.Failed != 0 {
		t.Errorf("exit %d, summary %+v; want 0, balanced, none failed", code, sum)
	}
	if got != expected || sum.Received != expected {
		t.Errorf("received %d (summary %d), want %d", got, sum.Received, expected)
	}
	for reason, n := range wantReasons {
		if gotReasons[reason] != n {
			t.Errorf("%d dead letters with reason %s, want %d", gotReasons[reason], reason, n)
		}
	}
	for reason, n := range gotReasons {
		if _, ok := wantReasons[reason]; !ok {
			t.Errorf("%d unexpected dead letters with reason %s", n, reason)
		}
	}
	for _, d := range dls {
		if len(d.Value) > tcpin.SampleBytes {
			t.Errorf("dead letter (%s) carries %d bytes, more than the %d-byte sample", d.Reason, len(d.Value), tcpin.SampleBytes)
		}
		if d.Detail == "" {
			t.Errorf("dead letter (%s) without detail", d.Reason)
		}
	}
	if tally.Unique != wantDelivered || sum.Delivered != wantDelivered || tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("topic: %s; summary delivered %d; want %d delivered exactly once", tally, sum.Delivered, wantDelivered)
	}
	if limit := uint64(256 << 20); r.PeakRSS() > limit {
		t.Errorf("reader peak RSS %s, want under %s", mib(r.PeakRSS()), mib(limit))
	}
}

// TestRandomBytes sends random bytes (16 MiB quick, 1 GiB full) between good lines in listen mode, with
// dead letters going to a file. Every line of junk is dead-lettered with a reason, the good lines arrive, and
// memory stays bounded.
func TestRandomBytes(t *testing.T) {
	size := pick(16<<20, 1<<30)
	e := loadEnv(t)
	topic, dlq := e.topics(t)
	addr := harness.FreeAddr(t)
	dlqFile := filepath.Join(t.TempDir(), "dead-letters.jsonl")
	r := harness.StartReader(t, readerBin, e.creds(), e.baseArgs("listen", addr, topic, dlq, "--dlq-file", dlqFile)...)
	r.WaitReady(time.Minute)

	const good = 1000
	s := &stream{gen: event.NewGenerator(5, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))}
	conn, err := harness.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.good(conn, good); err != nil {
		t.Fatal(err)
	}
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	buf := make([]byte, 1<<20)
	var junkLines uint64
	start := time.Now()
	for written := 0; written < size; written += len(buf) {
		rng.Read(buf)
		junkLines += uint64(bytes.Count(buf, []byte{'\n'}))
		if _, err := conn.Write(buf); err != nil {
			t.Fatalf("writing random bytes: %v", err)
		}
	}
	// End the junk's last line, then good lines again.
	if _, err := conn.Write([]byte{'\n'}); err != nil {
		t.Fatal(err)
	}
	junkLines++
	if err := s.good(conn, good); err != nil {
		t.Fatal(err)
	}
	conn.Close()
	sendTook := time.Since(start)
	expected := 2*good + junkLines
	got := waitReceived(t, r, expected, 10*time.Minute)
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(2 * time.Minute)

	tally := harness.ReadEvents(t, e.plaintext, topic, 1, 2*good)
	reasons, records := countDeadLetterFile(t, dlqFile)
	report.Add(harness.Row{Scenario: fmt.Sprintf("B. %d MiB of random bytes between good lines (listen mode)", size>>20),
		Sent: 2 * good, Delivered: tally.Unique, DeadLettered: records, Lost: 2*good - tally.Unique, Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("%d junk lines, dead-lettered by reason %v; sent in %.1fs; peak RSS %s; exit %d",
			junkLines, reasons, sendTook.Seconds(), mib(r.PeakRSS()), code)})
	t.Logf("%s; received %d of %d; summary %+v", tally, got, expected, sum)

	if code != 0 || !sum.Balanced() || sum.Received != expected || sum.DeadLettered != junkLines {
		t.Errorf("exit %d, summary %+v; want 0, %d received, %d dead-lettered", code, sum, expected, junkLines)
	}
	if records != junkLines {
		t.Errorf("%d dead-letter records in the file, want %d", records, junkLines)
	}
	if reasons[""] != 0 {
		t.Errorf("%d dead letters without a reason", reasons[""])
	}
	if tally.Unique != 2*good || tally.Duplicated != 0 || tally.Invalid != 0 {
		t.Errorf("topic: %s; want the %d good lines exactly once", tally, 2*good)
	}
	if limit := uint64(256 << 20); r.PeakRSS() > limit {
		t.Errorf("reader peak RSS %s, want under %s", mib(r.PeakRSS()), mib(limit))
	}
}

func countDeadLetterFile(t *testing.T, path string) (map[string]uint64, uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening the dead-letter file: %v", err)
	}
	defer f.Close()
	reasons := map[string]uint64{}
	var n uint64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var rec struct {
			Reason string `json:"reason"`
		}
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("dead-letter record %d is not JSON: %v: %q", n+1, err, strings.TrimSpace(sc.Text()))
		}
		reasons[rec.Reason]++
		n++
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading the dead-letter file: %v", err)
	}
	return reasons, n
}
