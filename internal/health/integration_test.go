package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// checkTimeout bounds each check in these tests; a whole failing run must finish within runLimit.
const (
	checkTimeout = 5 * time.Second
	runLimit     = 20 * time.Second
)

// fixture is the local stack seen from the health checks: the Secrets Manager emulator, the SASL_SSL
// listener with its CA, and two fresh topics, the dead-letter one holding dlqMessages messages.
type fixture struct {
	stack       *stacktest.Stack
	sm          *secretsmanager.Client
	topic, dlq  string
	dlqMessages int64
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	st := stacktest.Load(t)
	st.SetAWSEnv(t)
	sm := secretsmanager.New(secretsmanager.Options{
		Region:       st.Get(t, "AWS_REGION"),
		BaseEndpoint: aws.String(st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER")),
		Credentials:  credentials.NewStaticCredentialsProvider(st.Get(t, "AWS_ACCESS_KEY_ID"), st.Get(t, "AWS_SECRET_ACCESS_KEY"), ""),
	})
	f := &fixture{stack: st, sm: sm, topic: kafkatest.UniqueTopic("health"), dlq: kafkatest.UniqueTopic("health_dlq"), dlqMessages: 3}
	plain := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	kafkatest.CreateTopic(t, plain, f.topic, 1)
	kafkatest.CreateTopic(t, plain, f.dlq, 2)
	produce(t, plain, f.dlq, int(f.dlqMessages))
	return f
}

func produce(t *testing.T, bootstrap, topic string, n int) {
	t.Helper()
	values := make([][]byte, n)
	for i := range values {
		values[i] = fmt.Appendf(nil, `{"line":%d,"reason":"test"}`, i)
	}
	kafkatest.Produce(t, bootstrap, topic, values)
}

// secret stores value under a fresh name in the emulator and returns the name.
func (f *fixture) secret(t *testing.T, value map[string]string) string {
	t.Helper()
	name := "health-test-" + strings.ReplaceAll(kafkatest.UniqueTopic("s"), "_", "-")
	b, _ := json.Marshal(value)
	ctx := context.Background()
	if _, err := f.sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: aws.String(string(b))}); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
	t.Cleanup(func() {
		f.sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: &name, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return name
}

func (f *fixture) goodSecret(t *testing.T) map[string]string {
	return map[string]string{
		secrets.KeyBootstrapServer: f.stack.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		secrets.KeySASLUsername:    f.stack.Get(t, "KAFKA_SASL_USERNAME"),
		secrets.KeySASLPassword:    f.stack.Get(t, "KAFKA_SASL_PASSWORD"),
	}
}

func (f *fixture) config(t *testing.T, secretName string) health.Config {
	cfg, err := health.FromEnv(func(k string) string {
		return map[string]string{
			"HEALTH_SECRET_NAME":              secretName,
			"AWS_REGION":                      f.stack.Get(t, "AWS_REGION"),
			"AWS_ENDPOINT_URL_SECRETSMANAGER": f.stack.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER"),
			"HEALTH_TOPIC":                    f.topic,
			"HEALTH_DLQ_TOPIC":                f.dlq,
			"HEALTH_CA_FILE":                  f.stack.Get(t, "KAFKA_CA_FILE"),
			"HEALTH_TIMEOUT":                  checkTimeout.String(),
		}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// run invokes the Lambda handler as the runtime would and checks it finished within runLimit, wrote one
// metrics line per check plus the verdict's, and returned a verdict that survives JSON.
func run(t *testing.T, cfg health.Config) health.Verdict {
	t.Helper()
	var metrics bytes.Buffer
	handler := health.Handler(health.NewChecker(cfg, secrets.FromSecretsManager), &metrics, slog.New(slog.DiscardHandler))
	start := time.Now()
	v, err := handler(context.Background())
	if err != nil {
		t.Fatalf("handler returned an error (a failed check must be a result): %v", err)
	}
	if took := time.Since(start); took > runLimit {
		t.Errorf("health run took %s, want under %s", took, runLimit)
	}
	if lines := strings.Count(metrics.String(), "\n"); lines != len(v.Checks)+1 {
		t.Errorf("handler wrote %d metric lines, want %d", lines, len(v.Checks)+1)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("verdict: %s", b)
	return v
}

// wantFailure checks that the named check failed with want, that the checks before it passed, and that the
// checks after it were skipped when they depend on it (everything depends on secret and brokers) and ran
// otherwise.
func wantFailure(t *testing.T, v health.Verdict, name string, want error, mentions string) {
	t.Helper()
	if v.OK {
		t.Fatalf("verdict OK, want check %s to fail", name)
	}
	failedAt := -1
	for i, r := range v.Checks {
		switch {
		case r.Name == name:
			failedAt = i
			if r.OK || !errors.Is(r.Err(), want) || !strings.Contains(r.Error, mentions) {
				t.Errorf("check %s = ok %v, error %q; want %v mentioning %q", name, r.OK, r.Error, want, mentions)
			}
		case failedAt < 0 && !r.OK:
			t.Errorf("check %s before %s failed: %s", r.Name, name, r.Error)
		case failedAt >= 0 && dependsOn(name) != health.IsSkipped(r):
			t.Errorf("check %s after the failed %s = ok %v, error %q; want skipped: %v", r.Name, name, r.OK, r.Error, dependsOn(name))
		}
	}
	if failedAt < 0 {
		t.Fatalf("no check named %s in %+v", name, v.Checks)
	}
}

func dependsOn(failed string) bool {
	return failed == health.CheckSecret || failed == health.CheckBrokers
}

func TestIntegrationHealthy(t *testing.T) {
	f := newFixture(t)
	v := run(t, f.config(t, f.secret(t, f.goodSecret(t))))
	if !v.OK {
		t.Fatalf("verdict not OK: %+v", v.Checks)
	}
	var names []string
	for _, r := range v.Checks {
		names = append(names, r.Name)
		if r.LatencyMS < 0 || r.LatencyMS > checkTimeout.Milliseconds() {
			t.Errorf("check %s latency %dms out of range", r.Name, r.LatencyMS)
		}
	}
	if got, want := strings.Join(names, ","), "secret,brokers,topic,dlq_topic"; got != want {
		t.Errorf("checks = %s, want %s", got, want)
	}
	if v.DeadLetterMessages == nil || *v.DeadLetterMessages != f.dlqMessages {
		t.Errorf("DeadLetterMessages = %v, want %d", v.DeadLetterMessages, f.dlqMessages)
	}
}

// TestIntegrationStackSecret checks the secret dev/stack.sh seeded, the one the reader uses locally.
func TestIntegrationStackSecret(t *testing.T) {
	f := newFixture(t)
	if v := run(t, f.config(t, f.stack.Get(t, "SECRET_NAME"))); !v.OK {
		t.Fatalf("verdict with %s not OK: %+v", f.stack.Get(t, "SECRET_NAME"), v.Checks)
	}
}

func TestIntegrationFailures(t *testing.T) {
	f := newFixture(t)
	closed := closedPort(t)
	tests := []struct {
		name     string
		secret   func(map[string]string)
		cfg      func(*health.Config)
		check    string
		want     error
		mentions string
	}{
		{name: "wrong password", secret: func(s map[string]string) { s[secrets.KeySASLPassword] = "not-the-password" },
			check: health.CheckBrokers, want: kafkaout.ErrAuthentication, mentions: "uthentication"},
		{name: "missing topic", cfg: func(c *health.Config) { c.Topic = kafkatest.UniqueTopic("absent") },
			check: health.CheckTopic, want: kafkaout.ErrTopicNotFound, mentions: "absent"},
		{name: "missing dead-letter topic", cfg: func(c *health.Config) { c.DLQTopic = kafkatest.UniqueTopic("absent_dlq") },
			check: health.CheckDLQTopic, want: kafkaout.ErrTopicNotFound, mentions: "absent_dlq"},
		{name: "unreachable broker", secret: func(s map[string]string) { s[secrets.KeyBootstrapServer] = closed },
			check: health.CheckBrokers, want: kafkaout.ErrUnreachable, mentions: "unreachable"},
		{name: "missing secret key", secret: func(s map[string]string) { delete(s, secrets.KeySASLPassword) },
			check: health.CheckSecret, want: secrets.ErrMissingKey, mentions: secrets.KeySASLPassword},
		{name: "missing secret", cfg: func(c *health.Config) { c.SecretName = "health-test-no-such-secret" },
			check: health.CheckSecret, want: secrets.ErrNotFound, mentions: "health-test-no-such-secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			value := f.goodSecret(t)
			if tt.secret != nil {
				tt.secret(value)
			}
			cfg := f.config(t, f.secret(t, value))
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			v := run(t, cfg)
			wantFailure(t, v, tt.check, tt.want, tt.mentions)
			if b, _ := json.Marshal(v); strings.Contains(string(b), f.stack.Get(t, "KAFKA_SASL_PASSWORD")) {
				t.Errorf("verdict contains the password: %s", b)
			}
		})
	}
}

func TestIntegrationReader(t *testing.T) {
	f := newFixture(t)
	healthy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintln(w, "ok")
	}))
	defer healthy.Close()
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "kafka client failed", http.StatusServiceUnavailable)
	}))
	defer failing.Close()
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer hung.Close()

	secret := f.secret(t, f.goodSecret(t))
	tests := []struct {
		name, url, mentions string
	}{
		{name: "healthy", url: healthy.URL + "/healthz"},
		{name: "answers 503", url: failing.URL + "/healthz", mentions: "503"},
		{name: "hangs", url: hung.URL + "/healthz", mentions: "deadline"},
		{name: "down", url: "http://" + closedPort(t) + "/healthz", mentions: "refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := f.config(t, secret)
			cfg.ReaderURL = tt.url
			v := run(t, cfg)
			r, ok := v.Check(health.CheckReader)
			if !ok {
				t.Fatalf("no reader check in %+v", v.Checks)
			}
			if tt.mentions == "" {
				if !r.OK || !v.OK {
					t.Errorf("reader check = %+v, verdict OK %v; want both OK", r, v.OK)
				}
				return
			}
			if r.OK || v.OK || !errors.Is(r.Err(), health.ErrReaderUnhealthy) || !strings.Contains(r.Error, tt.mentions) {
				t.Errorf("reader check = %+v; want ErrReaderUnhealthy mentioning %q", r, tt.mentions)
			}
		})
	}
}

// closedPort returns a loopback address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
