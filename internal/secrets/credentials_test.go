package secrets_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// awsEnv lists every variable through which the SDK's default chain could find a region, an endpoint or
// credentials; bareAWSEnv clears them all.
var awsEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_WEB_IDENTITY_TOKEN_FILE",
	"AWS_ROLE_ARN", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SECRETS_MANAGER", secrets.EndpointEnv, "AWS_EC2_METADATA_DISABLED",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT",
}

// bareAWSEnv gives the test the environment of a machine with no AWS configuration: none of the variables,
// a home without ~/.aws, and the instance metadata service answering as it does off EC2 (403 to every
// request). The metadata service is an in-process server on loopback: no real one can run here, and the
// test must never reach the link-local address.
func bareAWSEnv(t *testing.T) (imdsRequests *atomic.Int64) {
	t.Helper()
	for _, k := range awsEnv {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
	home := t.TempDir()
	t.Setenv("HOME", home)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(home, ".aws", "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(home, ".aws", "credentials"))
	imdsRequests = new(atomic.Int64)
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		imdsRequests.Add(1)
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	t.Cleanup(imds.Close)
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	return imdsRequests
}

// TestFromSecretsManagerNoCredentials: with nothing configured the loader says so, naming what is missing,
// instead of passing on the SDK's last provider error (the metadata service's 403). No request leaves for
// Secrets Manager: the credentials are resolved first.
func TestFromSecretsManagerNoCredentials(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		opts     secrets.Options
		mentions []string
		omits    []string
	}{
		{
			name:     "nothing configured",
			mentions: []string{"no AWS credentials configured", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "instance role", "reading secret MWAA_Secrets", "no region configured", "us-east-1 assumed", "no Secrets Manager endpoint configured (AWS_ENDPOINT_URL_SECRETSMANAGER)"},
		},
		{
			name:     "region and endpoint set, no credentials",
			env:      map[string]string{"AWS_REGION": "eu-west-1", secrets.EndpointEnv: "http://127.0.0.1:1"},
			mentions: []string{"no AWS credentials configured", "AWS_ACCESS_KEY_ID"},
			omits:    []string{"no region configured", "no Secrets Manager endpoint configured"},
		},
		{
			name:     "region from the options, endpoint from the SDK's own variable",
			env:      map[string]string{"AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://127.0.0.1:1"},
			opts:     secrets.Options{Region: "us-west-2", SecretName: "other"},
			mentions: []string{"no AWS credentials configured", "reading secret other"},
			omits:    []string{"no region configured", "no Secrets Manager endpoint configured"},
		},
		{
			name:     "instance metadata service disabled",
			env:      map[string]string{"AWS_EC2_METADATA_DISABLED": "true"},
			mentions: []string{"no AWS credentials configured", "no Secrets Manager endpoint configured"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			imds := bareAWSEnv(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			start := time.Now()
			_, err := secrets.FromSecretsManager(ctx, tt.opts)
			if !errors.Is(err, secrets.ErrNoCredentials) {
				t.Fatalf("FromSecretsManager error = %v, want ErrNoCredentials", err)
			}
			var nc *secrets.NoCredentialsError
			if !errors.As(err, &nc) || nc.Err == nil {
				t.Fatalf("FromSecretsManager error = %#v, want a *NoCredentialsError keeping the SDK's error", err)
			}
			if errors.Is(err, secrets.ErrAccessDenied) || errors.Is(err, secrets.ErrUnreachable) {
				t.Errorf("error %v also matches ErrAccessDenied or ErrUnreachable; a caller would retry or blame a policy", err)
			}
			msg := err.Error()
			for _, m := range tt.mentions {
				if !strings.Contains(msg, m) {
					t.Errorf("error %q does not mention %q", msg, m)
				}
			}
			for _, m := range append(tt.omits, "IMDS", "ec2imds", "StatusCode", "403") {
				if strings.Contains(msg, m) {
					t.Errorf("error %q mentions %q", msg, m)
				}
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("took %v, want the answer at once", d)
			}
			if tt.env["AWS_EC2_METADATA_DISABLED"] == "" && imds.Load() == 0 {
				t.Error("the instance metadata service was never asked: the default chain did not run")
			}
		})
	}
}

// TestFromSecretsManagerBrokenCredentialSource: when a source is configured but gives no credentials (a
// profile without keys), the error is about that source (ErrAccessDenied), not "nothing configured".
func TestFromSecretsManagerBrokenCredentialSource(t *testing.T) {
	bareAWSEnv(t)
	creds := filepath.Join(t.TempDir(), "credentials")
	if err := os.WriteFile(creds, []byte("[default]\nregion = eu-west-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := secrets.FromSecretsManager(ctx, secrets.Options{Endpoint: "http://127.0.0.1:1"})
	if errors.Is(err, secrets.ErrNoCredentials) || !errors.Is(err, secrets.ErrAccessDenied) {
		t.Fatalf("FromSecretsManager with a credentials file without keys: error = %v, want ErrAccessDenied and not ErrNoCredentials", err)
	}
}
