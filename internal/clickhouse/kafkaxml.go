package clickhouse

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// KafkaXMLOptions adds to the <kafka> section what the secret does not hold.
type KafkaXMLOptions struct {
	// SecurityProtocol is librdkafka's security.protocol. Default sasl_ssl, as the brokers require.
	SecurityProtocol string
	// SASLMechanism is librdkafka's sasl.mechanisms. Default PLAIN.
	SASLMechanism string
	// CAFile, when set, is the PEM bundle that verifies the brokers' certificate (ssl.ca.location); empty
	// leaves librdkafka's default trust store, right for a public CA.
	CAFile string
}

// KafkaConfigXML returns a complete config.xml fragment (a <clickhouse> root holding one <kafka> element)
// with the SASL settings ClickHouse's Kafka engine reads from the server configuration, because DDL cannot
// carry them. Every value is XML-escaped. The result holds the password: write it to a file only the
// server reads (mode 0600), never to a log.
func KafkaConfigXML(k secrets.Kafka, o KafkaXMLOptions) ([]byte, error) {
	if o.SecurityProtocol == "" {
		o.SecurityProtocol = "sasl_ssl"
	}
	if o.SASLMechanism == "" {
		o.SASLMechanism = "PLAIN"
	}
	fields := []struct{ name, value string }{
		{"security_protocol", o.SecurityProtocol},
		{"sasl_mechanisms", o.SASLMechanism},
		{"sasl_username", k.Username},
		{"sasl_password", k.Password},
	}
	if o.CAFile != "" {
		fields = append(fields, struct{ name, value string }{"ssl_ca_location", o.CAFile})
	}
	var b bytes.Buffer
	b.WriteString("<clickhouse>\n    <kafka>\n")
	for _, f := range fields {
		if f.value == "" {
			return nil, fmt.Errorf("kafka %s: %w", f.name, ErrEmpty)
		}
		if strings.ContainsAny(f.value, "\x00") || !validXMLText(f.value) {
			return nil, fmt.Errorf("kafka %s: %w", f.name, ErrControlChar)
		}
		fmt.Fprintf(&b, "        <%s>", f.name)
		if err := xml.EscapeText(&b, []byte(f.value)); err != nil {
			return nil, fmt.Errorf("escaping kafka %s: %w", f.name, err)
		}
		fmt.Fprintf(&b, "</%s>\n", f.name)
	}
	b.WriteString("    </kafka>\n</clickhouse>\n")
	return b.Bytes(), nil
}

// validXMLText reports whether s is valid UTF-8 and every rune of it may appear in an XML 1.0 document, so
// the value ClickHouse reads back is exactly s.
func validXMLText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		ok := r == 0x09 || r == 0x0A || r == 0x0D || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		if !ok {
			return false
		}
	}
	return true
}
