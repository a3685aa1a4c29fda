// Package health checks that the pipeline can work: the Kafka credentials in the secret load, the brokers
// accept them, the topics exist, and (when configured) the reader's health endpoint answers and ClickHouse's
// Kafka table consumes (clickhouse.ErrKafkaTableStuck otherwise). Each check reports its name, outcome, error
// and latency, so a failure says which part broke rather than crashing.
// The health Lambda (functions/health) runs it on a schedule and emits the verdict as CloudWatch metrics.
package health

import (
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// Defaults of the Config fields: the reader's own (readerspec), so that both look at the same things.
const (
	DefaultSecretName = readerspec.SecretName
	DefaultRegion     = readerspec.Region
	DefaultTopic      = readerspec.Topic
	DefaultDLQTopic   = readerspec.DLQTopic
	DefaultNamespace  = readerspec.MetricNamespace
	DefaultTimeout    = 10 * time.Second
	// DefaultClickHouseStaleAfter is how long the Kafka table may go without a poll, or keep an exception
	// with no commit after it, before the clickhouse check fails.
	DefaultClickHouseStaleAfter = 5 * time.Minute
	// DefaultReaderWindow is how far back the ECS reader check looks at the reader's metrics: twice their
	// one-minute resolution is not enough to tell a stall from a late record, ten minutes is.
	DefaultReaderWindow = 10 * time.Minute
)

// How the reader is checked (HEALTH_READER_CHECK).
const (
	// ReaderCheckAuto checks through ECS when HEALTH_ECS_CLUSTER is set, through HEALTH_READER_URL when that
	// is set, and not at all otherwise.
	ReaderCheckAuto = "auto"
	// ReaderCheckECS reads the service's running and desired task counts and the reader's EMF metrics: it
	// works in every source mode, with no address to reach.
	ReaderCheckECS = "ecs"
	// ReaderCheckURL asks the reader's /healthz.
	ReaderCheckURL = "url"
	// ReaderCheckOff turns the check off.
	ReaderCheckOff = "off"
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
	// Topic must exist (HEALTH_TOPIC, default readerspec.Topic).
	Topic string
	// DLQTopic must exist too, and its size is reported as the DeadLetterMessages metric
	// (HEALTH_DLQ_TOPIC, default readerspec.DLQTopic; "-" turns the check off).
	DLQTopic string
	// SecurityProtocol is sasl_ssl (default, PLAIN mechanism), ssl or plaintext (HEALTH_SECURITY_PROTOCOL), as
	// for the reader.
	SecurityProtocol kafkaout.SecurityProtocol
	// CAFile is a PEM bundle to verify the brokers with; empty means the system's CAs (HEALTH_CA_FILE).
	CAFile string
	// ReaderURL is the reader's /healthz address (HEALTH_READER_URL), for ReaderCheck url.
	ReaderURL string
	// ReaderCheck is auto (default), ecs, url or off (HEALTH_READER_CHECK).
	ReaderCheck string
	// ECSCluster and ECSService name the reader's ECS service (HEALTH_ECS_CLUSTER, HEALTH_ECS_SERVICE). With
	// no service (the scheduled bounded runs), the ecs check looks at the metrics alone.
	ECSCluster, ECSService string
	// ReaderWindow is how far back the ecs check reads the reader's metrics (HEALTH_READER_WINDOW, default
	// 10m).
	ReaderWindow time.Duration
	// ReaderService is the Service dimension of the reader metrics the ecs check reads
	// (HEALTH_READER_SERVICE, default Service: the reader's --emf-service).
	ReaderService string
	// ECSEndpoint and CloudWatchEndpoint override the AWS endpoints, for an emulator (AWS_ENDPOINT_URL_ECS,
	// AWS_ENDPOINT_URL_CLOUDWATCH).
	ECSEndpoint, CloudWatchEndpoint string
	// Timeout bounds each check (HEALTH_TIMEOUT, a Go duration, default 10s).
	Timeout time.Duration
	// Namespace is the CloudWatch namespace of the emitted metrics (HEALTH_METRICS_NAMESPACE, default
	// LogPipeline).
	Namespace string
	// Service is the Service dimension of the emitted metrics (HEALTH_METRICS_SERVICE, default log-pipeline):
	// the deployment's identity, which the stack derives from its environment (cwmetric.ServiceFor).
	Service string
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
		Service:         getenv("HEALTH_METRICS_SERVICE"),

		ClickHouseURL:            getenv("HEALTH_CLICKHOUSE_URL"),
		ClickHouseUser:           getenv("HEALTH_CLICKHOUSE_USER"),
		ClickHousePasswordSecret: getenv("HEALTH_CLICKHOUSE_PASSWORD_SECRET"),
		ClickHouseDatabase:       getenv("HEALTH_CLICKHOUSE_DATABASE"),
		ReaderCheck:              strings.ToLower(getenv("HEALTH_READER_CHECK")),
		ECSCluster:               getenv("HEALTH_ECS_CLUSTER"),
		ECSService:               getenv("HEALTH_ECS_SERVICE"),
		ReaderService:            getenv("HEALTH_READER_SERVICE"),
		ECSEndpoint:              getenv("AWS_ENDPOINT_URL_ECS"),
		CloudWatchEndpoint:       getenv("AWS_ENDPOINT_URL_CLOUDWATCH"),
	}
	if s := getenv("HEALTH_CLICKHOUSE_STALE_AFTER"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("%w: HEALTH_CLICKHOUSE_STALE_AFTER: %w", ErrInvalidConfig, err)
		}
		c.ClickHouseStaleAfter = d
	}
	if s := getenv("HEALTH_READER_WINDOW"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			return c, fmt.Errorf("%w: HEALTH_READER_WINDOW: %w", ErrInvalidConfig, err)
		}
		c.ReaderWindow = d
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
	if c.Service == "" {
		c.Service = cwmetric.ServiceName
	}
	if c.ReaderService == "" {
		c.ReaderService = c.Service
	}
	if c.ReaderWindow == 0 {
		c.ReaderWindow = DefaultReaderWindow
	}
	if c.ReaderCheck == "" {
		c.ReaderCheck = ReaderCheckAuto
	}
	return c
}

