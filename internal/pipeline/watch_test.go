package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// fakeKafka stands in for the producer's status in the watcher's unit tests; the integration tests and the
// chaos suite drive the real one.
type fakeKafka struct {
	mu       sync.Mutex
	fatal    error
	inFlight int
	bytes    int64
	waiting  int
	errAt    time.Time
	err      error
	checkErr error
	check    func(ctx context.Context) error // when set, CheckTopic calls it
}

func (f *fakeKafka) Fatal() error                        { f.mu.Lock(); defer f.mu.Unlock(); return f.fatal }
func (f *fakeKafka) InFlight() int                       { return f.inFlight }
func (f *fakeKafka) QueuedBytes() int64                  { return f.bytes }
func (f *fakeKafka) Waiting() int                        { return f.waiting }
func (f *fakeKafka) LastClientError() (time.Time, error) { return f.errAt, f.err }
func (f *fakeKafka) EventLoopRunning() bool              { return true }
func (f *fakeKafka) CheckTopic(ctx context.Context, _ string) error {
	if f.check != nil {
		return f.check(ctx)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.checkErr
}

// logRecords parses JSON log lines.
func logRecords(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b.Bytes()))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		out = append(out, rec)
	}
	return out
}

func msgs(recs []map[string]any) string {
	var m []string
	for _, r := range recs {
		m = append(m, r["level"].(string)+" "+r["msg"].(string))
	}
	return strings.Join(m, "; ")
}

type watchFixture struct {
	w      *watcher
	counts *Counts
	kafka  *fakeKafka
	logs   *bytes.Buffer
	now    time.Time
	mu     sync.Mutex // guards reason while the watcher runs on its own goroutine
	reason map[string]uint64
	tick   bool // take one more look before the stop
}

func newWatchFixture() *watchFixture {
	f := &watchFixture{counts: &Counts{}, kafka: &fakeKafka{}, logs: &bytes.Buffer{}, now: time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC),
		reason: map[string]uint64{}}
	cfg := OpsConfig{StallAfter: 10 * time.Second, UnhealthyAfter: 60 * time.Second, LogInterval: 30 * time.Second}
	f.w = newWatcher(cfg, f.counts, f.kafka, func() map[string]uint64 {
		f.mu.Lock()
		defer f.mu.Unlock()
		out := map[string]uint64{}
		for k, v := range f.reason {
			out[k] = v
		}
		return out
	}, &refusals{}, []string{"t"}, slog.New(slog.NewJSONHandler(f.logs, nil)))
	f.w.now = func() time.Time { return f.now }
	f.w.lastTick, f.w.lastProgress = f.now, f.now
	return f
}

// step advances the clock by d in one-second ticks, as the watcher's loop would.
func (f *watchFixture) step(d time.Duration) {
	for end := f.now.Add(d); f.now.Before(end); {
		f.now = f.now.Add(time.Second)
		f.w.observe(f.now)
	}
}

