package secrets

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Defaults of Options.
const (
	DefaultSecretName = "MWAA_Secrets"
	DefaultRegion     = "us-east-1"
	DefaultTimeout    = 15 * time.Second
)

// Options says which secret to read and where.
type Options struct {
	// SecretName is the secret's name or ARN; default "MWAA_Secrets".
	SecretName string
	// Region defaults to the SDK's configured region (AWS_REGION, the shared config), else "us-east-1".
	Region string
	// Endpoint overrides the Secrets Manager endpoint, e.g. the local emulator. Empty leaves it to the SDK,
	// which honours AWS_ENDPOINT_URL_SECRETSMANAGER and AWS_ENDPOINT_URL.
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
// ErrMissingKey or ErrMalformed.
func FromSecretsManager(ctx context.Context, o Options) (Kafka, error) {
	o = o.withDefaults()
	ctx, cancel := context.WithTimeout(ctx, o.Timeout)
	defer cancel()

	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithRetryMaxAttempts(4),
		config.WithHTTPClient(&http.Client{Transport: &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: 10 * time.Second,
			MaxIdleConns:          4,
			IdleConnTimeout:       30 * time.Second,
		}}),
	)
	if err != nil {
		return Kafka{}, fmt.Errorf("loading AWS config: %w", err)
	}
	switch {
	case o.Region != "":
		cfg.Region = o.Region
	case cfg.Region == "":
		cfg.Region = DefaultRegion
	}
	client := secretsmanager.NewFromConfig(cfg, func(so *secretsmanager.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
	})

	out, err := client.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(o.SecretName)})
	if err != nil {
		return Kafka{}, fmt.Errorf("reading secret %s: %w", o.SecretName, classify(ctx, err))
	}
	if out.SecretString == nil {
		return Kafka{}, fmt.Errorf("reading secret %s: %w: it holds no string value", o.SecretName, ErrNotFound)
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
	if errors.As(err, &respErr) {
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

// isCredentialsError reports whether the SDK failed to find or refresh credentials before sending anything
// (the signer wraps that failure in a *v4.SigningError).
func isCredentialsError(err error) bool {
	var se *v4.SigningError
	return errors.As(err, &se)
}
