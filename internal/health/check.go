package health

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// The names of the checks, as they appear in the verdict and in the Check metric dimension.
const (
	CheckSecret   = "secret"
	CheckBrokers  = "brokers"
	CheckTopic    = "topic"
	CheckDLQTopic = "dlq_topic"
	CheckReader   = "reader"
	// CheckClickHouse is the Kafka table's consumer state in ClickHouse; it fails with
	// clickhouse.ErrKafkaTableStuck when the table does not consume.
	CheckClickHouse = "clickhouse"
)

// Result is the outcome of one check.
type Result struct {
	Name      string `json:"name"`
	OK        bool   `json:"ok"`
	Error     string `json:"error,omitempty"`
	LatencyMS int64  `json:"latency_ms"`

	err error
}

// Err returns the check's error (nil when it passed), for errors.Is against this package's sentinels and
// kafkaout's (ErrAuthentication, ErrTLS, ErrUnreachable, ErrTopicNotFound).
func (r Result) Err() error { return r.err }

// Verdict is what one run of the checks found. OK is true only when every check passed.
type Verdict struct {
	OK        bool      `json:"ok"`
	CheckedAt time.Time `json:"checked_at"`
	Checks    []Result  `json:"checks"`
	// DeadLetterMessages is the dead-letter topic's total message count (the sum of its partitions' high
	// watermarks), present when the dlq_topic check passed. Its growth between runs is what the dead-letter
	// alarm watches.
	DeadLetterMessages *int64 `json:"dead_letter_messages,omitempty"`
	// ClickHouse is the Kafka table's consumer state (partitions, messages read, last poll, last exception)
	// and the row count of logs_errors, present when the clickhouse check could read it.
	ClickHouse *clickhouse.KafkaTableStatus `json:"clickhouse,omitempty"`
}

// Check returns the result named name.
func (v Verdict) Check(name string) (Result, bool) {
	for _, r := range v.Checks {
		if r.Name == name {
			return r, true
		}
	}
	return Result{}, false
}

// SecretLoader loads the Kafka credentials. secrets.FromSecretsManager is the one the Lambda uses.
type SecretLoader func(ctx context.Context, opts secrets.Options) (secrets.Kafka, error)

// Checker runs the checks of a Config. It is safe for concurrent use: each Run builds its own clients.
type Checker struct {
	cfg    Config
	load   SecretLoader
	client *http.Client
	now    func() time.Time
	// clickhousePassword reads the secret named by ClickHousePasswordSecret.
	clickhousePassword func(ctx context.Context, name string) (string, error)
}

// readClickHousePassword reads the ClickHouse password from Secrets Manager (the SDK's default
// configuration, AWS_ENDPOINT_URL_SECRETSMANAGER honoured).
func readClickHousePassword(ctx context.Context, name string) (string, error) {
	sm, err := clickhouse.NewSecretsManagerClient(ctx)
	if err != nil {
		return "", err
	}
	return clickhouse.PasswordFromSecret(ctx, sm, name)
}

// NewChecker returns a Checker for cfg (which FromEnv has validated) that loads the secret with load.
func NewChecker(cfg Config, load SecretLoader) *Checker {
	return &Checker{
		cfg:    cfg.withDefaults(),
		load:   load,
		client: &http.Client{},
		now:    time.Now,

		clickhousePassword: readClickHousePassword,
	}
}

// Run runs every check, each within the configured timeout, and never fails as a whole: a check that
// cannot run is reported with ErrSkipped and the name of the check it waited for.
func (c *Checker) Run(ctx context.Context) Verdict {
	v := Verdict{CheckedAt: c.now().UTC()}

	var creds secrets.Kafka
	secret := c.timed(ctx, CheckSecret, func(ctx context.Context) error {
		var err error
		creds, err = c.load(ctx, secrets.Options{SecretName: c.cfg.SecretName, Region: c.cfg.Region, Endpoint: c.cfg.SecretsEndpoint})
		if err != nil {
			return fmt.Errorf("loading secret %s: %w", c.cfg.SecretName, err)
		}
		return nil
	})
	v.Checks = append(v.Checks, secret)

	kafkaChecks := []string{CheckBrokers, CheckTopic}
	if c.cfg.DLQTopic != "" {
		kafkaChecks = append(kafkaChecks, CheckDLQTopic)
	}
	var (
		ends  map[int32]int64
		probe *kafkaout.Probe
	)
	if !secret.OK {
		for _, name := range kafkaChecks {
			v.Checks = append(v.Checks, skipped(name, CheckSecret))
		}
	} else {
		var results []Result
		results, probe = c.runKafka(ctx, creds, &v, &ends)
		v.Checks = append(v.Checks, results...)
		if probe != nil {
			defer probe.Close()
		}
	}

	if c.cfg.ClickHouseURL != "" {
		v.Checks = append(v.Checks, c.timed(ctx, CheckClickHouse, func(ctx context.Context) error {
			return c.checkClickHouse(ctx, probe, ends, &v)
		}))
	}

	switch c.cfg.readerCheck() {
	case ReaderCheckURL:
		v.Checks = append(v.Checks, c.timed(ctx, CheckReader, c.checkReader))
	case ReaderCheckECS:
		v.Checks = append(v.Checks, c.timed(ctx, CheckReader, c.checkReaderECS))
	}

	v.OK = true
	for _, r := range v.Checks {
		v.OK = v.OK && r.OK
	}
	return v
}

