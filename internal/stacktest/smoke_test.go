package stacktest_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

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

// saslSSL is the client configuration the pipeline uses: SASL_SSL with PLAIN, the broker certificate
// verified against caFile, host name included.
func saslSSL(k secrets.Kafka, caFile string) kafka.ConfigMap {
	return kafka.ConfigMap{
		"bootstrap.servers":                     k.BootstrapServers,
		"security.protocol":                     "SASL_SSL",
		"sasl.mechanisms":                       "PLAIN",
		"sasl.username":                         k.Username,
		"sasl.password":                         k.Password,
		"ssl.ca.location":                       caFile,
		"enable.ssl.certificate.verification":   true,
		"ssl.endpoint.identification.algorithm": "https",
		"client.id":                             "stack-smoke-test",
	}
}

// TestIntegrationSmoke is the stack's end-to-end check: credentials from the emulator, a message produced
// over SASL_SSL to a topic of the test's own and read back byte for byte. Never the pipeline's logs_4: the
// demo's ClickHouse table consumes that topic, and a test row there would show up in its queries.
func TestIntegrationSmoke(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	if want := st.Get(t, "KAFKA_BOOTSTRAP_SERVER"); k.BootstrapServers != want {
		t.Fatalf("secret's bootstrap = %q, want the SASL_SSL listener %q", k.BootstrapServers, want)
	}
	caFile := st.Get(t, "KAFKA_CA_FILE")
	topic := kafkatest.UniqueTopic("smoke")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 3)

	pcfg := saslSSL(k, caFile)
	pcfg["acks"] = "all"
	pcfg["enable.idempotence"] = true
	p, err := kafka.NewProducer(&pcfg)
	if err != nil {
		t.Fatalf("creating producer: %v", err)
	}
	defer p.Close()

	value := fmt.Appendf(nil, `{"eventId":1,"level":"Info","source":"smoke","timestamp":%q,"computer":"local","user":"test","message":"smoke %d \u00e9\u00e8 bytes\tkept"}`,
		time.Now().UTC().Format("2006-01-02 15:04:05.000000"), time.Now().UnixNano())
	key := fmt.Appendf(nil, "smoke-%d", time.Now().UnixNano())
	delivery := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            key,
		Value:          value,
	}, delivery); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
	var at kafka.TopicPartition
	select {
	case ev := <-delivery:
		m := ev.(*kafka.Message)
		if m.TopicPartition.Error != nil {
			t.Fatalf("delivery to %s failed: %v", topic, m.TopicPartition.Error)
		}
		at = m.TopicPartition
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery report from %s within 30s", topic)
	}

	ccfg := saslSSL(k, caFile)
	ccfg["group.id"] = fmt.Sprintf("stack-smoke-%d", time.Now().UnixNano())
	ccfg["enable.auto.commit"] = false
	c, err := kafka.NewConsumer(&ccfg)
	if err != nil {
		t.Fatalf("creating consumer: %v", err)
	}
	defer c.Close()
	// Read exactly where the message landed: no group rebalance to wait for, no other message to skip.
	if err := c.Assign([]kafka.TopicPartition{{Topic: &topic, Partition: at.Partition, Offset: at.Offset}}); err != nil {
		t.Fatalf("assigning %s[%d]@%v: %v", topic, at.Partition, at.Offset, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		if time.Now().After(deadline) {
			t.Fatalf("message produced to %s[%d]@%v not read back within 30s", topic, at.Partition, at.Offset)
		}
		msg, err := c.ReadMessage(time.Second)
		if err != nil {
			if kerr, ok := err.(kafka.Error); ok && kerr.IsTimeout() {
				continue
			}
			t.Fatalf("reading %s: %v", topic, err)
		}
		if msg.TopicPartition.Offset != at.Offset {
			t.Fatalf("read offset %v, want %v", msg.TopicPartition.Offset, at.Offset)
		}
		if string(msg.Value) != string(value) || string(msg.Key) != string(key) {
			t.Fatalf("read back key %q value %q, want key %q value %q", msg.Key, msg.Value, key, value)
		}
		return
	}
}

