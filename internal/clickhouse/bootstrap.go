package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
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
)

// BootstrapConfig is what the bootstrap function reads from its environment.
type BootstrapConfig struct {
	// URL is ClickHouse's HTTP(S) endpoint (CLICKHOUSE_URL).
	URL string
	// User defaults to "default" (CLICKHOUSE_USER).
	User string
	// PasswordSecret names the Secrets Manager secret holding the password (CLICKHOUSE_PASSWORD_SECRET);
	// empty means no password.
	PasswordSecret string
	// Schema: CLICKHOUSE_DATABASE, KAFKA_BROKERS, KAFKA_TOPIC, KAFKA_CONSUMER_GROUP, KAFKA_NUM_CONSUMERS.
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
		Schema:         NewSchema(get(EnvBrokers)),
		Timeout:        60 * time.Second,
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
	if c.Schema.Brokers == "" {
		return c, fmt.Errorf("%s: %w", EnvBrokers, ErrEmpty)
	}
	if err := c.Schema.Validate(); err != nil {
		return c, fmt.Errorf("schema from the environment: %w", err)
	}
	return c, nil
}

// BootstrapEvent is the bootstrap function's input. Every field is optional and overrides the
// environment for one invocation, e.g. to bootstrap a second database from the console.
type BootstrapEvent struct {
	Database string `json:"database,omitempty"`
	Topic    string `json:"topic,omitempty"`
	Group    string `json:"group,omitempty"`
}

// BootstrapResponse is the bootstrap function's output. OK is false when an object's definition differs
// (see Result.Different); the invocation itself then still succeeds, so the caller sees the report.
type BootstrapResponse struct {
	OK       bool   `json:"ok"`
	Database string `json:"database"`
	Result
}

// BootstrapHandler runs Apply for the bootstrap function. Its Handle method has the signature
// aws-lambda-go's lambda.Start takes.
type BootstrapHandler struct {
	Config  BootstrapConfig
	Secrets SecretGetter
	// HTTP is the client to ClickHouse; nil uses one that verifies TLS and times out requests after 30s.
	HTTP *http.Client
}

// Handle applies the DDL and reports what it did. Errors (ClickHouse unreachable, authentication,
// a failing CREATE) fail the invocation; drift does not (see BootstrapResponse).
func (h BootstrapHandler) Handle(ctx context.Context, ev BootstrapEvent) (BootstrapResponse, error) {
	s := h.Config.Schema
	if ev.Database != "" {
		s.Database = ev.Database
	}
	if ev.Topic != "" {
		s.Topic = ev.Topic
	}
	if ev.Group != "" {
		s.Group = ev.Group
	}
	if err := s.Validate(); err != nil {
		return BootstrapResponse{}, fmt.Errorf("event: %w", err)
	}
	timeout := h.Config.Timeout
	if timeout <= 0 {
		timeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	password := ""
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
	hc := h.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 30 * time.Second}
	}
	c, err := NewClient(h.Config.URL, WithCredentials(h.Config.User, password), WithHTTPClient(hc))
	if err != nil {
		return BootstrapResponse{}, err
	}
	res, err := Apply(ctx, c, s)
	resp := BootstrapResponse{OK: err == nil, Database: s.Database, Result: res}
	if err != nil && !errors.Is(err, ErrDrift) {
		return BootstrapResponse{}, fmt.Errorf("bootstrapping %s: %w", s.Database, err)
	}
	return resp, nil
}
