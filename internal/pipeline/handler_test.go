package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// The ledger's unit tests drive the handler through the producer interface with an in-process fake
// producer: what is under test is the accounting on every path, not Kafka (the integration tests cover
// the same paths against the local broker).

// fakeProducer records what is produced, fails when told to, and lets the test deliver the reports.
type fakeProducer struct {
	mu      sync.Mutex
	fail    map[string]error // topic -> error Produce returns
	sent    []sent
	headers map[string][]kafkaout.Header
}

type sent struct {
	topic string
	value []byte
}

func (p *fakeProducer) Produce(_ context.Context, topic string, value []byte, headers ...kafkaout.Header) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.fail[topic]; err != nil {
		return err
	}
	p.sent = append(p.sent, sent{topic, append([]byte(nil), value...)})
	if len(headers) > 0 {
		if p.headers == nil {
			p.headers = map[string][]kafkaout.Header{}
		}
		p.headers[string(value)] = headers
	}
	return nil
}

// take returns and forgets what was produced since the last call.
func (p *fakeProducer) take() []sent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.sent
	p.sent = nil
	return out
}

// failSink is a dead-letter sink that cannot store anything.
type failSink struct{}

func (failSink) Put(context.Context, DeadLetter) (bool, error) { return false, errors.New("disk full") }
func (failSink) Close() error                                  { return nil }

const (
	mainTopic = "events"
	dlqTopic  = "events_dlq"
)

func validLine(t *testing.T, id int) []byte {
	t.Helper()
	line := fmt.Appendf(nil, `{"eventId":%d,"level":"Info","source":"test","timestamp":"2026-01-02 03:04:05.123456",`+
		`"computer":"c1","user":"u1","message":"m"}`, id)
	if err := event.NewValidator(event.Strict).Validate(line); err != nil {
		t.Fatalf("test line %s does not validate: %v", line, err)
	}
	return line
}

func newTestHandler(t *testing.T, perMessage int) (*handler, *fakeProducer, *metrics) {
	t.Helper()
	prod := &fakeProducer{fail: map[string]error{}}
	counts := &Counts{}
	h := &handler{
		v: event.NewValidator(event.Strict), prod: prod, topic: mainTopic, counts: counts,
		dlq: &kafkaSink{p: prod, topic: dlqTopic}, log: slog.New(slog.DiscardHandler),
		perMessage: perMessage, maxMsg: 1 << 20, produceCtx: context.Background(), stopReading: func() {},
	}
	return h, prod, newMetrics(counts, func() float64 { return 0 })
}

// settle delivers every produced message, failing those of topics in failed.
func settle(h *handler, prod *fakeProducer, failed map[string]error) {
	for _, m := range prod.take() {
		h.delivered(m.topic, m.value, failed[m.topic])
	}
}

// wantLedger checks the summary and that every Prometheus series reads the same counts.
func wantLedger(t *testing.T, h *handler, m *metrics, want Summary) {
	t.Helper()
	got := h.counts.Snapshot()
	if got.Received != want.Received || got.Delivered != want.Delivered || got.DeadLettered != want.DeadLettered ||
		got.Failed != want.Failed || got.InFlight != want.InFlight {
		t.Errorf("ledger = received %d, delivered %d, dead-lettered %d, failed %d, in flight %d; want %d, %d, %d, %d, %d",
			got.Received, got.Delivered, got.DeadLettered, got.Failed, got.InFlight,
			want.Received, want.Delivered, want.DeadLettered, want.Failed, want.InFlight)
	}
	if got.Received != got.Delivered+got.DeadLettered+got.Failed+got.InFlight {
		t.Errorf("ledger %+v: received != delivered + dead_lettered + failed + in_flight", got)
	}
	series := gather(t, m)
	for name, v := range map[string]uint64{
		"logreader_lines_received_total": got.Received, "logreader_events_delivered_total": got.Delivered,
		"logreader_lines_dead_lettered_total": got.DeadLettered, "logreader_lines_failed_total": got.Failed,
		"logreader_lines_in_flight": got.InFlight,
	} {
		if series[name] != float64(v) {
			t.Errorf("metric %s = %v, want %d (the ledger's count)", name, series[name], v)
		}
	}
	for reason, n := range h.counts.Reasons() {
		if key := `logreader_dead_letters_total{reason="` + reason + `"}`; series[key] != float64(n) {
			t.Errorf("metric %s = %v, want %d", key, series[key], n)
		}
	}
}

