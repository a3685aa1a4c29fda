package secrets

import "errors"

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
	// read the secret (or its KMS key), or no credentials could be found.
	ErrAccessDenied = errors.New("access to secret denied")
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