// runKafka runs the broker and topic checks over one client, so the connection and SASL handshake the
// brokers check pays for are reused by the topic checks.
//
// With the clickhouse check configured, it also reads the topic's end offsets into ends (left nil when they
// cannot be read), so that check can tell a stalled Kafka table from an idle topic.
//
// It returns the probe for the clickhouse check (which asks the brokers for the Kafka table's committed
// offsets), nil when it could not be built; the caller closes it.
func (c *Checker) runKafka(ctx context.Context, creds secrets.Kafka, v *Verdict, ends *map[int32]int64) ([]Result, *kafkaout.Probe) {
	probe, err := kafkaout.NewProbe(kafkaout.Connection{SecurityProtocol: c.cfg.SecurityProtocol, CAFile: c.cfg.CAFile}.WithCredentials(creds), "log-pipeline-health")
	if err != nil {
		out := []Result{failed(CheckBrokers, err)}
		out = append(out, skipped(CheckTopic, CheckBrokers))
		if c.cfg.DLQTopic != "" {
			out = append(out, skipped(CheckDLQTopic, CheckBrokers))
		}
		return out, nil
	}

	brokers := c.timed(ctx, CheckBrokers, probe.Brokers)
	out := []Result{brokers}
	if !brokers.OK {
		out = append(out, skipped(CheckTopic, CheckBrokers))
		if c.cfg.DLQTopic != "" {
			out = append(out, skipped(CheckDLQTopic, CheckBrokers))
		}
		return out, probe
	}
	out = append(out, c.timed(ctx, CheckTopic, func(ctx context.Context) error {
		if c.cfg.ClickHouseURL == "" {
			return probe.CheckTopic(ctx, c.cfg.Topic)
		}
		e, err := probe.EndOffsets(ctx, c.cfg.Topic)
		if err == nil {
			*ends = e
		}
		return err
	}))
	if c.cfg.DLQTopic != "" {
		out = append(out, c.timed(ctx, CheckDLQTopic, func(ctx context.Context) error {
			n, err := probe.TopicMessages(ctx, c.cfg.DLQTopic)
			if err == nil {
				v.DeadLetterMessages = &n
			}
			return err
		}))
	}
	return out, probe
}

// checkClickHouse reads the Kafka table's consumer state and fails with clickhouse.ErrKafkaTableStuck when
// it does not consume; ends are the topic's end offsets, nil when unknown. With ends known it asks the
// brokers (probe) for the offsets the table's consumer group committed: a table committed up to the end is
// healthy, even with the exceptions of a broker outage it has recovered from.
func (c *Checker) checkClickHouse(ctx context.Context, probe *kafkaout.Probe, ends map[int32]int64, v *Verdict) error {
	password := ""
	if c.cfg.ClickHousePasswordSecret != "" {
		p, err := c.clickhousePassword(ctx, c.cfg.ClickHousePasswordSecret)
		if err != nil {
			return fmt.Errorf("reading the ClickHouse password: %w", err)
		}
		password = p
	}
	cl, err := clickhouse.NewClient(c.cfg.ClickHouseURL, clickhouse.WithCredentials(c.cfg.ClickHouseUser, password), clickhouse.WithHTTPClient(c.client))
	if err != nil {
		return err
	}
	st, err := clickhouse.KafkaStatus(ctx, cl, c.cfg.ClickHouseDatabase)
	if err != nil {
		return err
	}
	p := clickhouse.Progress{End: ends}
	if probe != nil && ends != nil && st.Group != "" && st.Topic == c.cfg.Topic {
		// Unreadable committed offsets (the credentials may not describe the group) leave them unknown.
		if committed, err := probe.CommittedOffsets(ctx, st.Group, st.Topic); err == nil {
			p.Committed = committed
		}
	}
	if p.End != nil {
		st.Progress = &p
	}
	v.ClickHouse = &st
	return st.Check(c.now(), c.cfg.ClickHouseStaleAfter, p)
}

// timed runs check under the configured timeout and records its outcome and latency.
func (c *Checker) timed(ctx context.Context, name string, check func(context.Context) error) Result {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	start := c.now()
	err := check(ctx)
	r := failed(name, err)
	r.LatencyMS = c.now().Sub(start).Milliseconds()
	return r
}

func failed(name string, err error) Result {
	r := Result{Name: name, OK: err == nil, err: err}
	if err != nil {
		r.Error = err.Error()
	}
	return r
}

func skipped(name, after string) Result {
	return failed(name, fmt.Errorf("%w: check %s failed", ErrSkipped, after))
}

// IsSkipped reports whether r did not run because a check it depends on failed.
func IsSkipped(r Result) bool { return errors.Is(r.err, ErrSkipped) }
