package kafkaout

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// Header is one Kafka record header. Callers speak this type; the client library's own stays inside this
// package.
type Header struct {
	Key   string
	Value []byte
}

// The headers of a record on the dead-letter topic, whose value is the line (or a sample of it). The reader
// writes them, the replay and the operators' tools read them; the dead-letter file's JSON fields carry the
// same names.
const (
	// HeaderReason is the machine-readable reason (invalid_json, delivery_failed, ...).
	HeaderReason = "reason"
	// HeaderDetail says what was wrong, for a human.
	HeaderDetail = "detail"
	// HeaderSource is the address of the connection the line came from.
	HeaderSource = "source"
	// HeaderReceivedAt is when the line was dead-lettered (RFC 3339, UTC, nanoseconds).
	HeaderReceivedAt = "received_at"
	// HeaderLineBytes is the line's length: more than the value's when the value is only a sample.
	HeaderLineBytes = "line_bytes"
	// HeaderPossiblyPersisted is "true" on a line whose delivery failed after it may have reached the
	// broker (see PossiblyPersisted): the line may be in the topic already, so a replay must check first.
	HeaderPossiblyPersisted = "possibly_persisted"
)

// toKafkaHeaders converts headers for librdkafka; nil stays nil, so a message without headers costs nothing.
func toKafkaHeaders(headers []Header) []kafka.Header {
	if len(headers) == 0 {
		return nil
	}
	out := make([]kafka.Header, len(headers))
	for i, h := range headers {
		out[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	return out
}

// fromKafkaHeaders converts the headers of a consumed message.
func fromKafkaHeaders(headers []kafka.Header) []Header {
	if len(headers) == 0 {
		return nil
	}
	out := make([]Header, len(headers))
	for i, h := range headers {
		out[i] = Header{Key: h.Key, Value: h.Value}
	}
	return out
}
