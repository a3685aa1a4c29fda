package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// Defaults of Options.
const (
	DefaultSecretName = readerspec.SecretName
	DefaultRegion     = readerspec.Region
	DefaultTimeout    = 15 * time.Second

	// EndpointEnv names the variable the local stack sets to the emulator's URL. The SDK itself reads
	// AWS_ENDPOINT_URL_SECRETS_MANAGER (from the service id "Secrets Manager") and AWS_ENDPOINT_URL, which
	// keep working; this one is read too because it is the project's contract.
	EndpointEnv = "AWS_ENDPOINT_URL_SECRETSMANAGER"
)

// Options says which secret to read and where.
type Options struct {
	// SecretName is the secret's name or ARN; default "MWAA_Secrets".
	SecretName string
	// Region defaults to the SDK's configured region (AWS_REGION, the shared config), else "us-east-1".
	Region string
	// Endpoint overrides the Secrets Manager endpoint, e.g. the local emulator. Empty means
	// AWS_ENDPOINT_URL_SECRETSMANAGER when set, else what the SDK resolves (AWS_ENDPOINT_URL_SECRETS_MANAGER,
	// AWS_ENDPOINT_URL, the shared config, the region's public endpoint).
	Endpoint string
	// Timeout bounds the whole call, retries included, on top of ctx's own deadline; default 15s.
	Timeout time.Duration
}

func (o Options) withDefaults() Options {
	if o.SecretName == "" {
		o.SecretName = DefaultSecretName
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	return o
}

// FromSecretsManager reads the secret with aws-sdk-go-v2 (credentials from the SDK's default chain) and
// parses it with Parse. It returns within ctx's deadline or o.Timeout, whichever comes first; the SDK
// retries transient failures inside that bound. Errors wrap ErrNotFound, ErrAccessDenied, ErrUnreachable,
// ErrMissingKey or ErrMalformed, or ErrNoCredentials (a *NoCredentialsError) when no credential source is
// configured at all.
func FromSecretsManager(ctx context.Context, o Options) (Kafka, error) {
	o = o.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRetryMaxAttempts(4),
		// The SDK's own log lines (such as its fallback to IMDSv1 on a machine without instance metadata)
		// go to the default slog logger at debug level: what matters comes back as the error.
		config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
			slog.Debug("aws sdk: "+fmt.Sprintf(format, v...), "classification", string(c))
		})),
		// A buildable client keeps AWS_CA_BUNDLE working; the short timeouts leave room for retries
		// within the deadline.
		config.WithHTTPClient(awshttp.NewBuildableClient().
			WithDialerOptions(func(d *net.Dialer) { d.Timeout = 5 * time.Second }).
			WithTransportOptions(func(t *http.Transport) {
				t.TLSHandshakeTimeout = 5 * time.Second
				t.ResponseHeaderTimeout = 10 * time.Second
			})),
	)
	if err != nil {
		return Kafka{}, fmt.Errorf("loading AWS config: %w", err)
	}
	regionDefaulted := false
	switch {
	case o.Region != "":
		cfg.Region = o.Region
	case cfg.Region == "":
		cfg.Region = DefaultRegion
		regionDefaulted = true
	}
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = os.Getenv(EndpointEnv)
	}
	client := secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
		}
	})

	// Credentials are resolved before the call, so that a failure to find any is known by where it happened
	// rather than by the SDK's message text (the SDK caches them, and the call below reuses them).
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if len(credentialSources(os.Getenv)) == 0 {
			return Kafka{}, fmt.Errorf("reading secret %s: %w", o.SecretName, &NoCredentialsError{Region: cfg.Region,
				RegionDefaulted: regionDefaulted, Endpoint: configuredEndpoint(endpoint, os.Getenv), Err: err})
		}
		return Kafka{}, fmt.Errorf("reading secret %s: %w", o.SecretName, classifyCredentials(ctx, err))
	}

	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(o.SecretName)})
	if err != nil {
		return Kafka{}, fmt.Errorf("reading secret %s: %w", o.SecretName, classify(ctx, err))
	}
	if out.SecretString == nil {
		return Kafka{}, fmt.Errorf("reading secret %s: %w: it holds no string value", o.SecretName, ErrMalformed)
	}
	k, err := Parse([]byte(*out.SecretString))
	if err != nil {
		return Kafka{}, fmt.Errorf("parsing secret %s: %w", o.SecretName, err)
	}
	return k, nil
}

// Error codes Secrets Manager (and the STS-style auth layer in front of it) uses for rejected credentials or
// missing permissions.
var deniedCodes = map[string]bool{
	"AccessDeniedException":       true,
	"AccessDenied":                true,
	"UnrecognizedClientException": true,
	"InvalidClientTokenId":        true,
	"InvalidSignatureException":   true,
	"SignatureDoesNotMatch":       true,
	"IncompleteSignature":         true,
	"ExpiredTokenException":       true,
	"ExpiredToken":                true,
	"MissingAuthenticationToken":  true,
	"DecryptionFailure":           true, // no permission on the secret's KMS key
}

