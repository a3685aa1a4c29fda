package kafkaout

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Config configures the producer. Zero values mean the defaults in the field comments, except LingerMs,
// whose zero is a setting of its own.
type Config struct {
	// Connection says which brokers to reach and how to authenticate (default protocol sasl_ssl).
	Connection
	// Compression is the codec (default "lz4"; "zstd", "snappy", "gzip" and "none" also work).
	Compression string
	// LingerMs is how long librdkafka waits to fill a batch; 0 sends each message at once. RegisterFlags
	// sets DefaultLingerMs (5).
	LingerMs int
	// BatchBytes caps one produce request's batch (default 1 MiB).
	BatchBytes int
	// QueueMaxMessages and QueueMaxKBytes bound the local queue (defaults DefaultQueueMaxMessages messages,
	// DefaultQueueMaxKBytes KiB). When it is full Produce waits: this is the memory bound that turns a slow
	// broker into TCP backpressure, and what a crash can lose.
	QueueMaxMessages int
	QueueMaxKBytes   int
	// MessageMaxBytes is the largest message produced (default 1000000, Kafka's default limit).
	MessageMaxBytes int
	// Overrides are librdkafka properties applied last, over everything above.
	Overrides map[string]string
	// Logger receives librdkafka's log lines and client errors; nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of the producer's local queue. 8 MiB because what a crash (SIGKILL, OOM) can lose is what this
// queue holds, and while the source outpaces the broker it is always full: 8 MiB bounds that to about 28000
// lines of 300 bytes, and a larger queue was no faster under a slow broker.
const (
	DefaultQueueMaxMessages = 100000
	DefaultQueueMaxKBytes   = 8 << 10
)

func (c Config) withDefaults() (Config, error) {
	if err := c.Connection.validate(); err != nil {
		return c, err
	}
	c.SecurityProtocol, _ = ParseSecurityProtocol(string(c.SecurityProtocol))
	if c.Compression == "" {
		c.Compression = DefaultCompression
	}
	if c.LingerMs < 0 {
		return c, fmt.Errorf("%w: --linger-ms %d is negative", ErrInvalidConfig, c.LingerMs)
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 1 << 20
	}
	if c.QueueMaxMessages <= 0 {
		c.QueueMaxMessages = DefaultQueueMaxMessages
	}
	if c.QueueMaxKBytes <= 0 {
		c.QueueMaxKBytes = DefaultQueueMaxKBytes
	}
	if c.MessageMaxBytes <= 0 {
		c.MessageMaxBytes = 1000000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}

// Validate reports a value of RegisterFlags's flags that cannot work, naming the flag. The flags carry the
// real defaults, so a zero there was given on purpose: --linger-ms 0 is kept, a zero queue is refused
// (it is not taken as the default).
func (c Config) Validate() error {
	switch {
	case c.LingerMs < 0:
		return fmt.Errorf("%w: --linger-ms %d is negative", ErrInvalidConfig, c.LingerMs)
	case c.QueueMaxKBytes < 1:
		return fmt.Errorf("%w: --queue-max-kbytes must be at least 1 (KiB), not %d", ErrInvalidConfig, c.QueueMaxKBytes)
	}
	return nil
}

// configMap turns c into librdkafka properties. Reliability settings come first: acks=all with idempotence,
// so a retried batch is never duplicated and nothing is acknowledged before every in-sync replica has it.
func (c Config) configMap() kafka.ConfigMap {
	m := c.Connection.settings("log-reader")
	for k, v := range map[string]kafka.ConfigValue{
		"acks":                         "all",
		"enable.idempotence":           true,
		"compression.type":             c.Compression,
		"linger.ms":                    c.LingerMs,
		"batch.size":                   c.BatchBytes,
		"queue.buffering.max.messages": c.QueueMaxMessages,
		"queue.buffering.max.kbytes":   c.QueueMaxKBytes,
		"message.max.bytes":            c.MessageMaxBytes + 1024,
		// Delivery reports carry back only the key, the producer's sequence number of the message: its
		// bytes, for a message that finally fails and must be dead-lettered, are in the ring of pending
		// messages (see pending), so no report copies the value.
		"go.delivery.report.fields": "key",
		"go.events.channel.size":    10000,
		// Produce hands messages to librdkafka directly; the binding's produce channel, 1,000,000 entries
		// by default, would only be allocated and scanned by the garbage collector.
		"go.produce.channel.size": 0,
		"go.logs.channel.enable":  true,
	} {
		m[k] = v
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
	return "brokers=" + c.Brokers + " security_protocol=" + c.SecurityProtocol.String() +
		" compression=" + c.Compression + " linger_ms=" + strconv.Itoa(c.LingerMs) +
		" verify_tls=" + strconv.FormatBool(!c.InsecureSkipVerify)
}