func TestWatcherStallAndRecovery(t *testing.T) {
	f := newWatchFixture()
	if h := f.w.health(); h.Status != "ok" || h.State != phaseStarting {
		t.Fatalf("health before reading = %+v, want ok starting", h)
	}
	if r := f.w.ready(); r.Status != "not_ready" || !strings.Contains(r.Reason, "starting") {
		t.Fatalf("ready before reading = %+v, want not_ready starting", r)
	}
	f.w.setPhase(phaseReading, nil)
	if r := f.w.ready(); r.Status != "ready" {
		t.Fatalf("ready while reading = %+v", r)
	}
	f.counts.received.Add(100)
	f.counts.delivered.Add(40)
	f.step(5 * time.Second)
	if h := f.w.health(); h.Status != "ok" || h.State != "delivering" || h.InFlight != 60 {
		t.Fatalf("health while delivering = %+v", h)
	}
	// No acknowledgement while 60 lines wait, the queue full: a stall after 10 s.
	f.kafka.waiting, f.kafka.inFlight, f.kafka.bytes = 1, 60, 18000
	f.kafka.errAt, f.kafka.err = f.now.Add(2*time.Second), errors.New("1/1 brokers are down")
	f.counts.received.Add(20)
	f.step(12 * time.Second)
	if h := f.w.health(); h.Status != "ok" || h.State != "stalled" || !strings.Contains(h.Reason, "80 lines wait") {
		t.Fatalf("health after 12 s without progress = %+v, want ok but stalled, 80 lines waiting", h)
	}
	f.step(60 * time.Second)
	if h := f.w.health(); h.Status != "unhealthy" || h.State != "stalled" {
		t.Fatalf("health after 72 s without progress = %+v, want unhealthy", h)
	}
	f.counts.delivered.Add(80)
	f.kafka.waiting = 0
	f.step(2 * time.Second)
	if h := f.w.health(); h.Status != "ok" || h.State != "idle" {
		t.Fatalf("health after the acknowledgements = %+v, want ok idle", h)
	}
	recs := logRecords(t, f.logs)
	if got, want := msgs(recs), "WARN delivery stalled; WARN delivery still stalled; WARN delivery still stalled; INFO delivery recovered"; got != want {
		t.Fatalf("log = %s\nwant %s", got, want)
	}
	start, end := recs[0], recs[3]
	if start["cause"] != "kafka client queue full" || start["in_flight"] != 80.0 || start["kafka_queue_bytes"] != 18000.0 ||
		start["kafka_error"] != "1/1 brokers are down" || !strings.HasPrefix(start["reading"].(string), "stopped") {
		t.Errorf("stall record = %v", start)
	}
	if end["stalled_seconds"] != 77.0 || end["delayed_lines"] != 80.0 || end["failed_lines"] != 0.0 {
		t.Errorf("recovery record = %v, want 77 s (since the last acknowledgement), 80 lines delayed", end)
	}
}

func TestWatcherFailures(t *testing.T) {
	tests := []struct {
		name      string
		setup     func(f *watchFixture)
		wantState string
		mentions  string
		ready     string
	}{
		{"kafka client failed", func(f *watchFixture) {
			f.kafka.fatal = errors.Join(kafkaout.ErrFatal, errors.New("out of order sequence"))
		}, "kafka_failed", "out of order sequence", "ready"},
		{"reader exited with an error", func(f *watchFixture) { f.w.setPhase(phaseStopped, errors.New("listen: address in use")) },
			phaseStopped, "address in use", "not_ready"},
		{"reader stopped", func(f *watchFixture) { f.counts.received.Add(7); f.w.setPhase(phaseStopped, nil) },
			phaseStopped, "draining 7 lines", "not_ready"},
		{"watcher not running", func(f *watchFixture) { f.now = f.now.Add(time.Minute) }, "stalled", "health watcher", "ready"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWatchFixture()
			f.w.setPhase(phaseReading, nil)
			tt.setup(f)
			h := f.w.health()
			if h.Status != "unhealthy" || h.State != tt.wantState || !strings.Contains(h.Reason, tt.mentions) {
				t.Errorf("health = %+v, want unhealthy %s mentioning %q", h, tt.wantState, tt.mentions)
			}
			if r := f.w.ready(); r.Status != tt.ready {
				t.Errorf("ready = %+v, want %s", r, tt.ready)
			}
		})
	}
}

func TestWatcherReadinessProbe(t *testing.T) {
	f := newWatchFixture()
	f.w.setPhase(phaseReading, nil)
	f.w.recordProbe(kafkaout.ErrAuthentication)
	if r := f.w.ready(); r.Status != "not_ready" || r.Reason != kafkaout.ErrAuthentication.Error() {
		t.Fatalf("ready after a rejected probe = %+v", r)
	}
	f.w.recordProbe(kafkaout.ErrAuthentication)
	f.now = f.now.Add(12 * time.Second)
	f.w.recordProbe(nil)
	if r := f.w.ready(); r.Status != "ready" {
		t.Fatalf("ready after a passing probe = %+v", r)
	}
	recs := logRecords(t, f.logs)
	if got := msgs(recs); got != "WARN not ready; INFO ready again" {
		t.Fatalf("log = %s, want one WARN and one INFO", got)
	}
	if recs[1]["not_ready_seconds"] != 12.0 {
		t.Errorf("ready again record = %v, want 12 s", recs[1])
	}
}

