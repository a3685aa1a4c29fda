package tcpin

import (
	"flag"
	"fmt"
	"log/slog"
	"time"
)

// Mode says whether the reader dials the source or accepts sources.
type Mode int

const (
	// Connect dials Addr and reconnects with jittered exponential backoff when the source goes away.
	Connect Mode = iota
	// Listen accepts any number of sources on Addr, up to MaxConns at once.
	Listen
)

// ParseMode turns "connect" or "listen" into a Mode.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "connect":
		return Connect, nil
	case "listen":
		return Listen, nil
	}
	return 0, fmt.Errorf("%w: source mode %q (want connect or listen)", ErrInvalidConfig, s)
}

func (m Mode) String() string {
	if m == Listen {
		return "listen"
	}
	return "connect"
}

// Set parses s (see ParseMode) into m, so a Mode is a flag.Value.
func (m *Mode) Set(s string) error {
	v, err := ParseMode(s)
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// DefaultAddr is the source the reader dials (or the address it listens on) when none is given.
const DefaultAddr = "127.0.0.1:9000"

// RegisterFlags registers the flags that set c: the source mode and address, and the per-connection limits.
// Their defaults are this package's.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	fs.Var(&c.Mode, "source-mode", "connect: dial the log source (reconnecting with backoff); listen: accept sources")
	fs.StringVar(&c.Addr, "source-addr", DefaultAddr, "the log source to dial, or the address to listen on")
	fs.Var(&c.Format, "source-format", "ndjson: one JSON event per line; syslog: RFC 5424 or RFC 3164 headers around the JSON event, framed by RFC 6587 octet counting or LF (each detected per frame)")
	fs.BoolVar(&c.SyslogFill, "syslog-fill", false, "syslog: fill the timestamp, computer, source and level an event lacks from its syslog header")
	fs.IntVar(&c.MaxLineBytes, "max-line-bytes", DefaultMaxLineBytes, "longest line accepted; longer lines are dead-lettered")
	fs.IntVar(&c.MaxConns, "max-conns", DefaultMaxConns, "listen mode: most simultaneous source connections")
	fs.IntVar(&c.MaxConnsPerAddr, "max-conns-per-addr", DefaultMaxConnsPerAddr, "listen mode: most simultaneous connections from one source address")
	fs.IntVar(&c.MinProgressBytes, "min-progress-bytes", DefaultMinProgressBytes, "listen mode: while more than half of --max-conns are in use, close a connection that completes fewer bytes of lines per --progress-interval")
	fs.DurationVar(&c.ProgressInterval, "progress-interval", DefaultProgressInterval, "listen mode: the interval of --min-progress-bytes")
	c.PartialLineBudget = DefaultPartialLineBudget
	fs.Var(byteSize{&c.PartialLineBudget}, "partial-line-budget", "bytes all connections together may hold in partial lines beyond their read buffers; a line that would exceed it is dead-lettered as oversized (e.g. 128MiB)")
	fs.DurationVar(&c.StopReadTimeout, "stop-read-timeout", DefaultStopReadTimeout, "on stop, how long to keep reading what the kernel already holds (acknowledged to the source) before closing")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", DefaultIdleTimeout, "listen mode: close a source that finishes no line for this long (silent or trickling)")
	c.TLSConfig.RegisterFlags(fs)
}

// Defaults applied by Config.withDefaults.
const (
	DefaultMaxLineBytes    = 1 << 20
	DefaultReadBufferBytes = 256 << 10
	DefaultQueueLines      = 8192
	DefaultMaxConns        = 512
	// DefaultMaxConnsPerAddr lets one address take an eighth of the default slots: a relay may need
	// several, and one scanner cannot lock out every other source.
	DefaultMaxConnsPerAddr  = 64
	DefaultMinProgressBytes = 4 << 10
	DefaultProgressInterval = time.Minute
	// DefaultPartialLineBudget is the memory all connections may hold in lines longer than their read
	// buffers, together: 128 connections at the 1 MiB line limit.
	DefaultPartialLineBudget = 128 << 20
	// DefaultQueueBytes bounds TCPLogReader's queue in bytes.
	DefaultQueueBytes      = 8 << 20
	DefaultIdleTimeout     = 5 * time.Minute
	DefaultStopReadTimeout = 500 * time.Millisecond
	DefaultMinBackoff      = 100 * time.Millisecond
	DefaultMaxBackoff      = 30 * time.Second
	// SampleBytes bounds how much of a rejected line is handed on (dead-lettered): enough to recognise it,
	// never enough to let one hostile line blow up memory downstream.
	SampleBytes = 4 << 10
)

