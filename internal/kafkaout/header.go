package kafkaout

import "github.com/confluentinc/confluent-kafka-go/v2/kafka"

// Header is one Kafka record header. Callers speak this type; the client library's own stays inside this
// package.
type Header struct {
	Key   string
	Value []byte
}

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