// classify pairs an SDK error with the sentinel a caller acts on, keeping the SDK error in the chain.
func classify(ctx context.Context, err error) error {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		switch code := apiErr.ErrorCode(); {
		case code == "ResourceNotFoundException":
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		case deniedCodes[code]:
			return fmt.Errorf("%w: %w", ErrAccessDenied, err)
		}
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) && respErr.HTTPStatusCode() != 0 { // 0: no response came back
		switch respErr.HTTPStatusCode() {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w: %w", ErrAccessDenied, err)
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", ErrNotFound, err)
		}
		if respErr.HTTPStatusCode() >= 500 || respErr.HTTPStatusCode() == http.StatusTooManyRequests {
			return fmt.Errorf("%w: %w", ErrUnreachable, err)
		}
		return err // an answer we have no sentinel for
	}
	if isCredentialsError(err) {
		return fmt.Errorf("%w: no usable AWS credentials: %w", ErrAccessDenied, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) || ctx.Err() != nil {
		return fmt.Errorf("%w: %w", ErrUnreachable, err)
	}
	return err
}

// classifyCredentials pairs a failure of a configured credential source with a sentinel: a source that could
// not be reached in time (a container credentials endpoint, the instance metadata service) is ErrUnreachable,
// so the caller retries; anything else (an expired SSO session, a profile without keys) is ErrAccessDenied.
func classifyCredentials(ctx context.Context, err error) error {
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return fmt.Errorf("%w: getting AWS credentials: %w", ErrUnreachable, err)
	}
	return fmt.Errorf("%w: no usable AWS credentials: %w", ErrAccessDenied, err)
}

// isCredentialsError reports whether the SDK failed to find or refresh credentials before sending anything
// (the signer wraps that failure in a *v4.SigningError).
func isCredentialsError(err error) bool {
	var se *v4.SigningError
	return errors.As(err, &se)
}

// credentialSources names the credential sources the environment configures for the SDK's default chain:
// static keys, a profile, web identity, a container credentials endpoint, or a shared config or credentials
// file. Only an instance role cannot be seen from here. When none is configured and the chain still fails,
// the failure is "nothing configured" (NoCredentialsError), not a broken source.
func credentialSources(getenv func(string) string) []string {
	var found []string
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		if getenv(k) != "" {
			found = append(found, k)
		}
	}
	files := map[string]string{"AWS_CONFIG_FILE": config.DefaultSharedConfigFilename(), "AWS_SHARED_CREDENTIALS_FILE": config.DefaultSharedCredentialsFilename()}
	for env, def := range files {
		name := getenv(env)
		if name == "" {
			name = def
		}
		if _, err := os.Stat(name); err == nil {
			found = append(found, name)
		}
	}
	return found
}

// configuredEndpoint is the Secrets Manager endpoint the call used: explicit, else the SDK's own endpoint
// variables; empty means AWS's public endpoint.
func configuredEndpoint(explicit string, getenv func(string) string) string {
	for _, v := range []string{explicit, getenv("AWS_ENDPOINT_URL_SECRETS_MANAGER"), getenv("AWS_ENDPOINT_URL")} {
		if v != "" {
			return v
		}
	}
	return ""
}

// CheckCredentials resolves AWS credentials through the SDK's default chain, as FromSecretsManager does
// before it reads the secret, for a command that reads secretName with a client of its own (chctl
// bootstrap): when none can be found and nothing in the environment names a source, the error is the same
// *NoCredentialsError, one message that says what is missing and how to point at the local stack, instead
// of the SDK's instance-metadata errors. The SDK's own log lines go to slog at debug level.
func CheckCredentials(ctx context.Context, secretName string) error {
	ctx, cancel := context.WithTimeout(ctx, DefaultTimeout)
	defer cancel()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithLogger(logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		slog.Debug("aws sdk: "+fmt.Sprintf(format, v...), "classification", string(c))
	})))
	if err != nil {
		return fmt.Errorf("loading AWS config: %w", err)
	}
	regionDefaulted := cfg.Region == ""
	if regionDefaulted {
		cfg.Region = DefaultRegion
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		if len(credentialSources(os.Getenv)) == 0 {
			return fmt.Errorf("reading secret %s: %w", secretName, &NoCredentialsError{Region: cfg.Region,
				RegionDefaulted: regionDefaulted, Endpoint: configuredEndpoint(os.Getenv(EndpointEnv), os.Getenv), Err: err})
		}
		return fmt.Errorf("reading secret %s: %w", secretName, classifyCredentials(ctx, err))
	}
	return nil
}