// TestIntegrationSmokeWrongCA: a client trusting another CA must refuse the broker's certificate.
func TestIntegrationSmokeWrongCA(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	cfg := saslSSL(k, stacktest.UnrelatedCA(t))
	err := firstClientError(t, cfg)
	if !strings.Contains(err.Error(), "certificate verify failed") {
		t.Fatalf("error with a foreign CA = %v (code %v), want a certificate verification failure", err, err.Code())
	}
	if err.Code() != kafka.ErrSsl && err.Code() != kafka.ErrAllBrokersDown && err.Code() != kafka.ErrTransport {
		t.Fatalf("error code with a foreign CA = %v, want SSL/transport", err.Code())
	}
}

// TestIntegrationSmokeWrongPassword: the broker must refuse a wrong PLAIN password as an authentication error.
func TestIntegrationSmokeWrongPassword(t *testing.T) {
	st := stacktest.Load(t)
	k := stackCredentials(t, st)
	k.Password = "wrong-" + k.Password[:4]
	err := firstClientError(t, saslSSL(k, st.Get(t, "KAFKA_CA_FILE")))
	if err.Code() != kafka.ErrAuthentication {
		t.Fatalf("error code with a wrong password = %v (%v), want %v", err.Code(), err, kafka.ErrAuthentication)
	}
	if !strings.Contains(err.Error(), "Authentication failed") {
		t.Fatalf("error with a wrong password = %q, want it to say authentication failed", err)
	}
	if strings.Contains(err.Error(), k.Password) {
		t.Fatalf("error %q contains the password", err)
	}
}

// TestIntegrationSmokeSecondUser: the stack's second PLAIN user (for tests) is accepted too.
func TestIntegrationSmokeSecondUser(t *testing.T) {
	st := stacktest.Load(t)
	k := secrets.Kafka{
		BootstrapServers: st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		Username:         st.Get(t, "KAFKA_SASL_TEST_USERNAME"),
		Password:         st.Get(t, "KAFKA_SASL_TEST_PASSWORD"),
	}
	cfg := saslSSL(k, st.Get(t, "KAFKA_CA_FILE"))
	a, err := kafka.NewAdminClient(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	topic := "logs_4_dlq"
	md, err := a.GetMetadata(&topic, false, int(failLimit/time.Millisecond))
	if err != nil {
		t.Fatalf("metadata as %s: %v", k.Username, err)
	}
	if tm := md.Topics[topic]; tm.Error.Code() != kafka.ErrNoError || len(tm.Partitions) != 1 {
		t.Fatalf("topic %s = %+v, want 1 partition and no error", topic, tm)
	}
}

// firstClientError starts a producer with cfg (librdkafka connects to the bootstrap broker at once) and
// returns the first error it reports on its event channel, failing the test after failLimit. A metadata
// request would see the same failure only as a generic transport error at its own timeout, and Close would
// wait for it, so the events are the faster and more precise source.
func firstClientError(t *testing.T, cfg kafka.ConfigMap) kafka.Error {
	t.Helper()
	cfg["log_level"] = 0 // the same failure arrives as an event; keep librdkafka's stderr copy out of the test log
	p, err := kafka.NewProducer(&cfg)
	if err != nil {
		t.Fatalf("creating producer: %v", err)
	}
	defer p.Close()
	deadline := time.After(failLimit)
	var seen []kafka.Error
	for {
		select {
		case ev := <-p.Events():
			kerr, ok := ev.(kafka.Error)
			if !ok {
				continue
			}
			// librdkafka follows the cause with "all brokers down"; prefer the cause.
			if kerr.Code() != kafka.ErrAllBrokersDown {
				return kerr
			}
			seen = append(seen, kerr)
		case <-deadline:
			if len(seen) > 0 {
				return seen[0]
			}
			t.Fatalf("no client error within %v", failLimit)
		}
	}
}