// readerCheck is the reader check that runs: ReaderCheck, with auto resolved.
func (c Config) readerCheck() string {
	if c.ReaderCheck != ReaderCheckAuto {
		return c.ReaderCheck
	}
	switch {
	case c.ECSCluster != "":
		return ReaderCheckECS
	case c.ReaderURL != "":
		return ReaderCheckURL
	}
	return ReaderCheckOff
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
	switch c.readerCheck() {
	case ReaderCheckOff:
	case ReaderCheckECS:
		if c.ECSCluster == "" {
			return fmt.Errorf("%w: HEALTH_READER_CHECK ecs needs HEALTH_ECS_CLUSTER", ErrInvalidConfig)
		}
		if c.ReaderWindow < 2*time.Minute {
			return fmt.Errorf("%w: HEALTH_READER_WINDOW %s is under 2m (the reader's metrics come once a minute)", ErrInvalidConfig, c.ReaderWindow)
		}
	case ReaderCheckURL:
		if c.ReaderURL == "" {
			return fmt.Errorf("%w: HEALTH_READER_CHECK url needs HEALTH_READER_URL", ErrInvalidConfig)
		}
	default:
		return fmt.Errorf("%w: HEALTH_READER_CHECK %q (want auto, ecs, url or off)", ErrInvalidConfig, c.ReaderCheck)
	}
	if c.ReaderURL != "" {
		u, err := url.Parse(c.ReaderURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: HEALTH_READER_URL %q is not an http(s) URL", ErrInvalidConfig, c.ReaderURL)
		}
	}
	return nil
}
