package pipeline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// ErrInvalidConfig reports a flag or variable that cannot work; the message names it.
var ErrInvalidConfig = errors.New("invalid configuration")

// ReaderKind selects the TCP reader implementation.
type ReaderKind string

// The reader implementations; both are kept and tested.
const (
	// HighPerf is tcpin.HighPerfTCPReader (the default).
	HighPerf ReaderKind = "highperf"
	// Basic is tcpin.TCPLogReader.
	Basic ReaderKind = "basic"
)

// String returns the kind as the --reader flag takes it.
func (k ReaderKind) String() string {
	if k == "" {
		return string(HighPerf)
	}
	return string(k)
}

// Set parses "highperf" or "basic" into k, so a ReaderKind is a flag.Value.
func (k *ReaderKind) Set(s string) error {
	switch v := ReaderKind(s); v {
	case HighPerf, Basic:
		*k = v
		return nil
	}
	return fmt.Errorf("reader %q: want highperf or basic", s)
}

// Config is the reader's whole configuration, read once at the edge from flags and READER_* variables.
// Each component owns its part and registers its flags; values are parsed into their types here, once.
type Config struct {
	// Source is the TCP input: mode, address and per-connection limits.
	Source tcpin.Config
	// Reader picks the implementation.
	Reader ReaderKind
	// Validation is how strictly lines are checked against the event schema.
	Validation event.Mode

	Topic    string
	DLQTopic string
	DLQFile  string

	// Credentials says where the Kafka credentials come from.
	Credentials secrets.Config
	// SecretRetryMax caps the jittered exponential backoff between reads of a secret that cannot be used yet
	// (missing, unreadable, malformed), which a reader running as a service retries until it can
	// (--secret-retry-max, default 1m). A bounded run fails at once instead.
	SecretRetryMax time.Duration
	// Kafka is the producer's connection and tuning; its credentials are filled in from Credentials at run
	// time, and its message cap from MaxMessageBytes and the line limit.
	Kafka kafkaout.Config

	EventsPerMessage int
	MaxMessageBytes  int

	MaxEvents      uint64
	Duration       time.Duration
	DrainTimeout   time.Duration
	StartupTimeout time.Duration

	MetricsAddr string
	SummaryFile string
	LogLevel    string

	Ops OpsConfig
}

// RegisterFlags registers every flag of the reader: the components' own, then the pipeline's.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Source.RegisterFlags(fs)
	c.Reader = HighPerf
	fs.Var(&c.Reader, "reader", "highperf (HighPerfTCPReader) or basic (TCPLogReader)")
	c.Validation = event.Strict
	fs.Var(&c.Validation, "validation", "strict (the full event schema) or lenient (any JSON object)")
	fs.StringVar(&c.Topic, "topic", readerspec.Topic, "Kafka topic for events")
	fs.StringVar(&c.DLQTopic, "dlq-topic", readerspec.DLQTopic, "Kafka topic for dead letters (ignored when --dlq-file is set)")
	fs.StringVar(&c.DLQFile, "dlq-file", "", "write dead letters as JSON lines to this file instead of a topic")
	c.Credentials.RegisterFlags(fs)
	fs.DurationVar(&c.SecretRetryMax, "secret-retry-max", time.Minute, "service mode: longest wait between reads of a secret that cannot be used yet (missing, unreadable, malformed); the reader stays up, not ready, until it can")
	c.Kafka.RegisterFlags(fs)
	fs.IntVar(&c.EventsPerMessage, "events-per-message", 1, "events newline-joined into one Kafka message (highperf reader batches per read)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", 900000, "byte cap of a many-events Kafka message (a longer single line is sent alone)")
	fs.Uint64Var(&c.MaxEvents, "max-events", 0, "bounded mode: stop reading after this many lines (0: no bound)")
	fs.DurationVar(&c.Duration, "duration", 0, "bounded mode: stop reading after this long (0: no bound)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on stop, how long to wait for Kafka to acknowledge what was read")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", 30*time.Second, "bounded mode: how long to wait for the secret and the brokers at start")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", readerspec.MetricsAddr("127.0.0.1"), "address for /metrics, /healthz, /readyz (empty disables)")
	fs.StringVar(&c.SummaryFile, "summary-file", "", "also write the final JSON summary to this file")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	c.Ops.RegisterFlags(fs)
}

// EnvNames returns the environment variables that set the reader's flags (READER_<FLAG>), for checking
// what a deployment sets against what the reader reads.
func EnvNames() map[string]bool {
	var c Config
	fs := flag.NewFlagSet("reader", flag.ContinueOnError)
	c.RegisterFlags(fs)
	names := map[string]bool{}
	fs.VisitAll(func(f *flag.Flag) { names[flagenv.EnvName(readerspec.EnvPrefix, f.Name)] = true })
	return names
}

// ParseConfig reads flags from args; a flag not given on the command line falls back to the environment
// variable READER_<FLAG_NAME> (dashes as underscores) when it is not empty, then to its default. --help
// writes the usage to stdout and returns flag.ErrHelp; a mistake writes the usage to stderr and returns an
// error wrapping ErrInvalidConfig and flagenv.ErrUsage.
func ParseConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("reader", flag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: reader [flags]\n\nReads JSON log lines from TCP, validates them and produces them to Kafka.\n"+
			"Every flag can also be set with READER_<NAME> (e.g. --source-addr as READER_SOURCE_ADDR).\n\n")
		fs.PrintDefaults()
	}
	if err := flagenv.Parse(fs, args, readerspec.EnvPrefix, getenv, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.Credentials.Endpoint == "" {
		c.Credentials.Endpoint = getenv(secrets.EndpointEnv)
	}
	c.Source.TLSConfig.FromEnv(getenv)
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w", flagenv.ErrUsage, err)
	}
	return c, nil
}

// Validate checks the combination of settings; errors name the flag.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if c.Source.Addr == "" {
		return bad("--source-addr is empty")
	}
	if err := c.Source.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Kafka.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if err := c.Source.TLSConfig.Validate(c.Source.Mode); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.Topic == "" {
		return bad("--topic is empty")
	}
	if c.DLQFile == "" && c.DLQTopic == "" {
		return bad("set --dlq-topic or --dlq-file: dead letters need somewhere to go")
	}
	if c.DLQFile == "" && c.DLQTopic == c.Topic {
		return bad("--dlq-topic must differ from --topic")
	}
	if !c.Kafka.SecurityProtocol.UsesSASL() && c.Kafka.Brokers == "" {
		return bad("--security-protocol %s needs --bootstrap (the secret describes a SASL_SSL cluster)", c.Kafka.SecurityProtocol)
	}
	if c.EventsPerMessage < 1 {
		return bad("--events-per-message must be at least 1")
	}
	if c.MaxMessageBytes < 1024 {
		return bad("--max-message-bytes must be at least 1024")
	}
	if c.DrainTimeout <= 0 {
		return bad("--drain-timeout must be positive")
	}
	if c.SecretRetryMax < 100*time.Millisecond {
		return bad("--secret-retry-max must be at least 100ms")
	}
	return c.Ops.Validate()
}

// Bounded reports whether the run stops by itself.
func (c Config) Bounded() bool { return c.MaxEvents > 0 || c.Duration > 0 }
