package clickhouse

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// KafkaAuth is how logs_queue authenticates to the brokers and verifies them. Apply puts it into a named
// collection that the Kafka table names (ENGINE = Kafka(<database>_kafka)), so the table needs nothing
// from the server's configuration: the path a managed ClickHouse (ClickHouse Cloud) allows.
//
// Why a named collection and not the table's kafka_sasl_* settings: the CA that verifies the brokers has no
// Kafka table setting (kafka_ssl_ca_location is UNKNOWN_SETTING in ClickHouse 26.9.2.1 (chdb-core 26.9.0)), while a named
// collection passes any librdkafka property under its kafka. prefix, ssl_ca_pem included; and the
// credentials then live in one object that can be altered in place when they rotate.
type KafkaAuth struct {
	// Username and Password are the SASL credentials (the secret's KAFKA_SASL_USERNAME and
	// KAFKA_SASL_PASSWORD).
	Username, Password string
	// SecurityProtocol is librdkafka's security.protocol; default SASL_SSL.
	SecurityProtocol string
	// SASLMechanism is librdkafka's sasl.mechanism; default PLAIN.
	SASLMechanism string
	// CAPEM, when set, is the PEM of the CA certificate(s) that verify the brokers, sent to ClickHouse inline
	// (ssl.ca.pem): right for a private CA on any ClickHouse, managed ones included.
	CAPEM string
	// CALocation, when set, is the path of a CA bundle on the ClickHouse server (ssl.ca.location). With
	// neither, librdkafka's default trust store verifies the brokers: right for public CAs (Confluent Cloud).
	CALocation string
	// Source says where the credentials came from and which version of them, e.g. "secret MWAA_Secrets
	// version 4f2c...". It goes into logs_queue's comment: a new version is how Apply sees a rotation,
	// since ClickHouse never shows the stored password back. It must not be derived from the password.
	Source string
}

// Defaults of KafkaAuth.
const (
	DefaultSecurityProtocol = "SASL_SSL"
	DefaultSASLMechanism    = "PLAIN"
)

// ErrSecretValue: a value from the secret cannot be used (the error names the key, never the value).
var ErrSecretValue = errors.New("unusable value")

func (a KafkaAuth) withDefaults() KafkaAuth {
	if a.SecurityProtocol == "" {
		a.SecurityProtocol = DefaultSecurityProtocol
	}
	if a.SASLMechanism == "" {
		a.SASLMechanism = DefaultSASLMechanism
	}
	return a
}

// Validate reports the first field that cannot go into the named collection. Errors name fields, never the
// password.
func (a KafkaAuth) Validate() error {
	a = a.withDefaults()
	switch {
	case a.Username == "":
		return fmt.Errorf("kafka username: %w", ErrEmpty)
	case a.Password == "":
		return fmt.Errorf("kafka password: %w", ErrEmpty)
	case a.Source == "":
		return fmt.Errorf("kafka credentials source: %w", ErrEmpty)
	case a.CAPEM != "" && a.CALocation != "":
		return fmt.Errorf("kafka CA: give a PEM or a location on the server, not both: %w", ErrSecretValue)
	}
	switch strings.ToUpper(a.SecurityProtocol) {
	case "SASL_SSL", "SASL_PLAINTEXT":
	default:
		return fmt.Errorf("kafka security protocol %q: want SASL_SSL or SASL_PLAINTEXT: %w", a.SecurityProtocol, ErrSecretValue)
	}
	for _, f := range []struct{ name, v string }{{"username", a.Username}, {"password", a.Password}, {"sasl mechanism", a.SASLMechanism}, {"CA location", a.CALocation}, {"credentials source", a.Source}} {
		if strings.ContainsAny(f.v, "\x00\r\n") {
			return fmt.Errorf("kafka %s: %w", f.name, ErrControlChar)
		}
	}
	if a.CAPEM != "" && canonicalPEM(a.CAPEM) == "" {
		return fmt.Errorf("kafka CA PEM: no CERTIFICATE block: %w", ErrSecretValue)
	}
	return nil
}