func TestWatcherBursts(t *testing.T) {
	f := newWatchFixture()
	f.w.setPhase(phaseReading, nil)
	f.reason["invalid_json"] = 3
	f.step(time.Second)
	f.reason["invalid_json"] = 10
	f.reason["line_too_long"] = 1
	for range 5 {
		f.w.refused.add(errors.New("too many connections"))
	}
	f.step(30 * time.Second) // the repeat carries the interval's counts
	f.step(45 * time.Second) // quiet for a whole interval: over
	recs := logRecords(t, f.logs)
	want := "WARN lines dead-lettered; WARN connections refused; WARN lines still being dead-lettered; INFO dead-lettering stopped; INFO connection refusals stopped"
	if got := msgs(recs); got != want {
		t.Fatalf("log = %s\nwant %s", got, want)
	}
	first, repeat, end := recs[0], recs[2], recs[3]
	if first["count"] != 3.0 || first["reasons"].(map[string]any)["invalid_json"] != 3.0 {
		t.Errorf("first record = %v", first)
	}
	if rs := repeat["reasons"].(map[string]any); rs["invalid_json"] != 7.0 || rs["line_too_long"] != 1.0 || repeat["total"] != 11.0 {
		t.Errorf("repeat record = %v, want the interval's 7 invalid_json and 1 line_too_long, 11 in all", repeat)
	}
	if end["count"] != 11.0 {
		t.Errorf("end record = %v, want 11 in all", end)
	}
	if rs := recs[1]["reasons"].(map[string]any); rs["too many connections"] != 5.0 {
		t.Errorf("refusal record = %v", recs[1])
	}
}

