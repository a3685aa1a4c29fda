package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

func saslConfig(t *testing.T, st *stacktest.Stack) Config {
	return Config{Connection: Connection{
		Brokers: st.Get(t, "KAFKA_BOOTSTRAP_SERVER"), Username: st.Get(t, "KAFKA_SASL_USERNAME"),
		Password: st.Get(t, "KAFKA_SASL_PASSWORD"), CAFile: st.Get(t, "KAFKA_CA_FILE"),
	}}
}

func checkWith(t *testing.T, cfg Config, topic string) error {
	t.Helper()
	p, err := New(cfg, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	return p.CheckTopic(ctx, topic)
}

func TestIntegrationCheckTopicNamesTheCause(t *testing.T) {
	st := stacktest.Load(t)
	good := saslConfig(t, st)

	wrongPassword := good
	wrongPassword.Password = "not-the-password"

	otherCA := filepath.Join(t.TempDir(), "ca.pem")
	// A CA that did not sign the broker's certificate: the system bundle.
	if b, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt"); err == nil {
		os.WriteFile(otherCA, b, 0o600)
	} else {
		t.Fatalf("reading the system CA bundle: %v", err)
	}
	wrongCA := good
	wrongCA.CAFile = otherCA

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := ln.Addr().String()
	ln.Close()
	unreachable := Config{Connection: Connection{Brokers: closedAddr, SecurityProtocol: Plaintext}}

	tests := []struct {
		name  string
		cfg   Config
		topic string
		want  error
	}{
		{"existing topic over SASL_SSL", good, "logs_4", nil},
		{"missing topic", good, "no_such_topic_" + kafkatest.UniqueTopic("x"), ErrTopicNotFound},
		{"wrong password", wrongPassword, "logs_4", ErrAuthentication},
		{"broker certificate not signed by the CA", wrongCA, "logs_4", ErrTLS},
		{"nothing listening", unreachable, "logs_4", ErrUnreachable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			err := checkWith(t, tt.cfg, tt.topic)
			if !errors.Is(err, tt.want) {
				t.Fatalf("CheckTopic error = %v, want %v", err, tt.want)
			}
			if err != nil && strings.Contains(err.Error(), good.Password) {
				t.Fatalf("error leaks the password: %v", err)
			}
			limit := 10 * time.Second
			if errors.Is(tt.want, ErrAuthentication) || errors.Is(tt.want, ErrTLS) {
				limit = 4 * time.Second // known within a second: no need to wait out the deadline
			}
			if d := time.Since(start); d > limit {
				t.Errorf("took %v, want an answer within %v", d, limit)
			}
		})
	}
}

func TestIntegrationProduceReportsEveryDelivery(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic := kafkatest.UniqueTopic("kafkaout")
	kafkatest.CreateTopic(t, bootstrap, topic, 2)

	var mu sync.Mutex
	delivered, failed := 0, 0
	seen := make(map[string]int)
	// A tiny local queue forces Produce through its wait-for-room path (and the ring of pending messages,
	// sized from it, through its full path as reports arrive out of order across the two partitions).
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext}, QueueMaxMessages: 100}, func(_ string, v []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		seen[string(v)]++ // each report must carry its own message's bytes
		if err != nil {
			failed++
		} else {
			delivered++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 20000
	for i := 0; i < n; i++ {
		if err := p.Produce(ctx, topic, []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
			t.Fatalf("Produce #%d: %v", i, err)
		}
	}
	if left := p.Flush(ctx); left != 0 {
		t.Fatalf("Flush left %d messages", left)
	}
	p.Close()
	if delivered != n || failed != 0 {
		t.Fatalf("delivered=%d failed=%d, want %d and 0", delivered, failed, n)
	}
	for i := 0; i < n; i++ {
		if v := fmt.Sprintf(`{"n":%d}`, i); seen[v] != 1 {
			t.Fatalf("the value %s came back in %d delivery reports, want 1", v, seen[v])
		}
	}
	if err := p.Produce(ctx, topic, []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Produce after Close = %v, want ErrClosed", err)
	}
	if got := len(kafkatest.ReadAll(t, bootstrap, topic, n, time.Minute)); got != n {
		t.Fatalf("topic holds %d messages, want %d", got, n)
	}
}

// A message librdkafka finally gives up on comes back with its own bytes, for the caller to keep (the
// pipeline dead-letters them): here every message times out against a port where no broker listens.
func TestIntegrationFailedDeliveryReturnsTheValue(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now

	var mu sync.Mutex
	var kept [][]byte
	reported := make(chan struct{}, 64)
	p, err := New(Config{Connection: Connection{Brokers: addr, SecurityProtocol: Plaintext},
		Overrides: map[string]string{"message.timeout.ms": "300"}}, func(_ string, v []byte, err error) {
		if err == nil {
			t.Errorf("delivery of %q to a port without a broker reported success", v)
		}
		mu.Lock()
		kept = append(kept, v) // kept past the call: a failed message's bytes are the caller's
		mu.Unlock()
		reported <- struct{}{}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	const n = 20
	for i := range n {
		if err := p.Produce(ctx, "nowhere", []byte(fmt.Sprintf("line %02d", i))); err != nil {
			t.Fatalf("Produce #%d: %v", i, err)
		}
	}
	for range n {
		select {
		case <-reported:
		case <-ctx.Done():
			t.Fatalf("only %d of %d failed deliveries reported", len(kept), n)
		}
	}
	// More messages after the failures reuse the ring's room; the kept bytes must not change under them.
	for i := range n {
		if err := p.Produce(ctx, "nowhere", []byte("overwrite?")); err != nil {
			t.Fatalf("Produce #%d: %v", i, err)
		}
	}
	p.Flush(ctx)
	mu.Lock()
	defer mu.Unlock()
	got := make(map[string]bool)
	for _, v := range kept[:n] {
		got[string(v)] = true
	}
	for i := range n {
		if v := fmt.Sprintf("line %02d", i); !got[v] {
			t.Errorf("no failed report carried %q; reports: %q", v, kept[:n])
		}
	}
}

// Flush returns only once every DeliveryFunc has returned: librdkafka's own count reaches zero when the
// last report is taken off its events channel, while the report is still being handled, and a caller that
// reads its counts after Flush found one message missing (delivered 299 of 300, failed 0).
func TestIntegrationFlushWaitsForTheReports(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic := kafkatest.UniqueTopic("kafkaout_flush")
	kafkatest.CreateTopic(t, bootstrap, topic, 1)

	var mu sync.Mutex
	reported := 0
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext}}, func(_ string, _ []byte, err error) {
		if err != nil {
			t.Errorf("delivery failed: %v", err)
		}
		time.Sleep(300 * time.Millisecond) // a slow report: a dead-letter write, a busy ledger
		mu.Lock()
		reported++
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const n = 3
	for i := range n {
		if err := p.Produce(ctx, topic, []byte(fmt.Sprintf("m%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if left := p.Flush(ctx); left != 0 {
		t.Fatalf("Flush left %d messages", left)
	}
	mu.Lock()
	got := reported
	mu.Unlock()
	if got != n {
		t.Fatalf("Flush returned with %d of %d delivery reports handled", got, n)
	}
	if p.InFlight() != 0 {
		t.Fatalf("InFlight = %d after Flush", p.InFlight())
	}
}
