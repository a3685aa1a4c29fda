// Package secrets loads the Kafka broker credentials the pipeline needs: from the Secrets Manager secret
// MWAA_Secrets (a JSON object with KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD) as in
// production, or from environment variables of the same names for local runs.
//
// The password is kept out of every printed form of Kafka (fmt verbs, slog, JSON), and errors name keys, never
// values, so credentials cannot leak through logs, errors or metrics.
package secrets

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
)

// The keys of the MWAA_Secrets JSON object, which are also the environment variables FromEnv reads.
const (
	KeyBootstrapServer = "KAFKA_BOOTSTRAP_SERVER"
	KeySASLUsername    = "KAFKA_SASL_USERNAME"
	KeySASLPassword    = "KAFKA_SASL_PASSWORD"
)

// redacted stands in for the password wherever a Kafka is printed.
const redacted = "[redacted]"

// Kafka holds broker credentials. String, GoString, Format (every fmt verb), LogValue (slog.LogValuer) and
// MarshalJSON all redact Password, so a Kafka can be logged or wrapped into an error without leaking it.
type Kafka struct {
	// BootstrapServers is a comma-separated list of host:port, as librdkafka's bootstrap.servers takes it.
	BootstrapServers string
	Username         string
	Password         string
}

var (
	_ fmt.Stringer   = Kafka{}
	_ fmt.GoStringer = Kafka{}
	_ fmt.Formatter  = Kafka{}
	_ slog.LogValuer = Kafka{}
	_ json.Marshaler = Kafka{}
)

func (k Kafka) redactedPassword() string {
	if k.Password == "" {
		return ""
	}
	return redacted
}

// String returns the credentials with the password redacted.
func (k Kafka) String() string {
	return fmt.Sprintf("{BootstrapServers:%s Username:%s Password:%s}", k.BootstrapServers, k.Username, k.redactedPassword())
}

// GoString returns a Go-syntax form with the password redacted (for %#v).
func (k Kafka) GoString() string {
	return fmt.Sprintf("secrets.Kafka{BootstrapServers:%q, Username:%q, Password:%q}", k.BootstrapServers, k.Username, k.redactedPassword())
}

// Format prints the redacted form for every verb, so no verb (%d, %x, ...) falls back to printing the fields.
func (k Kafka) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		fmt.Fprint(f, k.GoString())
	case verb == 'q':
		fmt.Fprint(f, strconv.Quote(k.String()))
	default:
		fmt.Fprint(f, k.String())
	}
}

// LogValue makes slog print the credentials as a group with the password redacted.
func (k Kafka) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("bootstrap_servers", k.BootstrapServers),
		slog.String("username", k.Username),
		slog.String("password", k.redactedPassword()),
	)
}

// MarshalJSON encodes the credentials with the password redacted: credentials are never meant to be
// serialised, and this keeps an accidental json.Marshal from leaking them.
func (k Kafka) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		BootstrapServers string `json:"bootstrap_servers"`
		Username         string `json:"username"`
		Password         string `json:"password"`
	}{k.BootstrapServers, k.Username, k.redactedPassword()})
}

// Parse turns the secret's JSON into Kafka. The JSON must be an object holding the three keys as non-empty
// strings; other keys are ignored (the same secret may hold more). Surrounding whitespace is trimmed from the
// bootstrap servers and the username, never from the password. Errors wrap ErrMalformed or ErrMissingKey and
// name the key, never the value.
func Parse(raw []byte) (Kafka, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		// The decoder's message can quote input bytes; report only where it broke.
		if se, ok := err.(*json.SyntaxError); ok {
			return Kafka{}, fmt.Errorf("%w: invalid JSON at byte %d", ErrMalformed, se.Offset)
		}
		return Kafka{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	if obj == nil { // the JSON literal null
		return Kafka{}, fmt.Errorf("%w: not a JSON object", ErrMalformed)
	}
	str := func(key string) (string, error) {
		v, ok := obj[key]
		if !ok {
			return "", &MissingKeyError{Key: key}
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return "", fmt.Errorf("%w: %s is not a string", ErrMalformed, key)
		}
		return s, nil
	}
	var k Kafka
	var err error
	if k.BootstrapServers, err = str(KeyBootstrapServer); err != nil {
		return Kafka{}, err
	}
	if k.Username, err = str(KeySASLUsername); err != nil {
		return Kafka{}, err
	}
	if k.Password, err = str(KeySASLPassword); err != nil {
		return Kafka{}, err
	}
	return normalize(k)
}

// FromEnv reads the credentials from KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD
// through lookup (os.LookupEnv, or a map in tests). An unset variable is ErrMissingKey; a set but empty one
// is ErrMalformed, as in Parse.
func FromEnv(lookup func(string) (string, bool)) (Kafka, error) {
	get := func(key string) (string, error) {
		v, ok := lookup(key)
		if !ok {
			return "", &MissingKeyError{Key: key}
		}
		return v, nil
	}
	var k Kafka
	var err error
	if k.BootstrapServers, err = get(KeyBootstrapServer); err != nil {
		return Kafka{}, err
	}
	if k.Username, err = get(KeySASLUsername); err != nil {
		return Kafka{}, err
	}
	if k.Password, err = get(KeySASLPassword); err != nil {
		return Kafka{}, err
	}
	return normalize(k)
}

// normalize trims and checks the values shared by Parse and FromEnv.
func normalize(k Kafka) (Kafka, error) {
	k.BootstrapServers = strings.TrimSpace(k.BootstrapServers)
	k.Username = strings.TrimSpace(k.Username)
	switch {
	case k.BootstrapServers == "":
		return Kafka{}, fmt.Errorf("%w: %s is empty", ErrMalformed, KeyBootstrapServer)
	case k.Username == "":
		return Kafka{}, fmt.Errorf("%w: %s is empty", ErrMalformed, KeySASLUsername)
	case strings.TrimSpace(k.Password) == "":
		return Kafka{}, fmt.Errorf("%w: %s is empty", ErrMalformed, KeySASLPassword)
	}
	if err := checkBootstrap(k.BootstrapServers); err != nil {
		return Kafka{}, err
	}
	return k, nil
}

// checkBootstrap accepts a comma-separated list of host:port (each optionally prefixed by a
// "PROTOCOL://" as librdkafka allows), with a port in 1..65535.
func checkBootstrap(list string) error {
	for i, entry := range strings.Split(list, ",") {
		entry = strings.TrimSpace(entry)
		if _, rest, ok := strings.Cut(entry, "://"); ok {
			entry = rest
		}
		host, port, err := net.SplitHostPort(entry)
		if err != nil || host == "" {
			return fmt.Errorf("%w: %s entry %d is not host:port", ErrMalformed, KeyBootstrapServer, i+1)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("%w: %s entry %d has no valid port", ErrMalformed, KeyBootstrapServer, i+1)
		}
	}
	return nil
}
