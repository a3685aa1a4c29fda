package clickhouse

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// Environment variables of the bootstrap function (functions/bootstrap).
const (
	EnvURL            = "CLICKHOUSE_URL"
	EnvUser           = "CLICKHOUSE_USER"
	EnvDatabase       = "CLICKHOUSE_DATABASE"
	EnvPasswordSecret = "CLICKHOUSE_PASSWORD_SECRET"
	EnvBrokers        = "KAFKA_BROKERS"
	EnvTopic          = "KAFKA_TOPIC"
	EnvGroup          = "KAFKA_CONSUMER_GROUP"
	EnvNumConsumers   = "KAFKA_NUM_CONSUMERS"
	// EnvKafkaSecret names the secret with the Kafka credentials (default MWAA_Secrets, the reader's).
	EnvKafkaSecret = "KAFKA_SECRET_NAME"
	// EnvCAPEM is the PEM of a private CA that verifies the brokers; EnvCALocation a CA bundle's path on the
	// ClickHouse server. Neither: the default trust store (public CAs, e.g. Confluent Cloud).
	EnvCAPEM      = "KAFKA_SSL_CA_PEM"
	EnvCALocation = "KAFKA_SSL_CA_LOCATION"
	// EnvCluster runs the DDL ON CLUSTER (self-managed clusters).
	EnvCluster = "CLICKHOUSE_CLUSTER"
)

// BootstrapConfig is what the bootstrap function reads from its environment.
type BootstrapConfig struct {
	// URL is ClickHouse's HTTP(S) endpoint (CLICKHOUSE_URL).
	URL string
	// User defaults to "default" (CLICKHOUSE_USER).
	User string
	// PasswordSecret names the Secrets Manager secret holding the password (CLICKHOUSE_PASSWORD_SECRET);
	// empty means Password.
	PasswordSecret string
	// Password is used when PasswordSecret is empty (chctl passes CLICKHOUSE_PASSWORD; the Lambda never
	// sets it).
	Password string `json:"-"`
	// KafkaSecret names the secret with the Kafka credentials and bootstrap servers (KAFKA_SECRET_NAME,
	// default MWAA_Secrets). The bootstrap reads it on every run, so a rotated password reaches ClickHouse
	// by running the bootstrap again.
	KafkaSecret string
	// Schema: CLICKHOUSE_DATABASE, KAFKA_BROKERS (default: the secret's KAFKA_BOOTSTRAP_SERVER),
	// KAFKA_TOPIC, KAFKA_CONSUMER_GROUP (default: DefaultGroupFor the database; a group set here belongs to
	// CLICKHOUSE_DATABASE alone), KAFKA_NUM_CONSUMERS, CLICKHOUSE_CLUSTER; Schema.Auth's CA from
	// KAFKA_SSL_CA_PEM or KAFKA_SSL_CA_LOCATION. The credentials come from KafkaSecret at run time.
	Schema Schema
	// Timeout bounds one invocation's work against ClickHouse. Default 60s.
	Timeout time.Duration
}