// TestWatcherClosesEpisodesAtShutdown: what happens in the run's last second (the drain's purge dead-letters
// every line Kafka did not take) and episodes still open when the run ends are logged when the watcher stops,
// not only counted in the summary. The watcher runs as the reader runs it (startOps), stopped at once, so its
// own ticks may or may not have seen the fault: the log must be the same either way.
func TestWatcherClosesEpisodesAtShutdown(t *testing.T) {
	tests := []struct {
		name   string
		before func(f *watchFixture) // while the watcher's clock runs, before startOps
		last   func(f *watchFixture) // just before the stop
		want   string
		check  func(t *testing.T, recs []map[string]any)
	}{
		{"dead letters after the last tick", nil, func(f *watchFixture) {
			f.reason[ReasonDeliveryFailed] = 2500
		}, "WARN lines dead-lettered; INFO dead-lettering stopped", func(t *testing.T, recs []map[string]any) {
			if recs[0]["count"] != 2500.0 || recs[1]["count"] != 2500.0 || recs[1]["at_shutdown"] != true {
				t.Errorf("records = %v, want 2500 dead letters at shutdown", recs)
			}
		}},
		{"burst still open", func(f *watchFixture) {
			f.reason["invalid_json"] = 3
			f.step(5 * time.Second)
		}, func(f *watchFixture) {
			f.reason["invalid_json"] = 10
		}, "WARN lines dead-lettered; INFO dead-lettering stopped", func(t *testing.T, recs []map[string]any) {
			if recs[1]["count"] != 10.0 || recs[1]["at_shutdown"] != true {
				t.Errorf("end record = %v, want 10 in all, at shutdown", recs[1])
			}
		}},
		{"refusals still open", func(f *watchFixture) {
			f.w.refused.add(errors.New("too many connections"))
			f.step(time.Second)
		}, nil, "WARN connections refused; INFO connection refusals stopped", nil},
		{"stall until the end", func(f *watchFixture) {
			f.counts.received.Add(50)
			f.step(15 * time.Second)
		}, func(f *watchFixture) {
			f.w.setPhase(phaseStopped, nil)
			f.counts.failed.Add(50) // the drain's deadline passed and the close purged them
			f.tick = true           // a tick sees that before the stop: no recovery
		}, "WARN delivery stalled; WARN delivery stalled until shutdown", func(t *testing.T, recs []map[string]any) {
			if recs[1]["failed_lines"] != 50.0 || recs[1]["at_shutdown"] != true {
				t.Errorf("end record = %v, want 50 failed lines, at shutdown", recs[1])
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newWatchFixture()
			f.w.setPhase(phaseReading, nil)
			if tt.before != nil {
				tt.before(f)
			}
			cfg := Config{Ops: f.w.cfg}
			stop := startOps(context.Background(), cfg, f.w, f.counts, f.kafka, io.Discard, slog.New(slog.NewJSONHandler(f.logs, nil)))
			if tt.last != nil {
				f.mu.Lock()
				tt.last(f)
				f.mu.Unlock()
			}
			if f.tick {
				f.w.observe(f.now)
			}
			stop()
			recs := logRecords(t, f.logs)
			if got := msgs(recs); got != tt.want {
				t.Fatalf("log = %s\nwant %s", got, tt.want)
			}
			if tt.check != nil {
				tt.check(t, recs)
			}
		})
	}
}

// TestWatcherProbeEndsWhenReadingStops: a readiness probe still waiting for a broker when reading stops is
// called off at once, so it neither overlaps the Kafka client's close nor delays the end of the shutdown (a
// metadata request to a broker that is gone waits out its whole timeout).
func TestWatcherProbeEndsWhenReadingStops(t *testing.T) {
	f := newWatchFixture()
	f.w.tick = 10 * time.Millisecond
	f.w.probeTimeout = time.Minute
	started, ended := make(chan struct{}, 1), make(chan struct{}, 1)
	f.kafka.check = func(ctx context.Context) error {
		started <- struct{}{}
		<-ctx.Done()
		ended <- struct{}{}
		return ctx.Err()
	}
	f.w.setPhase(phaseReading, nil)
	stop := startOps(context.Background(), Config{Ops: f.w.cfg}, f.w, f.counts, f.kafka, io.Discard, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	stopped := false
	defer func() {
		if !stopped {
			stop()
		}
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("no readiness probe within 10 s")
	}
	f.w.setPhase(phaseStopped, nil)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the readiness probe still waits 5 s after reading stopped")
	}
	stopped = true
	stop()
	if got := msgs(logRecords(t, f.logs)); strings.Contains(got, "not ready") {
		t.Errorf("log = %s: a probe called off is no readiness verdict", got)
	}
}

// TestEMFRecords checks the records against the Embedded Metric Format specification: a root "_aws" member
// with an integer Timestamp in milliseconds and a CloudWatchMetrics array of directives, each with a
// Namespace, a Dimensions array of dimension sets (at most 30 names, each a string member of the root) and a
// Metrics array (at most 100, each with a Name whose value is a number member of the root, and a valid
// Unit).
func TestEMFRecords(t *testing.T) {
	counts := &Counts{}
	k := &fakeKafka{bytes: 4096}
	reasons := map[string]uint64{}
	var out bytes.Buffer
	stalled := false
	e := newEMFEmitter(&out, "TestNS", cwmetric.ServiceName, counts, func() map[string]uint64 {
		c := map[string]uint64{}
		for r, n := range reasons {
			c[r] = n
		}
		return c
	}, k, func() bool { return stalled }, slog.New(slog.DiscardHandler))
	at := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	counts.received.Add(100)
	counts.delivered.Add(90)
	counts.deadLettered.Add(2)
	reasons["invalid_json"], reasons["line_too_long"] = 1, 1
	e.emit(at)
	counts.received.Add(50)
	counts.delivered.Add(10)
	counts.failed.Add(1)
	reasons["invalid_json"] = 4
	stalled = true
	e.emit(at.Add(time.Minute))

	recs := parseEMF(t, out.Bytes())
	if len(recs) != 5 { // two intervals, the first with two reasons and the second with one
		t.Fatalf("%d records, want 5:\n%s", len(recs), out.String())
	}
	main1, main2 := recs[0], recs[3]
	want1 := map[string]float64{cwmetric.LinesReceived: 100, cwmetric.EventsDelivered: 90, cwmetric.LinesDeadLettered: 2,
		cwmetric.LinesFailed: 0, cwmetric.LinesInFlight: 8, cwmetric.KafkaQueueBytes: 4096, cwmetric.DeliveryStalled: 0}
	want2 := map[string]float64{cwmetric.LinesReceived: 50, cwmetric.EventsDelivered: 10, cwmetric.LinesDeadLettered: 0,
		cwmetric.LinesFailed: 1, cwmetric.LinesInFlight: 47, cwmetric.KafkaQueueBytes: 4096, cwmetric.DeliveryStalled: 1}
	for i, c := range []struct {
		rec  map[string]any
		want map[string]float64
		ts   int64
	}{{main1, want1, at.UnixMilli()}, {main2, want2, at.Add(time.Minute).UnixMilli()}} {
		if ts := c.rec["_aws"].(map[string]any)["Timestamp"].(float64); int64(ts) != c.ts {
			t.Errorf("record %d Timestamp = %v, want %d", i, ts, c.ts)
		}
		for name, v := range c.want {
			if c.rec[name] != v {
				t.Errorf("record %d %s = %v, want %v", i, name, c.rec[name], v)
			}
		}
		if c.rec[cwmetric.DimService] != cwmetric.ServiceName {
			t.Errorf("record %d Service = %v", i, c.rec[cwmetric.DimService])
		}
	}
	byReason := map[string]float64{}
	for _, r := range []map[string]any{recs[1], recs[2], recs[4]} {
		byReason[r[cwmetric.DimReason].(string)] += r[cwmetric.DeadLetters].(float64)
	}
	if byReason["invalid_json"] != 4 || byReason["line_too_long"] != 1 {
		t.Errorf("dead letters by reason = %v, want invalid_json 4, line_too_long 1", byReason)
	}
}

var emfUnits = map[string]bool{"Seconds": true, "Microseconds": true, "Milliseconds": true, "Bytes": true, "Kilobytes": true,
	"Megabytes": true, "Gigabytes": true, "Terabytes": true, "Bits": true, "Kilobits": true, "Megabits": true, "Gigabits": true,
	"Terabits": true, "Percent": true, "Count": true, "Bytes/Second": true, "Kilobytes/Second": true, "Megabytes/Second": true,
	"Gigabytes/Second": true, "Terabytes/Second": true, "Bits/Second": true, "Kilobits/Second": true, "Megabits/Second": true,
	"Gigabits/Second": true, "Terabits/Second": true, "Count/Second": true, "None": true}

// parseEMF parses EMF lines and validates each against the specification; other JSON lines (a summary) are
// skipped.
func parseEMF(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		var rec map[string]any
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		meta, ok := rec["_aws"].(map[string]any)
		if !ok {
			continue
		}
		ts, ok := meta["Timestamp"].(float64)
		if !ok || ts != float64(int64(ts)) || ts < 1e12 {
			t.Errorf("_aws.Timestamp = %v, want epoch milliseconds", meta["Timestamp"])
		}
		dirs, ok := meta["CloudWatchMetrics"].([]any)
		if !ok || len(dirs) == 0 {
			t.Fatalf("_aws.CloudWatchMetrics = %v, want a non-empty array", meta["CloudWatchMetrics"])
		}
		for _, d := range dirs {
			dir := d.(map[string]any)
			if ns, _ := dir["Namespace"].(string); ns == "" || len(ns) > 256 {
				t.Errorf("directive Namespace = %v", dir["Namespace"])
			}
			sets, _ := dir["Dimensions"].([]any)
			if len(sets) == 0 {
				t.Errorf("directive Dimensions = %v, want at least one set", dir["Dimensions"])
			}
			for _, s := range sets {
				names := s.([]any)
				if len(names) > 30 {
					t.Errorf("dimension set of %d names, at most 30", len(names))
				}
				for _, n := range names {
					if v, ok := rec[n.(string)].(string); !ok || v == "" {
						t.Errorf("dimension %v has no string value at the root: %v", n, rec[n.(string)])
					}
				}
			}
			ms, _ := dir["Metrics"].([]any)
			if len(ms) == 0 || len(ms) > 100 {
				t.Errorf("directive has %d metrics, want 1-100", len(ms))
			}
			for _, m := range ms {
				md := m.(map[string]any)
				name, _ := md["Name"].(string)
				if _, ok := rec[name].(float64); !ok {
					t.Errorf("metric %q has no number value at the root: %v", name, rec[name])
				}
				if u, ok := md["Unit"]; ok && !emfUnits[u.(string)] {
					t.Errorf("metric %q unit %v is not a CloudWatch unit", name, u)
				}
			}
		}
		out = append(out, rec)
	}
	return out
}