func gather(t *testing.T, m *metrics) map[string]float64 {
	t.Helper()
	families, err := m.reg.Gather()
	if err != nil {
		t.Fatalf("gathering metrics: %v", err)
	}
	out := map[string]float64{}
	for _, f := range families {
		for _, mt := range f.GetMetric() {
			key := f.GetName()
			for _, l := range mt.GetLabel() {
				key += `{` + l.GetName() + `="` + l.GetValue() + `"}`
			}
			out[key] = value(mt)
		}
	}
	return out
}

func value(m *dto.Metric) float64 {
	switch {
	case m.GetCounter() != nil:
		return m.GetCounter().GetValue()
	case m.GetGauge() != nil:
		return m.GetGauge().GetValue()
	}
	return 0
}

var src = tcpin.Source{Remote: "127.0.0.1:1"}

func TestLedgerEveryPath(t *testing.T) {
	errTimeout := errors.New("message timed out")
	tests := []struct {
		name       string
		perMessage int
		run        func(t *testing.T, h *handler, prod *fakeProducer)
		want       Summary
		reasons    map[string]uint64
	}{
		{name: "delivered", perMessage: 1, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2)})
			settle(h, prod, nil)
		}, want: Summary{Received: 2, Delivered: 2}},
		{name: "in flight until the delivery report", perMessage: 1, run: func(t *testing.T, h *handler, _ *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1)})
		}, want: Summary{Received: 1, InFlight: 1}},
		{name: "invalid line dead-lettered", perMessage: 1, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), []byte(`{"eventId":`)})
			settle(h, prod, nil)
		}, want: Summary{Received: 2, Delivered: 1, DeadLettered: 1}, reasons: map[string]uint64{"invalid_json": 1}},
		{name: "framer reject dead-lettered", perMessage: 1, run: func(_ *testing.T, h *handler, prod *fakeProducer) {
			h.HandleReject(context.Background(), src, []byte("xxxx"), event.ReasonOversized, "line of 2 MiB")
			settle(h, prod, nil)
		}, want: Summary{Received: 1, DeadLettered: 1}, reasons: map[string]uint64{"oversized_line": 1}},
		{name: "produce error dead-letters the line", perMessage: 1, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			prod.fail[mainTopic] = errors.New("local queue full")
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1)})
			settle(h, prod, nil)
		}, want: Summary{Received: 1, DeadLettered: 1}, reasons: map[string]uint64{ReasonDeliveryFailed: 1}},
		{name: "delivery error dead-letters the line", perMessage: 1, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2)})
			settle(h, prod, map[string]error{mainTopic: errTimeout}) // both fail; each is dead-lettered
			settle(h, prod, nil)                                     // the dead letters arrive
		}, want: Summary{Received: 2, DeadLettered: 2}, reasons: map[string]uint64{ReasonDeliveryFailed: 2}},
		{name: "joined message: a delivery error dead-letters each event", perMessage: 10, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2), validLine(t, 3)})
			if n := len(prod.sent); n != 1 {
				t.Fatalf("%d messages produced, want 3 events joined into 1", n)
			}
			settle(h, prod, map[string]error{mainTopic: errTimeout})
			settle(h, prod, nil)
		}, want: Summary{Received: 3, DeadLettered: 3}, reasons: map[string]uint64{ReasonDeliveryFailed: 3}},
		{name: "joined message delivered counts every event", perMessage: 10, run: func(t *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2), []byte("nope"), validLine(t, 3)})
			settle(h, prod, nil)
		}, want: Summary{Received: 4, Delivered: 3, DeadLettered: 1}, reasons: map[string]uint64{"invalid_json": 1}},
		{name: "dead-letter produce error: failed", perMessage: 1, run: func(_ *testing.T, h *handler, prod *fakeProducer) {
			prod.fail[dlqTopic] = errors.New("local queue full")
			h.HandleLines(context.Background(), src, [][]byte{[]byte("nope")})
		}, want: Summary{Received: 1, Failed: 1}, reasons: map[string]uint64{"invalid_json": 1}},
		{name: "dead-letter delivery error: failed", perMessage: 1, run: func(_ *testing.T, h *handler, prod *fakeProducer) {
			h.HandleLines(context.Background(), src, [][]byte{[]byte("nope")})
			settle(h, prod, map[string]error{dlqTopic: errTimeout})
		}, want: Summary{Received: 1, Failed: 1}, reasons: map[string]uint64{"invalid_json": 1}},
		{name: "synchronous sink error: failed", perMessage: 1, run: func(_ *testing.T, h *handler, _ *fakeProducer) {
			h.dlq = failSink{}
			h.HandleLines(context.Background(), src, [][]byte{[]byte("nope")})
		}, want: Summary{Received: 1, Failed: 1}, reasons: map[string]uint64{"invalid_json": 1}},
		{name: "shutdown: purged messages with the producer closed are failed, not lost", perMessage: 1,
			run: func(t *testing.T, h *handler, prod *fakeProducer) {
				h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2), []byte("nope")})
				// Close purges the queue: every report fails, and the producer takes nothing more.
				prod.fail[mainTopic], prod.fail[dlqTopic] = kafkaout.ErrClosed, kafkaout.ErrClosed
				settle(h, prod, map[string]error{mainTopic: errors.New("purged"), dlqTopic: errors.New("purged")})
			}, want: Summary{Received: 3, Failed: 3}, reasons: map[string]uint64{"invalid_json": 1, ReasonDeliveryFailed: 2}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, prod, m := newTestHandler(t, tt.perMessage)
			tt.run(t, h, prod)
			wantLedger(t, h, m, tt.want)
			got := h.counts.Reasons()
			if len(got) != len(tt.reasons) {
				t.Errorf("dead-letter reasons = %v, want %v", got, tt.reasons)
			}
			for r, n := range tt.reasons {
				if got[r] != n {
					t.Errorf("dead-letter reasons = %v, want %v", got, tt.reasons)
				}
			}
		})
	}
}

