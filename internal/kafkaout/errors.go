package kafkaout

import "errors"

var (
	// ErrInvalidConfig reports a Config that cannot work; the message names the field.
	ErrInvalidConfig = errors.New("invalid producer config")
	// ErrTopicNotFound means the broker answered but the topic does not exist.
	ErrTopicNotFound = errors.New("topic does not exist")
	// ErrAuthentication means the broker refused the SASL credentials.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrTLS means the TLS handshake failed, most often because the broker's certificate did not verify
	// against the configured CA or host name.
	ErrTLS = errors.New("kafka TLS handshake failed")
	// ErrUnreachable means no broker answered in time.
	ErrUnreachable = errors.New("kafka brokers unreachable")
	// ErrClosed is returned by Produce after Close.
	ErrClosed = errors.New("producer closed")
)
