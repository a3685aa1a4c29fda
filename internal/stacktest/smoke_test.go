package stacktest_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// failLimit bounds how long a misconfigured client may take to report its failure.
const failLimit = 20 * time.Second

// stackCredentials reads MWAA_Secrets from the stack's emulator the way the reader does.
func stackCredentials(t *testing.T, st *stacktest.Stack) secrets.Kafka {
	t.Helper()
	st.SetAWSEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	k, err := secrets.FromSecretsManager(ctx, secrets.Options{
		SecretName: st.Get(t, "SECRET_NAME"),
		Endpoint:   st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER"),
	})
	if err != nil {
		t.Fatalf("reading %s from the emulator: %v", st.Get(t, "SECRET_NAME"), err)
	}
	return k
}

// saslSSL is the connection the pipeline uses: SASL_SSL with PLAIN, the broker certificate verified against
// caFile, host name included (kafkaout's defaults).
func saslSSL(k secrets.Kafka, caFile string) kafkaout.Connection {
	return kafkaout.Connection{SecurityProtocol: kafkaout.SASLSSL, CAFile: caFile}.WithCredentials(k)
}

// TestIntegrationSmoke is the stack's end-to-end check: credentials from the emulator, a message produced
// over SASL_SSL by the pipeline's producer to a topic of the test's own, and read back byte for byte over
// SASL_SSL. Never the pipeline's logs_4: the demo's ClickHouse table consumes that topic, and a test row
// there would show up in its queries.
func TestIntegrationSmoke(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	if want := st.Get(t, "KAFKA_BOOTSTRAP_SERVER"); k.BootstrapServers != want {
		t.Fatalf("secret's bootstrap = %q, want the SASL_SSL listener %q", k.BootstrapServers, want)
	}
	conn := saslSSL(k, st.Get(t, "KAFKA_CA_FILE"))
	topic := kafkatest.UniqueTopic("smoke")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 3)

	type report struct {
		topic string
		value []byte
		err   error
	}
	var (
		mu      sync.Mutex
		reports []report
	)
	// The producer's defaults are the pipeline's: acks=all with idempotence.
	p, err := kafkaout.New(kafkaout.Config{Connection: conn}, func(topic string, value []byte, err error) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, report{topic, bytes.Clone(value), err})
	})
	if err != nil {
		t.Fatalf("creating producer: %v", err)
	}
	defer p.Close()

	value := fmt.Appendf(nil, `{"eventId":1,"level":"Info","source":"smoke","timestamp":%q,"computer":"local","user":"test","message":"smoke %d \u00e9\u00e8 bytes\tkept"}`,
		time.Now().UTC().Format("2006-01-02 15:04:05.000000"), time.Now().UnixNano())
	header := kafkaout.Header{Key: "smoke-id", Value: fmt.Appendf(nil, "smoke-%d", time.Now().UnixNano())}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.CheckTopic(ctx, topic); err != nil {
		t.Fatalf("checking %s over SASL_SSL: %v", topic, err)
	}
	if err := p.Produce(ctx, topic, value, header); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
	if left := p.Flush(ctx); left != 0 {
		t.Fatalf("no delivery report from %s within 30s (%d message(s) left)", topic, left)
	}
	p.Close() // waits for the delivery report
	if len(reports) != 1 {
		t.Fatalf("%d delivery reports, want 1: %+v", len(reports), reports)
	}
	if r := reports[0]; r.err != nil || r.topic != topic || !bytes.Equal(r.value, value) {
		t.Fatalf("delivery report = topic %q value %q err %v, want %q, the value produced and no error", r.topic, r.value, r.err, topic)
	}

	// Read the topic back over SASL_SSL too; it is the test's own, so it holds exactly this one record.
	props, err := conn.Properties("stack-smoke-test")
	if err != nil {
		t.Fatalf("consumer properties: %v", err)
	}
	var got []kafkatest.Record
	kafkatest.ReadToEndWith(t, props, topic, func(r kafkatest.Record) { got = append(got, r) })
	if len(got) != 1 {
		t.Fatalf("read %d records back from %s, want exactly 1: %+v", len(got), topic, got)
	}
	wantHeaders := map[string]string{header.Key: string(header.Value)}
	if r := got[0]; !bytes.Equal(r.Value, value) || !maps.Equal(r.Headers, wantHeaders) {
		t.Fatalf("read back value %q headers %q, want value %q headers %q", r.Value, r.Headers, value, wantHeaders)
	}
}