// canonicalPEM returns the CERTIFICATE blocks of s as encoding/pem writes them (64-column base64, LF line
// ends, each block ending in a newline), or "" when s holds none. The same CA read from a file (ending in a
// newline), pasted inline without it, or with CRLF line ends is then one text: the comment's hash and the
// collection's value do not change with the form, so a rerun does not take a new form for new credentials.
// Text outside the blocks (openssl's "subject=" lines) is dropped; librdkafka ignores it too.
func canonicalPEM(s string) string {
	var out []byte
	rest := []byte(s)
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out = append(out, pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes})...)
		}
	}
	return string(out)
}

// marker is what logs_queue's comment says about its credentials: their source and version and the CA,
// nothing derived from the password.
func (a KafkaAuth) marker() string {
	ca := "default trust store"
	switch {
	case a.CAPEM != "":
		sum := sha256.Sum256([]byte(canonicalPEM(a.CAPEM)))
		ca = "PEM sha256:" + hex.EncodeToString(sum[:8])
	case a.CALocation != "":
		ca = "file " + a.CALocation
	}
	return "Kafka credentials: " + a.Source + "; CA: " + ca
}

// collectionValues returns the named collection's keys and values: librdkafka properties under kafka.,
// which the Kafka engine passes to its consumers.
func (a KafkaAuth) collectionValues() map[string]string {
	a = a.withDefaults()
	v := map[string]string{
		"kafka.security_protocol": strings.ToLower(a.SecurityProtocol),
		"kafka.sasl_mechanism":    a.SASLMechanism,
		"kafka.sasl_username":     a.Username,
		"kafka.sasl_password":     a.Password,
	}
	if a.CAPEM != "" {
		v["kafka.ssl_ca_pem"] = canonicalPEM(a.CAPEM)
	}
	if a.CALocation != "" {
		v["kafka.ssl_ca_location"] = a.CALocation
	}
	return v
}

// The named collection holds the whole connection, the broker list included, so that a table using it
// cannot send its credentials elsewhere. What ClickHouse 26.9.2.1 (chdb-core 26.9.0) does, found by the tests
// (TestIntegrationCollectionPinsBrokers):
//   - A Kafka table's SETTINGS override the collection's engine settings (kafka_broker_list and the
//     kafka_security_protocol and kafka_sasl_* settings), NOT OVERRIDABLE or not: a collection holding
//     kafka_broker_list lets any table point its credentials at another broker, over plaintext if it likes.
//   - librdkafka properties under kafka. are applied after the table's broker list: kafka.bootstrap_servers
//     in the collection decides where the consumer connects, whatever the table's kafka_broker_list says.
//   - Overrides in the engine's arguments (ENGINE = Kafka(c, key = value)) never reach librdkafka's kafka.
//     properties, and for a NOT OVERRIDABLE key ClickHouse refuses them (BAD_ARGUMENTS, "Override not
//     allowed").
//
// So the broker list is the collection's kafka.bootstrap_servers and every key is NOT OVERRIDABLE. A table
// can still name other credentials or another protocol in its SETTINGS (they are applied last), but only
// towards the collection's brokers: credentials it knows already, to brokers that are ours.
const collectionBrokersKey = "kafka.bootstrap_servers"

// collectionValues returns the named collection's keys and values: the broker list and the credentials.
func (s Schema) collectionValues() map[string]string {
	v := s.Auth.collectionValues()
	v[collectionBrokersKey] = s.Brokers
	return v
}

// collectionAssignments renders "`k` = 'v' NOT OVERRIDABLE, ..." in key order.
func (s Schema) collectionAssignments() string {
	v := s.collectionValues()
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = QuoteIdent(k) + " = " + quoteLiteral(v[k]) + " NOT OVERRIDABLE"
	}
	return strings.Join(parts, ", ")
}

