// Package health checks that the pipeline can work: the Kafka credentials in the secret load, the brokers
// accept them, the topics exist, and (when configured) the reader's health endpoint answers and ClickHouse's
// Kafka table consumes (clickhouse.ErrKafkaTableStuck otherwise). Each check reports its name, outcome, error
// and latency, so a failure says which part broke rather than crashing.
// The health Lambda (functions/health) runs it on a schedule and emits the verdict as CloudWatch metrics.
package health

import (
	"fmt"
	"net/url"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
)

// Defaults of the Config fields, shared with the reader's own defaults so that both look at the same things.
const (
	DefaultSecretName = "MWAA_Secrets"
	DefaultRegion     = "us-east-1"
	DefaultTopic      = "logs_4"
	DefaultDLQTopic   = "logs_4_dlq"
	DefaultNamespace  = "LogPipeline"
	DefaultTimeout    = 10 * time.Second
	// DefaultClickHouseStaleAfter is how long the Kafka table may go without a poll, or keep an exception
	// with no commit after it, before the clickhouse check fails.
	DefaultClickHouseStaleAfter = 5 * time.Minute
)

// Config says what to check. It is read once from the environment by FromEnv.
type Config struct {
	// SecretName is the Secrets Manager secret holding the Kafka credentials (HEALTH_SECRET_NAME,
	// default MWAA_Secrets).
	SecretName string
	// Region is the secret's region (AWS_REGION, default us-east-1).
	Region string
	// SecretsEndpoint overrides the Secrets Manager endpoint, for an emulator
	// (AWS_ENDPOINT_URL_SECRETSMANAGER; empty means the AWS default).
	SecretsEndpoint string
	// Topic must exist (HEALTH_TOPIC, default logs_4).
	Topic string
	// DLQTopic must exist too, and its size is reported as the DeadLetterMessages metric
	// (HEALTH_DLQ_TOPIC, default logs_4_dlq; "-" turns the check off).
	DLQTopic string
	// SecurityProtocol is sasl_ssl (default, PLAIN mechanism), ssl or plaintext (HEALTH_SECURITY_PROTOCOL), as
	// for the reader.
	SecurityProtocol kafkaout.SecurityProtocol
	// CAFile is a PEM bundle to verify the brokers with; empty means the system's CAs (HEALTH_CA_FILE).
	CAFile string
	// ReaderURL is the reader's /healthz address; empty skips the reader check (HEALTH_READER_URL).
	ReaderURL string
	// Timeout bounds each check (HEALTH_TIMEOUT, a Go duration, default 10s).
	Timeout time.Duration
	// Namespace is the CloudWatch namespace of the emitted metrics (HEALTH_METRICS_NAMESPACE, default
	// LogPipeline).
	Namespace string
	// ClickHouseURL, when set, adds the clickhouse check: the consumers of the Kafka table logs_queue in
	// ClickHouseDatabase, from system.kafka_consumers (HEALTH_CLICKHOUSE_URL; empty skips it).
	ClickHouseURL string
	// ClickHouseUser (HEALTH_CLICKHOUSE_USER, default "default") logs in with the password in the secret
	// ClickHousePasswordSecret (HEALTH_CLICKHOUSE_PASSWORD_SECRET; empty means no password).
	ClickHouseUser, ClickHousePasswordSecret string
	// ClickHouseDatabase holds logs_queue (HEALTH_CLICKHOUSE_DATABASE, default KafkaEngine).
	ClickHouseDatabase string
	// ClickHouseStaleAfter: see clickhouse.KafkaTableStatus.Check (HEALTH_CLICKHOUSE_STALE_AFTER, default 5m).
	ClickHouseStaleAfter time.Duration
}

