package health

import "errors"

var (
	// ErrInvalidConfig reports a Config that cannot work; the message names the environment variable.
	ErrInvalidConfig = errors.New("invalid health config")
	// ErrSkipped marks a check that did not run because one it depends on failed (no credentials, no
	// brokers), so the verdict still names every check.
	ErrSkipped = errors.New("skipped")
	// ErrAuthentication means the brokers refused the credentials from the secret.
	ErrAuthentication = errors.New("kafka authentication failed")
	// ErrTLS means the TLS handshake with a broker failed (certificate or host name did not verify).
	ErrTLS = errors.New("kafka TLS handshake failed")
	// ErrUnreachable means no broker answered within the check's time limit.
	ErrUnreachable = errors.New("kafka brokers unreachable")
	// ErrTopicNotFound means the brokers answered but the topic does not exist or has no partitions.
	ErrTopicNotFound = errors.New("topic does not exist")
	// ErrReaderUnhealthy means the reader's health endpoint did not answer 200 in time.
	ErrReaderUnhealthy = errors.New("reader health endpoint not healthy")
)