// BootstrapConfigFromEnv reads a BootstrapConfig through lookup (os.LookupEnv, or a map in tests) and
// validates it. Errors name the variable.
func BootstrapConfigFromEnv(lookup func(string) (string, bool)) (BootstrapConfig, error) {
	get := func(k string) string { v, _ := lookup(k); return v }
	c := BootstrapConfig{
		URL:            get(EnvURL),
		User:           get(EnvUser),
		PasswordSecret: get(EnvPasswordSecret),
		KafkaSecret:    get(EnvKafkaSecret),
		Schema:         NewSchema(get(EnvBrokers)),
		Timeout:        60 * time.Second,
	}
	if c.KafkaSecret == "" {
		c.KafkaSecret = secrets.DefaultSecretName
	}
	c.Schema.Cluster = get(EnvCluster)
	c.Schema.Auth.CAPEM = get(EnvCAPEM)
	c.Schema.Auth.CALocation = get(EnvCALocation)
	if c.Schema.Auth.CAPEM != "" && c.Schema.Auth.CALocation != "" {
		return c, fmt.Errorf("%s and %s: set one of them: %w", EnvCAPEM, EnvCALocation, ErrSecretValue)
	}
	if c.User == "" {
		c.User = "default"
	}
	if v := get(EnvDatabase); v != "" {
		c.Schema.Database = v
	}
	if v := get(EnvTopic); v != "" {
		c.Schema.Topic = v
	}
	if v := get(EnvGroup); v != "" {
		c.Schema.Group = v
	}
	if v := get(EnvNumConsumers); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return c, fmt.Errorf("%s: %w", EnvNumConsumers, err)
		}
		c.Schema.NumConsumers = n
	}
	if c.URL == "" {
		return c, fmt.Errorf("%s: %w", EnvURL, ErrEmpty)
	}
	// The brokers may come from the secret at run time; validate the rest with a placeholder.
	probe := c.Schema
	if probe.Brokers == "" {
		probe.Brokers = "from-the-secret:9092"
	}
	if err := probe.Validate(); err != nil {
		return c, fmt.Errorf("schema from the environment: %w", err)
	}
	return c, nil
}

// BootstrapEvent is the bootstrap function's input. Every field is optional and overrides the
// environment for one invocation, e.g. to bootstrap a second database from the console.
type BootstrapEvent struct {
	Database string `json:"database,omitempty"`
	Topic    string `json:"topic,omitempty"`
	// Group names logs_queue's consumer group. Without it a database other than the configured one reads
	// in a group of its own (DefaultGroupFor), never in the configured database's: two tables in one group
	// split the topic's partitions, each database getting part of the events. Naming the configured group
	// here is how two databases share one on purpose.
	Group string `json:"group,omitempty"`
	// DryRun compares and reports what the bootstrap would do, changing nothing.
	DryRun bool `json:"dryRun,omitempty"`
}

// BootstrapResponse is the bootstrap function's report. It names the credentials' source and version
// (Credentials), never the password. OK is false when an object's definition differs (see
// Result.Different); Handle then returns the report inside a *BootstrapError instead of as its answer.
type BootstrapResponse struct {
	OK          bool   `json:"ok"`
	Database    string `json:"database"`
	Credentials string `json:"credentials"`
	Result
}

// BootstrapError is the bootstrap's not-ok outcome: objects differ from the DDL. It fails the invocation,
// so the Lambda console shows a failed run (aws-lambda-go reports it as errorType "BootstrapError") whose
// message is the summary; Response is the whole report, diffs included, which chctl prints and the Lambda
// writes to its log. It wraps ErrDrift.
type BootstrapError struct {
	Response BootstrapResponse
}

// Error is the summary: what differs and why, and how many objects were created, kept and updated.
func (e *BootstrapError) Error() string {
	r := e.Response
	var b strings.Builder
	b.WriteString("bootstrap of " + r.Database)
	if r.DryRun {
		b.WriteString(" (dry run)")
	}
	fmt.Fprintf(&b, ": %d object(s) differ from the DDL: ", len(r.Different))
	for i, d := range r.Diffs {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(d.Name + ": " + d.Reason)
	}
	fmt.Fprintf(&b, "; created %d, kept %d, updated %d; the report holds the diffs", len(r.Created), len(r.Kept), len(r.Updated))
	return b.String()
}

// Unwrap makes errors.Is(err, ErrDrift) hold.
func (e *BootstrapError) Unwrap() error { return ErrDrift }

// BootstrapHandler runs Apply for the bootstrap function. Its Handle method has the signature
// aws-lambda-go's lambda.Start takes.
type BootstrapHandler struct {
	Config  BootstrapConfig
	Secrets SecretGetter
	// HTTP is the client to ClickHouse; nil uses one that verifies TLS and times out requests after 30s.
	HTTP *http.Client
	// Report, when set, receives the whole report as one JSON line when the outcome is not ok (the Lambda
	// sets its standard output, which goes to its log: the console shows it beside the failed invocation).
	Report io.Writer
}

