package secrets_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// emulator is the stack's Secrets Manager emulator, with the process environment pointed at it the way the
// reader's is (credentials from the SDK's default chain).
type emulator struct {
	stack    *stacktest.Stack
	endpoint string
	admin    *secretsmanager.Client
}

func newEmulator(t *testing.T) *emulator {
	t.Helper()
	st := stacktest.Load(t)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"} {
		t.Setenv(k, st.Get(t, k))
	}
	// Keep the developer's shared config and endpoint settings out of the picture.
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_SECRETSMANAGER", "")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", "")
	endpoint := st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER")
	admin := secretsmanager.New(secretsmanager.Options{
		Region:       st.Get(t, "AWS_REGION"),
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(st.Get(t, "AWS_ACCESS_KEY_ID"), st.Get(t, "AWS_SECRET_ACCESS_KEY"), ""),
	})
	return &emulator{stack: st, endpoint: endpoint, admin: admin}
}

// putSecret stores value under a fresh name and deletes it when the test ends.
func (e *emulator) putSecret(t *testing.T, value string) string {
	t.Helper()
	return e.create(t, &secretsmanager.CreateSecretInput{SecretString: aws.String(value)})
}

// create creates the secret in with a fresh name and deletes it when the test ends.
func (e *emulator) create(t *testing.T, in *secretsmanager.CreateSecretInput) string {
	t.Helper()
	name := fmt.Sprintf("secrets-test/%s/%d", strings.ReplaceAll(t.Name(), "/", "-"), time.Now().UnixNano())
	in.Name = aws.String(name)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := e.admin.CreateSecret(ctx, in); err != nil {
		t.Fatalf("creating secret %s: %v", name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		e.admin.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return name
}

func TestIntegrationFromSecretsManagerFound(t *testing.T) {
	e := newEmulator(t)
	want := secrets.Kafka{
		BootstrapServers: e.stack.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		Username:         e.stack.Get(t, "KAFKA_SASL_USERNAME"),
		Password:         e.stack.Get(t, "KAFKA_SASL_PASSWORD"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	got, err := secrets.FromSecretsManager(ctx, secrets.Options{SecretName: e.stack.Get(t, "SECRET_NAME"), Endpoint: e.endpoint})
	if err != nil {
		t.Fatalf("FromSecretsManager(endpoint option) error = %v", err)
	}
	if got != want {
		t.Fatalf("FromSecretsManager(endpoint option) = %v, want %v (passwords equal: %t)", got, want, got.Password == want.Password)
	}

	// The default name, and the endpoint from the environment variable the SDK honours.
	t.Setenv("AWS_ENDPOINT_URL_SECRETSMANAGER", e.endpoint)
	got, err = secrets.FromSecretsManager(ctx, secrets.Options{})
	if err != nil {
		t.Fatalf("FromSecretsManager(env endpoint, default name) error = %v", err)
	}
	if got != want {
		t.Fatalf("FromSecretsManager(env endpoint, default name) = %v, want %v", got, want)
	}

	// The SDK's own variable, named after the service id.
	t.Setenv("AWS_ENDPOINT_URL_SECRETSMANAGER", "")
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", e.endpoint)
	if got, err = secrets.FromSecretsManager(ctx, secrets.Options{}); err != nil || got != want {
		t.Fatalf("FromSecretsManager(SDK env endpoint) = %v, %v, want %v, nil", got, err, want)
	}
}

func TestIntegrationFromSecretsManagerErrors(t *testing.T) {
	e := newEmulator(t)
	const fakePassword = "integration-fake-password-0123456789"
	missingKey := e.putSecret(t, `{"KAFKA_BOOTSTRAP_SERVER":"localhost:1","KAFKA_SASL_USERNAME":"u"}`)
	malformed := e.putSecret(t, `{"KAFKA_BOOTSTRAP_SERVER":"localhost:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"`+fakePassword)
	notString := e.putSecret(t, `{"KAFKA_BOOTSTRAP_SERVER":"localhost:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":{"value":"`+fakePassword+`"}}`)
	binary := e.create(t, &secretsmanager.CreateSecretInput{SecretBinary: []byte(`{"KAFKA_SASL_PASSWORD":"` + fakePassword + `"}`)})
	emptyPassword := e.putSecret(t, `{"KAFKA_BOOTSTRAP_SERVER":"localhost:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":""}`)

	tests := []struct {
		name     string
		opts     secrets.Options
		env      map[string]string
		want     error
		mentions string
	}{
		{name: "missing secret", opts: secrets.Options{SecretName: "secrets-test/no-such-secret", Endpoint: e.endpoint},
			want: secrets.ErrNotFound, mentions: "secrets-test/no-such-secret"},
		{name: "missing key", opts: secrets.Options{SecretName: missingKey, Endpoint: e.endpoint},
			want: secrets.ErrMissingKey, mentions: secrets.KeySASLPassword},
		{name: "malformed JSON", opts: secrets.Options{SecretName: malformed, Endpoint: e.endpoint},
			want: secrets.ErrMalformed, mentions: "invalid JSON"},
		{name: "password not a string", opts: secrets.Options{SecretName: notString, Endpoint: e.endpoint},
			want: secrets.ErrMalformed, mentions: secrets.KeySASLPassword},
		{name: "binary secret", opts: secrets.Options{SecretName: binary, Endpoint: e.endpoint},
			want: secrets.ErrMalformed, mentions: "no string value"},
		{name: "empty password", opts: secrets.Options{SecretName: emptyPassword, Endpoint: e.endpoint},
			want: secrets.ErrMalformed, mentions: secrets.KeySASLPassword},
		{name: "access denied by policy", opts: secrets.Options{SecretName: e.stack.Get(t, "SECRET_NAME"), Endpoint: e.endpoint},
			env: map[string]string{
				"AWS_ACCESS_KEY_ID":     e.stack.Get(t, "AWS_DENIED_ACCESS_KEY_ID"),
				"AWS_SECRET_ACCESS_KEY": e.stack.Get(t, "AWS_DENIED_SECRET_ACCESS_KEY"),
			},
			want: secrets.ErrAccessDenied, mentions: "denied"},
		{name: "unknown access key", opts: secrets.Options{SecretName: e.stack.Get(t, "SECRET_NAME"), Endpoint: e.endpoint},
			env:  map[string]string{"AWS_ACCESS_KEY_ID": "AKIAUNKNOWNUNKNOWN00", "AWS_SECRET_ACCESS_KEY": "unknown"},
			want: secrets.ErrAccessDenied, mentions: "denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			got, err := secrets.FromSecretsManager(ctx, tt.opts)
			if !errors.Is(err, tt.want) {
				t.Fatalf("FromSecretsManager(%s) error = %v, want %v", tt.opts.SecretName, err, tt.want)
			}
			if got != (secrets.Kafka{}) {
				t.Fatalf("FromSecretsManager(%s) = %v with an error, want the zero Kafka", tt.opts.SecretName, got)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.mentions) {
				t.Fatalf("error %q does not mention %q", msg, tt.mentions)
			}
			for _, secret := range []string{fakePassword, e.stack.Get(t, "KAFKA_SASL_PASSWORD"), e.stack.Get(t, "AWS_SECRET_ACCESS_KEY"), e.stack.Get(t, "AWS_DENIED_SECRET_ACCESS_KEY")} {
				if strings.Contains(msg, secret) {
					t.Fatalf("error %q contains a secret value", msg)
				}
			}
		})
	}
}

// TestIntegrationFromSecretsManagerUnreachable points the loader at a closed port: it must fail with
// ErrUnreachable within the caller's deadline, retries included.
func TestIntegrationFromSecretsManagerUnreachable(t *testing.T) {
	newEmulator(t) // the same environment (credentials) as the other tests
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	for _, deadline := range []time.Duration{300 * time.Millisecond, 3 * time.Second} {
		t.Run(deadline.String(), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), deadline)
			defer cancel()
			start := time.Now()
			_, err := secrets.FromSecretsManager(ctx, secrets.Options{Endpoint: closed})
			elapsed := time.Since(start)
			if !errors.Is(err, secrets.ErrUnreachable) {
				t.Fatalf("FromSecretsManager(%s) error = %v, want ErrUnreachable", closed, err)
			}
			if elapsed > deadline+500*time.Millisecond {
				t.Fatalf("FromSecretsManager(%s) took %v, want within the %v deadline", closed, elapsed, deadline)
			}
		})
	}

	// Options.Timeout bounds the call when the caller's context has no deadline.
	start := time.Now()
	_, err = secrets.FromSecretsManager(context.Background(), secrets.Options{Endpoint: closed, Timeout: time.Second})
	if !errors.Is(err, secrets.ErrUnreachable) || time.Since(start) > 2*time.Second {
		t.Fatalf("FromSecretsManager(Timeout 1s) = %v after %v, want ErrUnreachable within about 1s", err, time.Since(start))
	}
}

// TestIntegrationSecretShape checks the seeded secret holds exactly the documented keys, as JSON strings.
func TestIntegrationSecretShape(t *testing.T) {
	e := newEmulator(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := e.admin.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(e.stack.Get(t, "SECRET_NAME"))})
	if err != nil {
		t.Fatalf("GetSecretValue: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal([]byte(aws.ToString(out.SecretString)), &m); err != nil {
		t.Fatalf("seeded secret is not a JSON object of strings: %v", err)
	}
	for _, k := range []string{secrets.KeyBootstrapServer, secrets.KeySASLUsername, secrets.KeySASLPassword} {
		if m[k] == "" {
			t.Errorf("seeded secret has no %s", k)
		}
	}
	if len(m) != 3 {
		t.Errorf("seeded secret has %d keys, want 3", len(m))
	}
}
