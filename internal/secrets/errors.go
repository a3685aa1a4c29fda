package secrets

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinels callers test with errors.Is to tell why credentials could not be had. No error of this package
// ever carries a secret value: errors name keys, never what they hold.
var (
	// ErrMissingKey: the secret (or the environment) lacks one of the required keys. The concrete error is a
	// *MissingKeyError naming the key.
	ErrMissingKey = errors.New("missing key")
	// ErrMalformed: the secret holds no string (only binary), is not a JSON object, or a required key holds a
	// non-string or empty value, or the bootstrap servers are not host:port pairs.
	ErrMalformed = errors.New("malformed secret")
	// ErrNotFound: Secrets Manager has no secret of that name.
	ErrNotFound = errors.New("secret not found")
	// ErrAccessDenied: Secrets Manager rejected the caller's credentials or the caller lacks permission to
	// read the secret (or its KMS key), or a configured credential source (a profile, a role) could not
	// give credentials.
	ErrAccessDenied = errors.New("access to secret denied")
	// ErrNoCredentials: no AWS credential source is configured at all (no keys in the environment, no
	// profile or shared files, no web identity, no container or instance role), so nothing was sent. The
	// concrete error is a *NoCredentialsError saying what else is missing (region, endpoint).
	ErrNoCredentials = errors.New("no AWS credentials configured")
	// ErrUnreachable: the Secrets Manager endpoint could not be reached within the deadline (connection
	// refused, DNS failure, timeout, throttling that outlasted the retries).
	ErrUnreachable = errors.New("secrets manager unreachable")
)

// MissingKeyError reports which required key is absent. It matches ErrMissingKey with errors.Is.
type MissingKeyError struct {
	Key string
}

func (e *MissingKeyError) Error() string { return "missing key " + e.Key }

// Is makes errors.Is(err, ErrMissingKey) hold for any *MissingKeyError.
func (e *MissingKeyError) Is(target error) bool { return target == ErrMissingKey }

// NoCredentialsError reports a Secrets Manager read that could not start because the SDK's default chain
// found no credentials and nothing in the environment names a source for them: typically a first run on a
// developer machine, not pointed at any account or emulator. Its message says what is missing and leaves
// out the SDK's own chain of provider errors (the instance metadata service's 403s or timeouts on a machine
// that is no EC2 instance), which only hide the cause; Unwrap still gives it.
type NoCredentialsError struct {
	// Region is the region used; RegionDefaulted says none was configured (AWS_REGION, the shared config).
	Region          string
	RegionDefaulted bool
	// Endpoint is the configured Secrets Manager endpoint; empty means AWS's public one for the region.
	Endpoint string
	// Err is the SDK's error.
	Err error
}

func (e *NoCredentialsError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: none in the environment (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, "+
		"AWS_WEB_IDENTITY_TOKEN_FILE), no shared config or credentials file, no container or instance role", ErrNoCredentials)
	if e.RegionDefaulted {
		fmt.Fprintf(&b, "; no region configured either (AWS_REGION; %s assumed)", e.Region)
	}
	if e.Endpoint == "" {
		fmt.Fprintf(&b, "; no Secrets Manager endpoint configured (%s), so the request would go to AWS in %s", EndpointEnv, e.Region)
	}
	return b.String()
}

// Is makes errors.Is(err, ErrNoCredentials) hold for any *NoCredentialsError.
func (e *NoCredentialsError) Is(target error) bool { return target == ErrNoCredentials }

// Unwrap returns the SDK's error.
func (e *NoCredentialsError) Unwrap() error { return e.Err }
