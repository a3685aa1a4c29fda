package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// syncBuffer is a bytes.Buffer safe for the run's writer and the test's reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// probe polls url until want(code, body) holds, failing after d with the last answer.
func probe(t *testing.T, url string, d time.Duration, what string, want func(int, map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	var lastCode int
	var last []byte
	for time.Now().Before(deadline) {
		resp, err := http.Get(url) //nolint:noctx // a loopback probe with the test's own deadline loop
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var body map[string]any
			if json.Unmarshal(b, &body) != nil {
				t.Fatalf("%s answered %d with a body that is not JSON: %q", url, resp.StatusCode, b)
			}
			lastCode, last = resp.StatusCode, b
			if want(resp.StatusCode, body) {
				t.Logf("%s: %d %s", what, resp.StatusCode, bytes.TrimSpace(b))
				return body
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s did not reach the state within %v; last %d %s", what, url, d, lastCode, last)
	return nil
}

// TestIntegrationHealthKafkaClientFailed runs the reader against the real broker and makes librdkafka raise
// a fatal error on its producer (the only state no broker can be asked to cause; the broker faults are in
// the chaos suite). /healthz turns from 200 to 503 naming the failure, and the EMF records written meanwhile
// hold the counters. The failure stops the run (TestIntegrationFatalKafkaError checks how); the test holds it
// at the end of its drain to look at /healthz then.
func TestIntegrationHealthKafkaClientFailed(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "health", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln := sourceListener(t)
	srcCtx, stopSource := context.WithCancel(ctx)
	defer stopSource()
	src := serveSource(srcCtx, ln, logsource.Config{Seed: 3, FirstID: 1, Rate: 2000, TimeMode: logsource.TimeSynthetic, Start: testStart})
	addr := freeAddr(t)
	cfg := readerConfig(t, bootstrap, ln.Addr().String(), topic, dlq, "--metrics-addr", addr, "--emf-interval", "200ms",
		"--drain-timeout", "2s")

	prods := make(chan *kafkaout.Producer, 1)
	testHookProducer = func(p *kafkaout.Producer) { prods <- p }
	drained, release := make(chan struct{}), make(chan struct{})
	testHookDrained = func() {
		close(drained)
		<-release
	}
	var releaseOnce sync.Once
	unhold := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(func() { testHookProducer, testHookDrained = nil, nil })
	defer unhold()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var out syncBuffer
	done := make(chan error, 1)
	go func() {
		_, err := Run(runCtx, cfg, &out, quietLogger())
		done <- err
	}()
	prod := <-prods
	base := "http://" + addr
	probe(t, base+"/readyz", 30*time.Second, "reading", func(c int, b map[string]any) bool { return c == 200 && b["status"] == "ready" })
	probe(t, base+"/healthz", 10*time.Second, "delivering", func(c int, b map[string]any) bool { return c == 200 && b["status"] == "ok" })

	// Some events delivered and counted in an EMF record first, so the records below show both counters.
	for deadline := time.Now().Add(20 * time.Second); ; {
		var delivered float64
		for _, r := range parseEMF(t, out.Bytes()) {
			if v, ok := r[cwmetric.EventsDelivered].(float64); ok {
				delivered += v
			}
		}
		if delivered > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no EMF record with a delivery within 20 s:\n%s", out.Bytes())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := prod.InjectFatalError("injected by the test"); err != nil {
		t.Fatal(err)
	}
	select {
	case <-drained:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop within 30 s of the fatal error")
	}
	body := probe(t, base+"/healthz", 10*time.Second, "kafka client failed", func(c int, b map[string]any) bool {
		return c == 503 && b["state"] == "kafka_failed"
	})
	if r, _ := body["reason"].(string); !strings.Contains(r, "kafka client failed") || !strings.Contains(r, "injected by the test") {
		t.Errorf("reason = %q, want the fatal error", r)
	}
	unhold()
	if err := <-done; !errors.Is(err, kafkaout.ErrFatal) {
		t.Errorf("Run = %v, want the fatal error", err)
	}
	stop()
	stopSource()
	<-src

	recs := parseEMF(t, out.Bytes())
	var received, delivered float64
	for _, r := range recs {
		if r["record"] == "reader_metrics" {
			received += r[cwmetric.LinesReceived].(float64)
			delivered += r[cwmetric.EventsDelivered].(float64)
		}
	}
	if len(recs) < 2 || received == 0 || delivered == 0 {
		t.Errorf("%d EMF records with %v lines received and %v delivered in all, want several records with both > 0", len(recs), received, delivered)
	}
}
