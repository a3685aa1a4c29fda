package logsource

import (
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults applied by Config for zero fields.
const (
	DefaultClients        = 1
	DefaultOversizeBytes  = 1<<20 + 1 // one byte over the reader's default line limit
	DefaultWriteBuffer    = 256 << 10
	DefaultSendTimesEvery = 100
)

// TimeMode says how a source stamps its events.
type TimeMode string

const (
	// TimeWall stamps each event with the wall clock when it is written (strictly increasing per connection
	// by at least 1 µs): a rate-limited run never writes events in the future. The default.
	TimeWall TimeMode = "wall"
	// TimeSynthetic stamps event i with Start + about i ms (event.Generator's time line), whatever the send
	// rate: the same seed, first id and start give the same bytes, which tests and the benchmark compare.
	TimeSynthetic TimeMode = "synthetic"
)

// ParseTimeMode reads a --time-mode value.
func ParseTimeMode(s string) (TimeMode, error) {
	switch m := TimeMode(s); m {
	case TimeWall, TimeSynthetic:
		return m, nil
	}
	return "", fmt.Errorf("time mode %q (want wall or synthetic): %w", s, ErrInvalidConfig)
}

// Config describes what a source sends. The zero value sends an unbounded stream of good events, as fast as
// possible, with ids from 0; set Count or Duration to bound it.
type Config struct {
	// Count is the number of good events to send in total, across all connections; 0 means no count bound.
	Count uint64
	// Duration bounds the run, measured from the moment the first connection starts streaming; 0 means no
	// time bound. With both Count and Duration zero the source runs until its context ends.
	Duration time.Duration
	// Rate caps good events per second across all connections (a token bucket refilled continuously, with
	// a burst of 10 ms worth of events); 0 sends as fast as the peers read.
	Rate float64
	// Seed, FirstID and Start define the event stream (see event.NewGenerator). Start is the timestamp of
	// the first event in TimeSynthetic mode; a zero Start means the time Serve or Dial is called. Injected
	// bad lines that carry an eventId use 0, so keep FirstID above 0 to tell them apart downstream.
	Seed    int64
	FirstID uint32
	Start   time.Time
	// TimeMode is how events are stamped: TimeWall (the default) or TimeSynthetic.
	TimeMode TimeMode
	// Clients is, in listen mode, how many connections must be served to completion (the stream ran out
	// while they were connected) before Serve returns. Connections closed on purpose by the truncated
	// class, or lost to a write error, do not count. Default 1. Dial ignores it.
	Clients int
	// Bad lists the classes of bad input to inject, in turn, one line after every BadEvery good events.
	// Both must be set, or neither.
	Bad      []BadClass
	BadEvery int
	// OversizeBytes is the length of an oversized line, newline excluded. Default 1 MiB + 1.
	OversizeBytes int
	// WriteBuffer is how many bytes a connection buffers before writing them to the socket. Default 256 KiB.
	// When Rate is set, buffers are also written at the end of every paced batch.
	WriteBuffer int
	// SendTimes, when set, receives a CSV line "event_id,sent_unix_nano" (after a header line) for every
	// SendTimesEvery-th event (default 100), taken when the write holding the event returned.
	SendTimes      io.Writer
	SendTimesEvery int
	// ConnectTimeout bounds how long Dial keeps retrying a connection; 0 retries until the context ends.
	ConnectTimeout time.Duration
	// Log receives connection events; nil discards them.
	Log *slog.Logger
}

// withDefaults returns c with defaults filled in, validated.
func (c Config) withDefaults() (Config, error) {
	if c.Clients == 0 {
		c.Clients = DefaultClients
	}
	if c.OversizeBytes == 0 {
		c.OversizeBytes = DefaultOversizeBytes
	}
	if c.WriteBuffer == 0 {
		c.WriteBuffer = DefaultWriteBuffer
	}
	if c.SendTimesEvery == 0 {
		c.SendTimesEvery = DefaultSendTimesEvery
	}
	if c.TimeMode == "" {
		c.TimeMode = TimeWall
	}
	if c.TimeMode == TimeWall && !c.Start.IsZero() {
		return c, fmt.Errorf("start %s is set but the time mode is wall (the start is the synthetic time line's): %w",
			c.Start.Format(time.RFC3339), ErrInvalidConfig)
	}
	if c.TimeMode == TimeSynthetic && c.Start.IsZero() {
		c.Start = time.Now()
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c, c.Validate()
}

// Validate checks c; its errors wrap ErrInvalidConfig and name the field.
func (c Config) Validate() error {
	switch {
	case c.Duration < 0:
		return fmt.Errorf("duration %v is negative: %w", c.Duration, ErrInvalidConfig)
	case c.Rate < 0:
		return fmt.Errorf("rate %v is negative: %w", c.Rate, ErrInvalidConfig)
	case c.Clients < 0:
		return fmt.Errorf("clients %d is negative: %w", c.Clients, ErrInvalidConfig)
	case c.BadEvery < 0:
		return fmt.Errorf("bad-every %d is negative: %w", c.BadEvery, ErrInvalidConfig)
	case len(c.Bad) > 0 && c.BadEvery == 0:
		return fmt.Errorf("bad classes given without bad-every: %w", ErrInvalidConfig)
	case len(c.Bad) == 0 && c.BadEvery > 0:
		return fmt.Errorf("bad-every %d given without bad classes: %w", c.BadEvery, ErrInvalidConfig)
	case c.OversizeBytes < 0:
		return fmt.Errorf("oversize-bytes %d is negative: %w", c.OversizeBytes, ErrInvalidConfig)
	case c.WriteBuffer < 0:
		return fmt.Errorf("write-buffer %d is negative: %w", c.WriteBuffer, ErrInvalidConfig)
	case c.SendTimesEvery < 0:
		return fmt.Errorf("send-times-every %d is negative: %w", c.SendTimesEvery, ErrInvalidConfig)
	case c.ConnectTimeout < 0:
		return fmt.Errorf("connect-timeout %v is negative: %w", c.ConnectTimeout, ErrInvalidConfig)
	}
	if c.TimeMode != "" {
		if _, err := ParseTimeMode(string(c.TimeMode)); err != nil {
			return err
		}
	}
	for _, b := range c.Bad {
		if _, ok := classIndex[b]; !ok {
			return fmt.Errorf("bad class %q: %w: %w", b, ErrUnknownBadClass, ErrInvalidConfig)
		}
	}
	return nil
}

// bounded reports whether the run ends by itself.
func (c Config) bounded() bool { return c.Count > 0 || c.Duration > 0 }
