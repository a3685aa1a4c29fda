package pipeline

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// ErrInvalidConfig reports a flag or variable that cannot work; the message names it.
var ErrInvalidConfig = errors.New("invalid configuration")

// Config is the reader's whole configuration, read once at the edge from flags and READER_* variables.
type Config struct {
	SourceMode   string
	SourceAddr   string
	Reader       string
	MaxLineBytes int
	MaxConns     int
	IdleTimeout  time.Duration
	Validation   string

	Topic    string
	DLQTopic string
	DLQFile  string

	Credentials      string
	SecretName       string
	Region           string
	SecretsEndpoint  string
	SecurityProtocol string
	Bootstrap        string
	CAFile           string
	InsecureSkipTLS  bool
	KafkaProperties  string
	Compression      string
	LingerMs         int
	EventsPerMessage int
	MaxMessageBytes  int
	QueueMaxKBytes   int

	MaxEvents      uint64
	Duration       time.Duration
	DrainTimeout   time.Duration
	StartupTimeout time.Duration

	MetricsAddr string
	SummaryFile string
	LogLevel    string
}

// ParseConfig reads flags from args; a flag not given on the command line falls back to the environment
// variable READER_<FLAG_NAME> (dashes as underscores), then to its default.
func ParseConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("reader", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.StringVar(&c.SourceMode, "source-mode", "connect", "connect: dial the log source (reconnecting with backoff); listen: accept sources")
	fs.StringVar(&c.SourceAddr, "source-addr", "127.0.0.1:9000", "the log source to dial, or the address to listen on")
	fs.StringVar(&c.Reader, "reader", "highperf", "highperf (HighPerfTCPReader) or basic (TCPLogReader)")
	fs.IntVar(&c.MaxLineBytes, "max-line-bytes", tcpin.DefaultMaxLineBytes, "longest line accepted; longer lines are dead-lettered")
	fs.IntVar(&c.MaxConns, "max-conns", tcpin.DefaultMaxConns, "listen mode: most simultaneous source connections")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", tcpin.DefaultIdleTimeout, "listen mode: close a source that finishes no line for this long (silent or trickling)")
	fs.StringVar(&c.Validation, "validation", "strict", "strict (the full event schema) or lenient (any JSON object)")
	fs.StringVar(&c.Topic, "topic", "logs_4", "Kafka topic for events")
	fs.StringVar(&c.DLQTopic, "dlq-topic", "logs_4_dlq", "Kafka topic for dead letters (ignored when --dlq-file is set)")
	fs.StringVar(&c.DLQFile, "dlq-file", "", "write dead letters as JSON lines to this file instead of a topic")
	fs.StringVar(&c.Credentials, "credentials", "secretsmanager", "secretsmanager (the secret --secret-name) or env (KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)")
	fs.StringVar(&c.SecretName, "secret-name", "MWAA_Secrets", "Secrets Manager secret holding the Kafka credentials")
	fs.StringVar(&c.Region, "region", "us-east-1", "AWS region of the secret")
	fs.StringVar(&c.SecretsEndpoint, "secrets-endpoint", "", "Secrets Manager endpoint override (default: AWS_ENDPOINT_URL_SECRETSMANAGER, else AWS)")
	fs.StringVar(&c.SecurityProtocol, "security-protocol", "sasl_ssl", "sasl_ssl (PLAIN), ssl or plaintext")
	fs.StringVar(&c.Bootstrap, "bootstrap", "", "bootstrap servers, overriding the secret's (plaintext needs no credentials)")
	fs.StringVar(&c.CAFile, "ca-file", "", "PEM CA bundle to verify the broker certificate (default: system CAs)")
	fs.BoolVar(&c.InsecureSkipTLS, "insecure-skip-tls-verify", false, "do NOT verify the broker certificate (logs a warning)")
	fs.StringVar(&c.KafkaProperties, "kafka-property", "", "librdkafka overrides, key=value[,key=value...]")
	fs.StringVar(&c.Compression, "compression", "lz4", "lz4, zstd, snappy, gzip or none")
	fs.IntVar(&c.LingerMs, "linger-ms", 5, "producer linger in milliseconds")
	fs.IntVar(&c.EventsPerMessage, "events-per-message", 1, "events newline-joined into one Kafka message (highperf reader batches per read)")
	fs.IntVar(&c.MaxMessageBytes, "max-message-bytes", 900000, "byte cap of a many-events Kafka message (a longer single line is sent alone)")
	// 8 MiB: what a crash (SIGKILL, OOM) can lose is what this queue holds, and while the source outpaces
	// the broker it is always full. 64 MiB was no faster in the fault-injection suite's measurements but put
	// up to 100000 lines at risk; 8 MiB bounds that to about 28000 lines of 300 bytes.
	fs.IntVar(&c.QueueMaxKBytes, "queue-max-kbytes", 8192, "producer local queue bound in KiB: the memory bound under a slow broker, and what a crash can lose")
	fs.Uint64Var(&c.MaxEvents, "max-events", 0, "bounded mode: stop reading after this many lines (0: no bound)")
	fs.DurationVar(&c.Duration, "duration", 0, "bounded mode: stop reading after this long (0: no bound)")
	fs.DurationVar(&c.DrainTimeout, "drain-timeout", 30*time.Second, "on stop, how long to wait for Kafka to acknowledge what was read")
	fs.DurationVar(&c.StartupTimeout, "startup-timeout", 30*time.Second, "bounded mode: how long to wait for the secret and the brokers at start")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", "127.0.0.1:9108", "address for /metrics, /healthz, /readyz (empty disables)")
	fs.StringVar(&c.SummaryFile, "summary-file", "", "also write the final JSON summary to this file")
	fs.StringVar(&c.LogLevel, "log-level", "info", "debug, info, warn or error")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: reader [flags]\n\nReads JSON log lines from TCP, validates them and produces them to Kafka.\n"+
			"Every flag can also be set with READER_<NAME> (e.g. --source-addr as READER_SOURCE_ADDR).\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || envErr != nil {
			return
		}
		name := "READER_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%w: %s=%q: %w", ErrInvalidConfig, name, v, err)
			}
		}
	})
	if envErr != nil {
		return c, envErr
	}
	if c.SecretsEndpoint == "" {
		c.SecretsEndpoint = getenv("AWS_ENDPOINT_URL_SECRETSMANAGER")
	}
	return c, c.Validate()
}

