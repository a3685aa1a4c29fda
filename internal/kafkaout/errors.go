package kafkaout

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// The errors of this package. Every caller (the reader, the health check, the tools) tells causes apart with
// errors.Is against these; nothing outside this file looks at librdkafka's codes or messages.
var (
	// ErrInvalidConfig reports a Config or Connection that cannot work; the message names the field.
	ErrInvalidConfig = errors.New("invalid kafka client config")
	// ErrTopicNotFound means the broker answered but the topic does not exist or has no partitions.
	ErrTopicNotFound = errors.New("topic does not exist")
	// ErrAuthentication means the broker refused the SASL credentials.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrTLS means the TLS handshake failed, most often because the broker's certificate did not verify
	// against the configured CA or host name.
	ErrTLS = errors.New("kafka TLS handshake failed")
	// ErrUnreachable means no broker answered in time.
	ErrUnreachable = errors.New("kafka brokers unreachable")
	// ErrClosed is returned by Produce after Close, and wrapped by the delivery error of a message Close purged.
	ErrClosed = errors.New("producer closed")
)

// isAuth reports whether a client-level error means the brokers refused the credentials. The message test
// covers librdkafka versions that report a SASL failure under a transport code.
func isAuth(e kafka.Error) bool {
	return e.Code() == kafka.ErrAuthentication || e.Code() == kafka.ErrSaslAuthenticationFailed ||
		strings.Contains(e.Error(), "Authentication failed")
}

// isTLS reports whether a client-level error is a failed TLS handshake (certificate or host name). A
// handshake the peer cut ("SSL handshake failed: Disconnected: connection reset by peer", which librdkafka
// follows with "connecting to a PLAINTEXT broker listener?") is not: a broker that dies or restarts
// mid-handshake causes it, and it is then the transport failing, not the brokers refusing the client. A
// client pointed at a plaintext listener gets the same message on every try; it is reported as unreachable,
// and librdkafka's log lines (which the reader logs) carry the hint.
func isTLS(e kafka.Error) bool {
	msg := e.Error()
	if strings.Contains(msg, "certificate verify failed") {
		return true
	}
	if strings.Contains(msg, "SSL handshake failed: Disconnected") {
		return false
	}
	return e.Code() == kafka.ErrSsl || strings.Contains(msg, "SSL handshake failed")
}

// clientErrors keeps the client-level errors librdkafka reports on its event channel: authentication and
// TLS failures arrive there, not on the call that then times out.
type clientErrors struct {
	last atomic.Pointer[kafka.Error]
	// cause keeps the last authentication or TLS error: librdkafka follows it with "all brokers are down",
	// which must not hide why they are down.
	cause atomic.Pointer[kafka.Error]
}

// record keeps e and reports whether it is an authentication or TLS failure.
func (c *clientErrors) record(e kafka.Error) {
	c.last.Store(&e)
	if isAuth(e) || isTLS(e) {
		c.cause.Store(&e)
	}
}

// forget drops an old authentication or TLS failure once the brokers accept the client again.
func (c *clientErrors) forget() { c.cause.Store(nil) }

// telling returns the most telling client error seen so far: an authentication or TLS failure if there was
// one, else the last error, else nil.
func (c *clientErrors) telling() *kafka.Error {
	if e := c.cause.Load(); e != nil {
		return e
	}
	return c.last.Load()
}

// refused reports whether the brokers have refused the client (credentials or TLS): waiting longer will not
// change the answer.
func (c *clientErrors) refused() bool { return c.cause.Load() != nil }

// classify names the cause of a failed broker call, using the last client-level error librdkafka reported.
// The result wraps ErrAuthentication, ErrTLS or ErrUnreachable.
func (c *clientErrors) classify(err error) error {
	last := c.telling()
	if last == nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	switch {
	case isAuth(*last):
		return fmt.Errorf("%w: %s", ErrAuthentication, last.Error())
	case isTLS(*last):
		return fmt.Errorf("%w: %s", ErrTLS, last.Error())
	default:
		return fmt.Errorf("%w: %w (last client error: %s)", ErrUnreachable, err, last.Error())
	}
}

// isQueueFull reports whether err is librdkafka's "local queue full" answer to Produce.
func isQueueFull(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && kerr.Code() == kafka.ErrQueueFull
}

// isUnknownPartition reports whether err is librdkafka's answer to Produce for a partition the topic does not
// have.
func isUnknownPartition(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && kerr.Code() == kafka.ErrUnknownPartition
}

// ErrFatal means librdkafka raised a fatal error: the producer can deliver nothing more and the process must
// be replaced.
var ErrFatal = errors.New("kafka client failed")

// PossiblyPersisted reports whether a message whose delivery report failed with err may be in the topic all
// the same: it may have reached the broker and only the acknowledgement is missing (the message timed out,
// was purged in flight at Close, or the client failed while it was in flight). librdkafka knows whether a
// timed-out message was ever sent, but the Go client does not pass that on, so every timeout answers true.
// It answers false only where the message is known not to be in the topic: it never left the client
// (purged from the queue, or an error that is not a delivery report's) or the broker refused it.
func PossiblyPersisted(err error) bool {
	var kerr kafka.Error
	if !errors.As(err, &kerr) {
		return false
	}
	switch kerr.Code() {
	case kafka.ErrPurgeQueue,
		kafka.ErrMsgSizeTooLarge, kafka.ErrInvalidMsgSize, kafka.ErrRecordListTooLarge, kafka.ErrInvalidMsg,
		kafka.ErrInvalidRecord, kafka.ErrTopicException, kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic,
		kafka.ErrUnknownPartition, kafka.ErrTopicAuthorizationFailed, kafka.ErrClusterAuthorizationFailed,
		kafka.ErrInvalidRequiredAcks:
		return false
	}
	return true
}

// isFatalCode reports whether err is librdkafka's answer to a call made after a fatal error.
func isFatalCode(err error) bool {
	var kerr kafka.Error
	return errors.As(err, &kerr) && (kerr.Code() == kafka.ErrFatal || kerr.IsFatal())
}