// Config configures both readers. The zero value of every field means its default.
type Config struct {
	Mode Mode
	// Addr is the source to dial (Connect) or the address to listen on (Listen).
	Addr string
	// Format is what the sources send (default NDJSON).
	Format Format
	// SyslogFill (Format Syslog) fills the fields an event lacks from its syslog header (see syslog.Event);
	// off by default, so what reaches Kafka is the bytes of MSG.
	SyslogFill bool
	// MaxLineBytes is the longest line accepted, terminator excluded (default 1 MiB). Longer lines are
	// rejected with a bounded sample and skipped up to the next newline.
	MaxLineBytes int
	// ReadBufferBytes is the initial read buffer per connection (default 256 KiB). HighPerfTCPReader grows a
	// connection's buffer up to MaxLineBytes plus a read's worth only when one line needs it.
	ReadBufferBytes int
	// QueueLines bounds TCPLogReader's queue between the socket goroutines and the handler (default 8192).
	QueueLines int
	// QueueBytes bounds the same queue in bytes (default 8 MiB): lines wait in it, and so does memory.
	QueueBytes int
	// MaxConns bounds simultaneous connections in Listen mode (default 512); extra ones are closed at once.
	MaxConns int
	// MaxConnsPerAddr bounds simultaneous Listen-mode connections from one source address (default 64).
	MaxConnsPerAddr int
	// MinProgressBytes and ProgressInterval (defaults 4 KiB and 1m) are the minimum progress of a
	// Listen-mode connection while slots are scarce (more than half of MaxConns in use): one that completes
	// fewer bytes of lines in an interval is closed, so slow clients cannot hold slots that real sources need
	// by sending a line just within every IdleTimeout.
	MinProgressBytes int
	ProgressInterval time.Duration
	// PartialLineBudget bounds the bytes all connections together hold in partial lines beyond their read
	// buffers (default 128 MiB). A line that would take more is rejected as oversized, with the budget in
	// the detail, and skipped to its newline: it does not wait, because the budget is freed only by lines
	// that end, and connections waiting on each other for it could wait forever.
	PartialLineBudget int64
	// IdleTimeout closes a Listen-mode connection that completes no line for this long (default 5m): one
	// that sends nothing, and one that trickles a line too slowly to finish it (slowloris).
	IdleTimeout time.Duration
	// StopReadTimeout bounds the read-out when the reader stops (default 500ms): lines the kernel already
	// acknowledged to the source are read and handed on until the socket is quiet or this long has passed.
	StopReadTimeout time.Duration
	// MinBackoff and MaxBackoff bound the jittered exponential backoff between dials (defaults 100ms, 30s).
	MinBackoff, MaxBackoff time.Duration
	// Once makes Connect mode return after the first connection ends instead of reconnecting (tests, tools).
	Once bool
	// LogInterval is how often a source's refused TLS handshakes are logged again (default 1m): the first of
	// each reason per source address in an interval is logged, and the count of those not logged when the
	// interval ends or the reader stops.
	LogInterval time.Duration
	// Logger receives connection events; nil means slog.Default().
	Logger *slog.Logger
	// Observer receives connection-level counts for metrics; nil means none.
	Observer Observer
	// TLSConfig is the TLS settings as given (--source-tls-*); NewTLS loads them into TLS.
	TLSConfig TLSConfig
	// TLS, when not nil, puts TLS on every connection (see NewTLS); nil is plain TCP.
	TLS *TLS

	failures *failureLog // refused handshakes: which are logged, and the count of the others
	shared   *shared     // what the connections of one reader share
}

// Validate reports a value of RegisterFlags's flags that cannot work, naming the flag. The flags carry the
// real defaults, so a zero there was given on purpose and is refused, not taken as the default (the zero
// value of a Config built in code still means the defaults).
func (c Config) Validate() error {
	for _, f := range []struct {
		name string
		ok   bool
		want string
	}{
		{"max-line-bytes", c.MaxLineBytes > 0, "at least 1"},
		{"max-conns", c.MaxConns > 0, "at least 1"},
		{"max-conns-per-addr", c.MaxConnsPerAddr > 0, "at least 1"},
		{"min-progress-bytes", c.MinProgressBytes > 0, "at least 1"},
		{"progress-interval", c.ProgressInterval > 0, "positive"},
		{"partial-line-budget", c.PartialLineBudget > 0, "positive"},
		{"stop-read-timeout", c.StopReadTimeout > 0, "positive"},
		{"idle-timeout", c.IdleTimeout > 0, "positive"},
		{"source-tls-handshake-timeout", c.TLSConfig.HandshakeTimeout > 0, "positive"},
		{"source-tls-reload-interval", c.TLSConfig.ReloadInterval > 0, "positive"},
	} {
		if !f.ok {
			return fmt.Errorf("%w: --%s must be %s", ErrInvalidConfig, f.name, f.want)
		}
	}
	return nil
}

func (c Config) withDefaults() (Config, error) {
	if c.Addr == "" {
		return c, fmt.Errorf("%w: source address is empty", ErrInvalidConfig)
	}
	if c.MaxLineBytes <= 0 {
		c.MaxLineBytes = DefaultMaxLineBytes
	}
	if c.ReadBufferBytes <= 0 {
		c.ReadBufferBytes = DefaultReadBufferBytes
	}
	if c.QueueLines <= 0 {
		c.QueueLines = DefaultQueueLines
	}
	if c.QueueBytes <= 0 {
		c.QueueBytes = DefaultQueueBytes
	}
	if c.MaxConns <= 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.MaxConnsPerAddr <= 0 {
		c.MaxConnsPerAddr = DefaultMaxConnsPerAddr
	}
	if c.MinProgressBytes <= 0 {
		c.MinProgressBytes = DefaultMinProgressBytes
	}
	if c.ProgressInterval <= 0 {
		c.ProgressInterval = DefaultProgressInterval
	}
	if c.PartialLineBudget <= 0 {
		c.PartialLineBudget = DefaultPartialLineBudget
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.StopReadTimeout <= 0 {
		c.StopReadTimeout = DefaultStopReadTimeout
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(DefaultMaxBackoff, c.MinBackoff)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Observer == nil {
		c.Observer = nopObserver{}
	}
	if c.TLS != nil && c.TLS.mode != c.Mode {
		return c, fmt.Errorf("%w: TLS material loaded for %s mode, reader in %s mode", ErrInvalidConfig, c.TLS.mode, c.Mode)
	}
	if c.LogInterval <= 0 {
		c.LogInterval = DefaultLogInterval
	}
	c.failures = newFailureLog(c.LogInterval, 4096, c.Logger)
	c.shared = &shared{partial: newBudget(c.PartialLineBudget), perAddr: map[string]int{}}
	return c, nil
}