// Validate checks the combination of settings; errors name the flag.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if _, err := tcpin.ParseMode(c.SourceMode); err != nil {
		return bad("--source-mode %q: want connect or listen", c.SourceMode)
	}
	if c.SourceAddr == "" {
		return bad("--source-addr is empty")
	}
	if c.Reader != "highperf" && c.Reader != "basic" {
		return bad("--reader %q: want highperf or basic", c.Reader)
	}
	if c.Validation != "strict" && c.Validation != "lenient" {
		return bad("--validation %q: want strict or lenient", c.Validation)
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
	if c.Credentials != "secretsmanager" && c.Credentials != "env" {
		return bad("--credentials %q: want secretsmanager or env", c.Credentials)
	}
	switch c.SecurityProtocol {
	case "sasl_ssl", "ssl", "plaintext":
	default:
		return bad("--security-protocol %q: want sasl_ssl, ssl or plaintext", c.SecurityProtocol)
	}
	if c.SecurityProtocol != "sasl_ssl" && c.Bootstrap == "" {
		return bad("--security-protocol %s needs --bootstrap (the secret describes a SASL_SSL cluster)", c.SecurityProtocol)
	}
	if c.EventsPerMessage < 1 {
		return bad("--events-per-message must be at least 1")
	}
	if c.MaxMessageBytes < 1024 {
		return bad("--max-message-bytes must be at least 1024")
	}
	if _, err := kafkaout.ParseOverrides(c.KafkaProperties); err != nil {
		return bad("--kafka-property: %v", err)
	}
	if c.DrainTimeout <= 0 {
		return bad("--drain-timeout must be positive")
	}
	return nil
}

// Bounded reports whether the run stops by itself.
func (c Config) Bounded() bool { return c.MaxEvents > 0 || c.Duration > 0 }