// Handle applies the DDL and reports what it did. Every outcome that is not ok fails the invocation:
// errors (ClickHouse unreachable, authentication, a failing CREATE), and drift, as a *BootstrapError whose
// message is the summary and which carries the report.
func (h BootstrapHandler) Handle(ctx context.Context, ev BootstrapEvent) (BootstrapResponse, error) {
	s := h.Config.Schema
	if ev.Database != "" && ev.Database != s.Database {
		s.Database = ev.Database
		// KAFKA_CONSUMER_GROUP is the configured database's group: another database gets its own.
		s.Group = ""
	}
	if ev.Topic != "" {
		s.Topic = ev.Topic
	}
	if ev.Group != "" {
		s.Group = ev.Group
	}
	timeout := h.Config.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	password := h.Config.Password
	if h.Config.PasswordSecret != "" {
		if h.Secrets == nil {
			return BootstrapResponse{}, fmt.Errorf("password secret %s set but no Secrets Manager client: %w", h.Config.PasswordSecret, ErrEmpty)
		}
		p, err := PasswordFromSecret(ctx, h.Secrets, h.Config.PasswordSecret)
		if err != nil {
			return BootstrapResponse{}, err
		}
		password = p
	}
	if h.Secrets == nil {
		return BootstrapResponse{}, fmt.Errorf("kafka secret %s: no Secrets Manager client: %w", h.Config.KafkaSecret, ErrEmpty)
	}
	auth, brokers, err := KafkaAuthFromSecret(ctx, h.Secrets, h.Config.KafkaSecret)
	if err != nil {
		return BootstrapResponse{}, err
	}
	auth.SecurityProtocol, auth.SASLMechanism = s.Auth.SecurityProtocol, s.Auth.SASLMechanism
	auth.CAPEM, auth.CALocation = s.Auth.CAPEM, s.Auth.CALocation
	s.Auth = auth
	if s.Brokers == "" {
		s.Brokers = brokers
	}
	if err := s.Validate(); err != nil {
		return BootstrapResponse{}, fmt.Errorf("schema: %w", err)
	}
	hc := h.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c, err := NewClient(h.Config.URL, WithCredentials(h.Config.User, password), WithHTTPClient(hc))
	if err != nil {
		return BootstrapResponse{}, err
	}
	run := Apply
	if ev.DryRun {
		run = DryRun
	}
	res, err := run(ctx, c, s)
	resp := BootstrapResponse{OK: err == nil, Database: s.Database, Credentials: s.connectionMarker(), Result: res}
	if err != nil && !errors.Is(err, ErrDrift) {
		return BootstrapResponse{}, auth.redactErr(fmt.Errorf("bootstrapping %s: %w", s.Database, err))
	}
	if err != nil {
		if h.Report != nil {
			// The report is redacted already (Apply redacts every definition and diff it returns).
			if b, jerr := json.Marshal(resp); jerr == nil {
				fmt.Fprintf(h.Report, "%s\n", b)
			}
		}
		return BootstrapResponse{}, &BootstrapError{Response: resp}
	}
	return resp, nil
}

// DefaultGroupFor is the consumer group a database's logs_queue reads in unless one is named: DefaultGroup
// (logs_consumer, the production default) for DefaultDatabase, and logs_consumer_<database> for any other.
// Kafka splits a topic's partitions among the consumers of one group, so two databases in one group would
// each get only part of the events; a group of its own gives each database the whole topic.
func DefaultGroupFor(database string) string {
	if database == DefaultDatabase {
		return DefaultGroup
	}
	return DefaultGroup + "_" + database
}

// ConsumerGroup is logs_queue's consumer group: Group when set, else DefaultGroupFor(Database).
func (s Schema) ConsumerGroup() string {
	if s.Group != "" {
		return s.Group
	}
	return DefaultGroupFor(s.Database)
}