// probeBrokers asks the brokers for metadata through conn and returns the error kafkaout names the cause
// with, failing the test when there is none or when it took longer than failLimit.
func probeBrokers(t *testing.T, conn kafkaout.Connection) error {
	t.Helper()
	pr, err := kafkaout.NewProbe(conn, "stack-smoke-test")
	if err != nil {
		t.Fatalf("creating probe: %v", err)
	}
	defer pr.Close()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), failLimit)
	defer cancel()
	err = pr.Brokers(ctx)
	if err == nil {
		t.Fatal("the brokers accepted a misconfigured client")
	}
	if d := time.Since(start); d > failLimit {
		t.Fatalf("failure reported after %v, want within %v: %v", d, failLimit, err)
	}
	return err
}

// onlyCause fails the test unless err wraps want and none of kafkaout's other causes.
func onlyCause(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	for _, other := range []error{kafkaout.ErrAuthentication, kafkaout.ErrTLS, kafkaout.ErrUnreachable, kafkaout.ErrTopicNotFound} {
		if other != want && errors.Is(err, other) {
			t.Fatalf("error = %v, want only %v, not %v", err, want, other)
		}
	}
}

// TestIntegrationSmokeWrongCA: a client trusting another CA must refuse the broker's certificate.
func TestIntegrationSmokeWrongCA(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	err := probeBrokers(t, saslSSL(k, stacktest.UnrelatedCA(t)))
	onlyCause(t, err, kafkaout.ErrTLS)
	if !strings.Contains(err.Error(), "certificate verify failed") {
		t.Fatalf("error with a foreign CA = %v, want it to say the certificate failed verification", err)
	}
}

// TestIntegrationSmokeWrongPassword: the broker must refuse a wrong PLAIN password as an authentication error.
func TestIntegrationSmokeWrongPassword(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	password := k.Password
	k.Password = "wrong-" + password[:4]
	err := probeBrokers(t, saslSSL(k, st.Get(t, "KAFKA_CA_FILE")))
	onlyCause(t, err, kafkaout.ErrAuthentication)
	if !strings.Contains(err.Error(), "Authentication failed") {
		t.Fatalf("error with a wrong password = %q, want it to say authentication failed", err)
	}
	for _, p := range []string{k.Password, password} {
		if strings.Contains(err.Error(), p) {
			t.Fatalf("error %q contains a password", err)
		}
	}
}

// TestIntegrationSmokeSecondUser: the stack's second PLAIN user (for tests) is accepted too, and sees a topic's
// metadata as the broker holds it.
func TestIntegrationSmokeSecondUser(t *testing.T) {
	st := stacktest.Load(t)
	conn := saslSSL(secrets.Kafka{
		BootstrapServers: st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		Username:         st.Get(t, "KAFKA_SASL_TEST_USERNAME"),
		Password:         st.Get(t, "KAFKA_SASL_TEST_PASSWORD"),
	}, st.Get(t, "KAFKA_CA_FILE"))
	topic := kafkatest.UniqueTopic("smoke_user")
	const partitions = 2
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, partitions)

	pr, err := kafkaout.NewProbe(conn, "stack-smoke-test")
	if err != nil {
		t.Fatalf("creating probe: %v", err)
	}
	defer pr.Close()
	ctx, cancel := context.WithTimeout(context.Background(), failLimit)
	defer cancel()
	if err := pr.CheckTopic(ctx, topic); err != nil {
		t.Fatalf("checking %s as %s: %v", topic, conn.Username, err)
	}
	if n, err := pr.TopicMessages(ctx, topic); err != nil || n != 0 {
		t.Fatalf("messages in the new topic %s as %s = %d, %v; want 0 and no error", topic, conn.Username, n, err)
	}
	missing := kafkatest.UniqueTopic("smoke_missing")
	if err := pr.CheckTopic(ctx, missing); !errors.Is(err, kafkaout.ErrTopicNotFound) {
		t.Fatalf("checking the missing topic %s as %s = %v, want %v", missing, conn.Username, err, kafkaout.ErrTopicNotFound)
	}

	props, err := conn.Properties("stack-smoke-test")
	if err != nil {
		t.Fatalf("client properties: %v", err)
	}
	if n := kafkatest.Partitions(t, props, topic); n != partitions {
		t.Fatalf("topic %s as %s has %d partitions, want %d", topic, conn.Username, n, partitions)
	}
}
