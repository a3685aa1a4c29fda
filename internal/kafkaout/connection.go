package kafkaout

import (
	"flag"
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// SecurityProtocol is how a client talks to the brokers. The zero value means SASLSSL.
type SecurityProtocol string

// The security protocols every client of this package accepts.
const (
	// SASLSSL is TLS with SASL/PLAIN credentials (the MWAA_Secrets cluster); the default.
	SASLSSL SecurityProtocol = "sasl_ssl"
	// SSL is TLS without SASL (a broker that authenticates clients by other means, or not at all).
	SSL SecurityProtocol = "ssl"
	// Plaintext is neither TLS nor SASL: for loopback brokers only.
	Plaintext SecurityProtocol = "plaintext"
)

// ParseSecurityProtocol reads "sasl_ssl", "ssl" or "plaintext" (case-insensitive, as librdkafka reads them).
// The empty string is SASLSSL.
func ParseSecurityProtocol(s string) (SecurityProtocol, error) {
	switch p := SecurityProtocol(strings.ToLower(strings.TrimSpace(s))); p {
	case "":
		return SASLSSL, nil
	case SASLSSL, SSL, Plaintext:
		return p, nil
	}
	return "", fmt.Errorf("%w: security protocol %q (want sasl_ssl, ssl or plaintext)", ErrInvalidConfig, s)
}

// String returns the protocol as librdkafka's security.protocol spells it.
func (p SecurityProtocol) String() string {
	if p == "" {
		return string(SASLSSL)
	}
	return string(p)
}

// Set parses s into p, so a SecurityProtocol is a flag.Value.
func (p *SecurityProtocol) Set(s string) error {
	v, err := ParseSecurityProtocol(s)
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// UsesTLS reports whether the protocol verifies the brokers with TLS.
func (p SecurityProtocol) UsesTLS() bool { return p.String() != string(Plaintext) }

// UsesSASL reports whether the protocol sends the SASL/PLAIN credentials.
func (p SecurityProtocol) UsesSASL() bool { return p.String() == string(SASLSSL) }

var _ flag.Value = (*SecurityProtocol)(nil)

// Connection says how a client reaches the brokers and proves who it is. The producer and the probe both
// turn it into librdkafka settings through settings, the one place that does so, so the reader and the
// health check cannot disagree about TLS or SASL.
type Connection struct {
	// Brokers is the bootstrap server list (bootstrap.servers).
	Brokers string
	// SecurityProtocol is SASLSSL (default, PLAIN mechanism), SSL or Plaintext.
	SecurityProtocol SecurityProtocol
	// Username and Password are the SASL/PLAIN credentials for SASLSSL.
	Username, Password string
	// CAFile is a PEM bundle to verify the broker certificate with; empty means the system's CAs.
	CAFile string
	// InsecureSkipVerify turns broker certificate verification off. Off by default; New logs a warning.
	InsecureSkipVerify bool
}

// WithCredentials returns c with the brokers and SASL credentials loaded from the secret (or the
// environment). Brokers already set in c (the --bootstrap override) are kept.
func (c Connection) WithCredentials(creds secrets.Kafka) Connection {
	if c.Brokers == "" {
		c.Brokers = creds.BootstrapServers
	}
	c.Username, c.Password = creds.Username, creds.Password
	return c
}

// validate reports a Connection that cannot work; the message names the field, never the password.
func (c Connection) validate() error {
	if strings.TrimSpace(c.Brokers) == "" {
		return fmt.Errorf("%w: brokers (bootstrap.servers) is empty", ErrInvalidConfig)
	}
	p, err := ParseSecurityProtocol(string(c.SecurityProtocol))
	if err != nil {
		return err
	}
	if p.UsesSASL() && (c.Username == "" || c.Password == "") {
		return fmt.Errorf("%w: security protocol sasl_ssl needs a SASL username and password", ErrInvalidConfig)
	}
	return nil
}

// settings returns the librdkafka properties that reach and authenticate to the brokers. TLS verification
// (certificate and host name) is on unless InsecureSkipVerify says otherwise.
func (c Connection) settings(clientID string) kafka.ConfigMap {
	p, _ := ParseSecurityProtocol(string(c.SecurityProtocol)) // validate has checked it
	m := kafka.ConfigMap{
		"bootstrap.servers": c.Brokers,
		"client.id":         clientID,
		"security.protocol": p.String(),
	}
	if p.UsesTLS() {
		m["enable.ssl.certificate.verification"] = !c.InsecureSkipVerify
		if !c.InsecureSkipVerify {
			m["ssl.endpoint.identification.algorithm"] = "https"
		} else {
			m["ssl.endpoint.identification.algorithm"] = "none"
		}
		if c.CAFile != "" {
			m["ssl.ca.location"] = c.CAFile
		}
	}
	if p.UsesSASL() {
		m["sasl.mechanisms"] = "PLAIN"
		m["sasl.username"] = c.Username
		m["sasl.password"] = c.Password
	}
	return m
}

// Properties returns, as strings, the librdkafka properties settings gives a client of c (the password
// included), after checking c as New does. It serves clients this package does not build, such as the
// integration tests' consumers, which read back over the same listener and with the same TLS verification as
// the producer without spelling those settings out a second time.
func (c Connection) Properties(clientID string) (map[string]string, error) {
	if err := c.validate(); err != nil {
		return nil, err
	}
	m := c.settings(clientID)
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out, nil
}
