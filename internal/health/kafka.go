package health

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// kafkaProbe asks the brokers for metadata with the credentials from the secret. It uses librdkafka, the
// client the reader produces with, so a broker or TLS setting that breaks the reader breaks this check too.
type kafkaProbe struct {
	p       *kafka.Producer
	lastErr atomic.Pointer[kafka.Error]
	// causeErr keeps the last authentication or TLS error: librdkafka follows it with "all brokers are
	// down", which would hide why they are down.
	causeErr atomic.Pointer[kafka.Error]
	wg       sync.WaitGroup
}

func newKafkaProbe(cfg Config, creds secrets.Kafka) (*kafkaProbe, error) {
	if strings.TrimSpace(creds.BootstrapServers) == "" {
		return nil, fmt.Errorf("%w: the secret has no bootstrap server", ErrInvalidConfig)
	}
	m := kafka.ConfigMap{
		"bootstrap.servers":    creds.BootstrapServers,
		"client.id":            "log-pipeline-health",
		"security.protocol":    cfg.SecurityProtocol,
		"log.connection.close": false,
		// A health check must not create the topic it is checking for.
		"allow.auto.create.topics": false,
		// librdkafka's own log lines would interleave with the Lambda's JSON output; client errors still
		// arrive as events and name the cause in the verdict.
		"log_level": 0,
	}
	if cfg.SecurityProtocol == "sasl_ssl" {
		if creds.Username == "" || creds.Password == "" {
			return nil, fmt.Errorf("%w: sasl_ssl needs a username and password in the secret", ErrInvalidConfig)
		}
		m["sasl.mechanisms"] = "PLAIN"
		m["sasl.username"] = creds.Username
		m["sasl.password"] = creds.Password
		m["ssl.endpoint.identification.algorithm"] = "https"
		if cfg.CAFile != "" {
			m["ssl.ca.location"] = cfg.CAFile
		}
	}
	p, err := kafka.NewProducer(&m)
	if err != nil {
		return nil, fmt.Errorf("creating kafka client: %w", err)
	}
	k := &kafkaProbe{p: p}
	k.wg.Add(1)
	go k.events()
	return k, nil
}

// events keeps the last client-level error: authentication and TLS failures arrive there, not on the
// metadata call, which only times out.
func (k *kafkaProbe) events() {
	defer k.wg.Done()
	for ev := range k.p.Events() {
		if e, ok := ev.(kafka.Error); ok {
			k.lastErr.Store(&e)
			if isAuth(e) || isTLS(e) {
				k.causeErr.Store(&e)
			}
		}
	}
}

// close releases the client and waits for its event loop.
func (k *kafkaProbe) close() {
	k.p.Close()
	k.wg.Wait()
}

// brokers checks that at least one broker answers a metadata request with our credentials.
func (k *kafkaProbe) brokers(ctx context.Context) error {
	md, err := k.p.GetMetadata(nil, false, timeoutMs(ctx))
	if err != nil {
		return fmt.Errorf("asking the brokers for metadata: %w", k.classify(err))
	}
	if len(md.Brokers) == 0 {
		return fmt.Errorf("asking the brokers for metadata: %w: no broker listed", ErrUnreachable)
	}
	return nil
}

// topic checks that topic exists with partitions. With count it also returns the topic's message count
// (the sum of its partitions' high watermarks).
func (k *kafkaProbe) topic(ctx context.Context, topic string, count bool) (int64, error) {
	md, err := k.p.GetMetadata(&topic, false, timeoutMs(ctx))
	if err != nil {
		return 0, fmt.Errorf("looking up topic %s: %w", topic, k.classify(err))
	}
	tm, ok := md.Topics[topic]
	switch {
	case !ok, tm.Error.Code() == kafka.ErrUnknownTopicOrPart, tm.Error.Code() == kafka.ErrUnknownTopic:
		return 0, fmt.Errorf("looking up topic %s: %w", topic, ErrTopicNotFound)
	case tm.Error.Code() != kafka.ErrNoError:
		return 0, fmt.Errorf("looking up topic %s: %w", topic, tm.Error)
	case len(tm.Partitions) == 0:
		return 0, fmt.Errorf("looking up topic %s: %w (no partitions)", topic, ErrTopicNotFound)
	}
	if !count {
		return 0, nil
	}
	var total int64
	for _, p := range tm.Partitions {
		_, high, err := k.p.QueryWatermarkOffsets(topic, p.ID, timeoutMs(ctx))
		if err != nil {
			return 0, fmt.Errorf("reading offsets of %s[%d]: %w", topic, p.ID, k.classify(err))
		}
		total += high
	}
	return total, nil
}

// classify names the cause of a failed broker call from the client errors librdkafka reported.
func (k *kafkaProbe) classify(err error) error {
	if cause := k.causeErr.Load(); cause != nil {
		if isAuth(*cause) {
			return fmt.Errorf("%w: %s", ErrAuthentication, cause.Error())
		}
		return fmt.Errorf("%w: %s", ErrTLS, cause.Error())
	}
	if last := k.lastErr.Load(); last != nil {
		return fmt.Errorf("%w: %w (last client error: %s)", ErrUnreachable, err, last.Error())
	}
	return fmt.Errorf("%w: %w", ErrUnreachable, err)
}

func isAuth(e kafka.Error) bool {
	return e.Code() == kafka.ErrAuthentication || e.Code() == kafka.ErrSaslAuthenticationFailed
}

func isTLS(e kafka.Error) bool {
	return e.Code() == kafka.ErrSsl || strings.Contains(e.Error(), "SSL handshake failed")
}

// timeoutMs is what is left of ctx's deadline, in the milliseconds librdkafka takes, at least 1.
func timeoutMs(ctx context.Context) int {
	d := DefaultTimeout
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl)
	}
	return max(int(d/time.Millisecond), 1)
}