// connectionMarker is logs_queue's comment: the credentials' source and version, the CA, and the brokers
// (the collection's values cannot be read back, so a changed broker list shows here, as a rotation does).
func (s Schema) connectionMarker() string { return s.Auth.marker() + "; brokers: " + s.Brokers }

// legacyBrokerList matches the kafka_broker_list setting that logs_queue carried before the broker list
// moved into the named collection, in formatQuerySingleLine's form.
var legacyBrokerList = regexp.MustCompile(`kafka_broker_list = '(?:[^'\\]|\\.)*'`)

// dropLegacyBrokerList removes a kafka_broker_list setting from a stored logs_queue definition (single-line
// form) and says whether there was one: such a table predates the broker list in the collection, and Apply
// recreates it with the collection, as it does for new credentials.
func dropLegacyBrokerList(def string) (string, bool) {
	loc := legacyBrokerList.FindStringIndex(def)
	if loc == nil {
		return def, false
	}
	before, after := def[:loc[0]], def[loc[1]:]
	switch {
	case strings.HasPrefix(after, ", "):
		after = after[2:]
	case strings.HasSuffix(before, ", "):
		before = before[:len(before)-2]
	}
	return before + after, true
}

// literalEscaper quotes any text as a ClickHouse string literal, control characters included (a PEM has
// newlines).
var literalEscaper = strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`, "\r", `\r`, "\t", `\t`, "\x00", `\0`)

func quoteLiteral(s string) string { return "'" + literalEscaper.Replace(s) + "'" }

// redact replaces the password, raw and as it appears quoted in a statement, in s.
func (a KafkaAuth) redact(s string) string {
	if a.Password == "" {
		return s
	}
	for _, form := range []string{a.Password, literalEscaper.Replace(a.Password)} {
		s = strings.ReplaceAll(s, form, "[HIDDEN]")
	}
	return s
}

// redactErr returns err with the password removed from its text; a *ServerError stays one (with its code),
// so IsCode still works.
func (a KafkaAuth) redactErr(err error) error {
	if err == nil || a.Password == "" || !strings.Contains(err.Error(), a.Password) && !strings.Contains(err.Error(), literalEscaper.Replace(a.Password)) {
		return err
	}
	var se *ServerError
	if errors.As(err, &se) {
		cp := *se
		cp.Message = a.redact(se.Message)
		return &redactedError{msg: a.redact(err.Error()), server: &cp}
	}
	return &redactedError{msg: a.redact(err.Error())}
}

// redactedError carries an error's text with the password removed, and the redacted ServerError if there
// was one; the original chain (which holds the password) is dropped.
type redactedError struct {
	msg    string
	server *ServerError
}

func (e *redactedError) Error() string { return e.msg }

func (e *redactedError) As(target any) bool {
	if t, ok := target.(**ServerError); ok && e.server != nil {
		*t = e.server
		return true
	}
	return false
}

// KafkaAuthFromSecret reads the pipeline's Kafka secret (MWAA_Secrets: KAFKA_BOOTSTRAP_SERVER,
// KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD) and returns the credentials, with the secret's name and
// VersionId as their Source, and the bootstrap servers. Errors name the secret and keys, never values.
func KafkaAuthFromSecret(ctx context.Context, sm SecretGetter, name string) (KafkaAuth, string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return KafkaAuth{}, "", fmt.Errorf("reading secret %s: %w", name, err)
	}
	if out.SecretString == nil {
		return KafkaAuth{}, "", fmt.Errorf("secret %s holds no string: %w", name, ErrEmpty)
	}
	k, err := secrets.Parse([]byte(*out.SecretString))
	if err != nil {
		return KafkaAuth{}, "", fmt.Errorf("parsing secret %s: %w", name, err)
	}
	version := aws.ToString(out.VersionId)
	if version == "" {
		return KafkaAuth{}, "", fmt.Errorf("secret %s: no VersionId in the answer: %w", name, ErrEmpty)
	}
	return KafkaAuth{Username: k.Username, Password: k.Password, Source: "secret " + name + " version " + version}, k.BootstrapServers, nil
}
