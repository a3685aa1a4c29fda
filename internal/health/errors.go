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
	// ErrReaderStopped means no reader task runs: the service is missing, inactive, scaled to zero, or none
	// of its desired tasks is running.
	ErrReaderStopped = errors.New("reader stopped")
	// ErrReaderTasksMissing means fewer reader tasks run than the service wants.
	ErrReaderTasksMissing = errors.New("reader tasks below desired")
	// ErrReaderStalled means the reader reports a delivery stall, or delivered nothing while lines waited,
	// in the check's window.
	ErrReaderStalled = errors.New("reader stalled")
	// ErrReaderSilent means the reader wrote no metrics in the check's window: it is not running, or hangs,
	// or its EMF records are off.
	ErrReaderSilent = errors.New("reader reports no metrics")
)