func TestDeadLetterHeaders(t *testing.T) {
	h, prod, _ := newTestHandler(t, 1)
	h.HandleLines(context.Background(), src, [][]byte{[]byte("nope")})
	hdrs := prod.headers["nope"]
	want := map[string]string{"reason": "invalid_json", "source": src.Remote}
	got := map[string]string{}
	for _, hd := range hdrs {
		got[hd.Key] = string(hd.Value)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("dead-letter header %s = %q, want %q (headers %v)", k, got[k], v, got)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, got["received_at"]); err != nil {
		t.Errorf("received_at header %q: %v", got["received_at"], err)
	}
}

func TestBoundedRunStopsAtMaxEvents(t *testing.T) {
	h, _, _ := newTestHandler(t, 1)
	stopped := 0
	h.maxEvents, h.stopReading = 3, func() { stopped++ }
	h.HandleLines(context.Background(), src, [][]byte{validLine(t, 1), validLine(t, 2)})
	if stopped != 0 {
		t.Fatalf("stopped reading after 2 of 3 lines")
	}
	h.HandleReject(context.Background(), src, []byte("x"), event.ReasonTruncated, "")
	if stopped == 0 {
		t.Fatalf("did not stop reading at 3 lines (a rejected line counts too)")
	}
}

// TestClientDownLoggedOnce: once the Kafka client failed, every line it cannot take fails alike, and the
// close that follows the failure purges the rest with "producer closed": each message saying the client is
// down is logged once for the run, whichever of the two errors came first (the fatal-error test saw the
// same ERROR twice, once per error, when a dead-letter attempt met the closing client).
func TestClientDownLoggedOnce(t *testing.T) {
	h, prod, _ := newTestHandler(t, 1)
	var logs bytes.Buffer
	h.log = slog.New(slog.NewJSONHandler(&logs, nil))
	fatal := fmt.Errorf("%w: %w", kafkaout.ErrFatal, errors.New("Broker: Broker received an out of order sequence number"))
	closed := fmt.Errorf("%w: %w", kafkaout.ErrClosed, errors.New("Local: Purged in flight"))
	src := tcpin.Source{Remote: "test"}
	for i, err := range []error{fatal, fatal, closed, closed} {
		prod.fail[mainTopic], prod.fail[dlqTopic] = err, err
		h.HandleLines(context.Background(), src, [][]byte{validLine(t, 2*i+1), []byte("nope")})
		delete(prod.fail, mainTopic)
		delete(prod.fail, dlqTopic)
		h.HandleLines(context.Background(), src, [][]byte{validLine(t, 2*i+2)})
		settle(h, prod, map[string]error{mainTopic: err, dlqTopic: err})
		settle(h, prod, map[string]error{dlqTopic: err})
	}
	counts := map[string]int{}
	for _, rec := range logRecords(t, &logs) {
		counts[rec["level"].(string)+" "+rec["msg"].(string)]++
	}
	if len(counts) == 0 {
		t.Fatal("nothing logged: the client's failure must be logged")
	}
	for msg, n := range counts {
		if n != 1 {
			t.Errorf("logged %d times: %s (all: %v)", n, msg, counts)
		}
	}
}
