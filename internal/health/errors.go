package health

import "errors"

var (
	// ErrInvalidConfig reports a Config that cannot work; the message names the environment variable.
	ErrInvalidConfig = errors.New("invalid health config")
	// ErrSkipped marks a check that did not run because one it depends on failed (no credentials, no
	// brokers), so the verdict still names every check.
	ErrSkipped = errors.New("skipped")
	// ErrReaderUnhealthy means the reader's health endpoint did not answer 200 in time.
	ErrReaderUnhealthy = errors.New("reader health endpoint not healthy")
)