// TestDeliveryFailuresLoggedAsEpisodes: lines Kafka gives up on (a message timeout hits every line in flight
// at once, thousands with a frozen broker) are one WARN per episode with counts by error, one repeat per
// interval while it lasts and one INFO at its end: never a WARN per line.
func TestDeliveryFailuresLoggedAsEpisodes(t *testing.T) {
	f := newWatchFixture()
	f.w.setPhase(phaseReading, nil)
	h, prod, _ := newTestHandler(t, 1)
	h.counts, h.log = f.counts, f.w.log
	f.w.reasons = f.counts.Reasons
	timedOut := kafka.NewError(kafka.ErrMsgTimedOut, "Local: Message timed out", false)
	replicas := kafka.NewError(kafka.ErrNotEnoughReplicas, "Broker: Not enough in-sync replicas", false)
	send := func(first, n int, err error) {
		lines := make([][]byte, n)
		for i := range lines {
			lines[i] = validLine(t, first+i)
		}
		h.HandleLines(context.Background(), tcpin.Source{Remote: "test"}, lines)
		settle(h, prod, map[string]error{mainTopic: err}) // Kafka gives up on them
		settle(h, prod, nil)                              // their dead letters are stored
	}
	send(0, 2000, timedOut)
	f.step(time.Second)
	send(2000, 500, timedOut)
	send(2500, 10, replicas)
	f.step(30 * time.Second) // the repeat carries the interval's counts
	f.step(45 * time.Second) // quiet for a whole interval: over
	recs := logRecords(t, f.logs)
	want := "WARN lines dead-lettered; WARN deliveries failed; WARN lines still being dead-lettered; " +
		"WARN deliveries still failing; INFO dead-lettering stopped; INFO delivery failures stopped"
	if got := msgs(recs); got != want {
		if len(got) > 300 {
			got = got[:300] + "..."
		}
		t.Fatalf("%d log records: %s\nwant %s", len(recs), got, want)
	}
	first, repeat, end := recs[1], recs[3], recs[5]
	if errs := first["errors"].(map[string]any); first["count"] != 2000.0 || errs[timedOut.Error()] != 2000.0 {
		t.Errorf("first record = %v, want 2000 lines timed out", first)
	}
	if errs := repeat["errors"].(map[string]any); repeat["count"] != 510.0 || errs[timedOut.Error()] != 500.0 ||
		errs[replicas.Error()] != 10.0 || repeat["total"] != 2510.0 {
		t.Errorf("repeat record = %v, want the interval's 500 timed out and 10 refused, 2510 in all", repeat)
	}
	if errs := end["errors"].(map[string]any); end["count"] != 2510.0 || errs[timedOut.Error()] != 2500.0 {
		t.Errorf("end record = %v, want 2510 in all", end)
	}
	if s := f.counts.Snapshot(); s.DeadLettered != 2510 || s.Failed != 0 || s.InFlight != 0 {
		t.Errorf("ledger = %+v, want 2510 dead-lettered", s)
	}
}