// FromEnv reads the Config from getenv (os.Getenv in the Lambda) and validates it.
func FromEnv(getenv func(string) string) (Config, error) {
	c := Config{
		SecretName:      getenv("HEALTH_SECRET_NAME"),
		Region:          getenv("AWS_REGION"),
		SecretsEndpoint: getenv("AWS_ENDPOINT_URL_SECRETSMANAGER"),
		Topic:           getenv("HEALTH_TOPIC"),
		DLQTopic:        getenv("HEALTH_DLQ_TOPIC"),
		CAFile:          getenv("HEALTH_CA_FILE"),
		ReaderURL:       getenv("HEALTH_READER_URL"),
		Namespace:       getenv("HEALTH_METRICS_NAMESPACE"),

		ClickHouseURL:            getenv("HEALTH_CLICKHOUSE_URL"),
		ClickHouseUser:           getenv("HEALTH_CLICKHOUSE_USER"),
		ClickHousePasswordSecret: getenv("HEALTH_CLICKHOUSE_PASSWORD_SECRET"),
		ClickHouseDatabase:       getenv("HEALTH_CLICKHOUSE_DATABASE"),
	}
	if s := getenv("HEALTH_CLICKHOUSE_STALE_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("%w: HEALTH_CLICKHOUSE_STALE_AFTER: %w", ErrInvalidConfig, err)
		}
		c.ClickHouseStaleAfter = d
	}
	if err := c.SecurityProtocol.Set(getenv("HEALTH_SECURITY_PROTOCOL")); err != nil {
		return c, fmt.Errorf("%w: HEALTH_SECURITY_PROTOCOL: %w", ErrInvalidConfig, err)
	}
	if s := getenv("HEALTH_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("%w: HEALTH_TIMEOUT: %w", ErrInvalidConfig, err)
		}
		c.Timeout = d
	}
	c = c.withDefaults()
	return c, c.Validate()
}

func (c Config) withDefaults() Config {
	if c.SecretName == "" {
		c.SecretName = DefaultSecretName
	}
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if c.Topic == "" {
		c.Topic = DefaultTopic
	}
	switch c.DLQTopic {
	case "":
		c.DLQTopic = DefaultDLQTopic
	case "-":
		c.DLQTopic = ""
	}
	if c.SecurityProtocol == "" {
		c.SecurityProtocol = kafkaout.SASLSSL
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Namespace == "" {
		c.Namespace = DefaultNamespace
	}
	if c.ClickHouseUser == "" {
		c.ClickHouseUser = "default"
	}
	if c.ClickHouseDatabase == "" {
		c.ClickHouseDatabase = clickhouse.DefaultDatabase
	}
	if c.ClickHouseStaleAfter == 0 {
		c.ClickHouseStaleAfter = DefaultClickHouseStaleAfter
	}
	return c
}

// Validate reports the first setting that cannot work, naming its environment variable.
func (c Config) Validate() error {
	if _, err := kafkaout.ParseSecurityProtocol(string(c.SecurityProtocol)); err != nil {
		return fmt.Errorf("%w: HEALTH_SECURITY_PROTOCOL: %w", ErrInvalidConfig, err)
	}
	if c.Timeout < 0 {
		return fmt.Errorf("%w: HEALTH_TIMEOUT %s is negative", ErrInvalidConfig, c.Timeout)
	}
	if c.ClickHouseStaleAfter < 0 {
		return fmt.Errorf("%w: HEALTH_CLICKHOUSE_STALE_AFTER %s is negative", ErrInvalidConfig, c.ClickHouseStaleAfter)
	}
	if c.ClickHouseURL != "" {
		if _, err := clickhouse.NewClient(c.ClickHouseURL); err != nil {
			return fmt.Errorf("%w: HEALTH_CLICKHOUSE_URL: %w", ErrInvalidConfig, err)
		}
	}
	if c.ReaderURL != "" {
		u, err := url.Parse(c.ReaderURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: HEALTH_READER_URL %q is not an http(s) URL", ErrInvalidConfig, c.ReaderURL)
		}
	}
	return nil
}
