package kafkaout

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Config configures the producer. Zero values mean the defaults in the field comments.
type Config struct {
	// Brokers is the bootstrap server list (bootstrap.servers).
	Brokers string
	// SecurityProtocol is "sasl_ssl" (default, PLAIN mechanism), "ssl" or "plaintext".
	SecurityProtocol string
	// Username and Password are the SASL/PLAIN credentials for sasl_ssl.
	Username, Password string
	// CAFile is a PEM bundle to verify the broker certificate with; empty means the system's CAs.
	CAFile string
	// InsecureSkipVerify turns broker certificate verification off. Off by default; New logs a warning.
	InsecureSkipVerify bool
	// Compression is the codec (default "lz4"; "zstd", "snappy", "gzip" and "none" also work).
	Compression string
	// LingerMs is how long librdkafka waits to fill a batch (default 5).
	LingerMs int
	// BatchBytes caps one produce request's batch (default 1 MiB).
	BatchBytes int
	// QueueMaxMessages and QueueMaxKBytes bound the local queue (defaults 100000 messages, 64 MiB). When it is
	// full Produce waits: this is the memory bound that turns a slow broker into TCP backpressure.
	QueueMaxMessages int
	QueueMaxKBytes   int
	// MessageMaxBytes is the largest message produced (default 1000000, Kafka's default limit).
	MessageMaxBytes int
	// Overrides are librdkafka properties applied last, over everything above.
	Overrides map[string]string
	// Logger receives librdkafka's log lines and client errors; nil means slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() (Config, error) {
	if strings.TrimSpace(c.Brokers) == "" {
		return c, fmt.Errorf("%w: brokers (bootstrap.servers) is empty", ErrInvalidConfig)
	}
	if c.SecurityProtocol == "" {
		c.SecurityProtocol = "sasl_ssl"
	}
	switch strings.ToLower(c.SecurityProtocol) {
	case "sasl_ssl":
		if c.Username == "" || c.Password == "" {
			return c, fmt.Errorf("%w: security protocol sasl_ssl needs a SASL username and password", ErrInvalidConfig)
		}
	case "ssl", "plaintext":
	default:
		return c, fmt.Errorf("%w: security protocol %q (want sasl_ssl, ssl or plaintext)", ErrInvalidConfig, c.SecurityProtocol)
	}
	if c.Compression == "" {
		c.Compression = "lz4"
	}
	if c.LingerMs <= 0 {
		c.LingerMs = 5
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.QueueMaxMessages <= 0 {
		c.QueueMaxMessages = 100000
	}
	if c.QueueMaxKBytes <= 0 {
		c.QueueMaxKBytes = 64 << 10
	}
	if c.MessageMaxBytes <= 0 {
		c.MessageMaxBytes = 1000000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// configMap turns c into librdkafka properties. Reliability settings come first: acks=all with idempotence,
// so a retried batch is never duplicated and nothing is acknowledged before every in-sync replica has it.
func (c Config) configMap() kafka.ConfigMap {
	m := kafka.ConfigMap{
		"bootstrap.servers":            c.Brokers,
		"client.id":                    "log-reader",
		"acks":                         "all",
		"enable.idempotence":           true,
		"compression.type":             c.Compression,
		"linger.ms":                    c.LingerMs,
		"batch.size":                   c.BatchBytes,
		"queue.buffering.max.messages": c.QueueMaxMessages,
		"queue.buffering.max.kbytes":   c.QueueMaxKBytes,
		"message.max.bytes":            c.MessageMaxBytes + 1024,
		// Delivery reports carry the value back so a message that finally fails can still be dead-lettered.
		"go.delivery.report.fields": "value",
		"go.events.channel.size":    10000,
		"go.logs.channel.enable":    true,
		"security.protocol":         strings.ToLower(c.SecurityProtocol),
	}
	if c.SecurityProtocol != "plaintext" {
		m["enable.ssl.certificate.verification"] = !c.InsecureSkipVerify
		if !c.InsecureSkipVerify {
			m["ssl.endpoint.identification.algorithm"] = "https"
		} else {
			m["ssl.endpoint.identification.algorithm"] = "none"
		}
		if c.CAFile != "" {
			m["ssl.ca.location"] = c.CAFile
		}
	}
	if strings.EqualFold(c.SecurityProtocol, "sasl_ssl") {
		m["sasl.mechanisms"] = "PLAIN"
		m["sasl.username"] = c.Username
		m["sasl.password"] = c.Password
	}
	for k, v := range c.Overrides {
		m[k] = v
	}
	return m
}

// ParseOverrides reads "key=value,key=value" librdkafka properties (the --kafka-property flag's form).
func ParseOverrides(s string) (map[string]string, error) {
	out := make(map[string]string)
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("%w: kafka property %q is not key=value", ErrInvalidConfig, kv)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

// String describes the configuration without the password, for logs.
func (c Config) String() string {
	return "brokers=" + c.Brokers + " security_protocol=" + c.SecurityProtocol +
		" compression=" + c.Compression + " linger_ms=" + strconv.Itoa(c.LingerMs) +
		" verify_tls=" + strconv.FormatBool(!c.InsecureSkipVerify)
}