// TestWatcherCredentialsEpisode checks a service waiting for its secret: alive, not ready and not accepting
// with the latest reason, one WARN for the whole episode however many reads fail and whatever their reasons,
// one INFO when the credentials come, and the gauge following it.
func TestWatcherCredentialsEpisode(t *testing.T) {
	f := newWatchFixture()
	notFound := fmt.Errorf("reading secret S: %w", secrets.ErrNotFound)
	malformed := fmt.Errorf("parsing secret S: %w", secrets.ErrMalformed)
	for i, err := range []error{notFound, notFound, malformed} {
		f.now = f.now.Add(time.Duration(i+1) * time.Second)
		f.w.credentialsFailed(err, time.Second)
		if !f.w.credentialsUnavailable() {
			t.Fatalf("credentialsUnavailable() = false after %d failed reads", i+1)
		}
		if h := f.w.health(); h.Status != "ok" || h.State != "waiting_for_credentials" || h.Reason != err.Error() {
			t.Errorf("health = %+v, want ok waiting_for_credentials with %q", h, err)
		}
		if r := f.w.ready(); r.Status != "not_ready" || !strings.Contains(r.Reason, err.Error()) ||
			!strings.Contains(r.Reason, fmt.Sprintf("failed reads: %d", i+1)) {
			t.Errorf("ready = %+v, want not_ready with %q after %d reads", r, err, i+1)
		}
		if a := f.w.accepting(); a.Status != "not_accepting" {
			t.Errorf("accepting = %+v, want not_accepting", a)
		}
	}
	f.now = f.now.Add(4 * time.Second)
	f.w.credentialsLoaded()
	if f.w.credentialsUnavailable() {
		t.Error("credentialsUnavailable() = true after the credentials came")
	}
	if r := f.w.ready(); r.Status != "not_ready" || !strings.Contains(r.Reason, "starting") {
		t.Errorf("ready after the credentials, before the topics = %+v, want not_ready starting", r)
	}
	f.w.credentialsLoaded() // no episode open: no line
	recs := logRecords(t, f.logs)
	if got := msgs(recs); got != "WARN kafka credentials unavailable; INFO kafka credentials available" {
		t.Fatalf("log = %s, want one WARN and one INFO", got)
	}
	if recs[1]["unavailable_seconds"] != 9.0 || recs[1]["failed_attempts"] != 3.0 {
		t.Errorf("recovery record = %v, want 9 s and 3 failed attempts", recs[1])
	}
}

// TestWatcherAcceptingIgnoresKafkaProbes checks what the load balancer reads: accepting from the start of
// reading until it stops, through failed Kafka probes (which make /readyz not ready), so that a Kafka outage
// does not make ECS replace every reader.
func TestWatcherAcceptingIgnoresKafkaProbes(t *testing.T) {
	f := newWatchFixture()
	if a := f.w.accepting(); a.Status != "not_accepting" {
		t.Fatalf("accepting before reading = %+v", a)
	}
	f.w.setPhase(phaseReading, nil)
	f.w.recordProbe(kafkaout.ErrAuthentication)
	if r, a := f.w.ready(), f.w.accepting(); r.Status != "not_ready" || a.Status != "accepting" {
		t.Fatalf("after a failed probe: ready = %+v, accepting = %+v; want not_ready and accepting", r, a)
	}
	f.w.setPhase(phaseStopped, nil)
	if a := f.w.accepting(); a.Status != "not_accepting" || !strings.Contains(a.Reason, "stopped") {
		t.Fatalf("accepting after reading stopped = %+v", a)
	}
}
