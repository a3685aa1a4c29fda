package clickhouse

import (
	"encoding/xml"
	"errors"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

func TestKafkaConfigXML(t *testing.T) {
	k := secrets.Kafka{BootstrapServers: "b:9093", Username: "api-key", Password: `p<&>"'x`}
	got, err := KafkaConfigXML(k, KafkaXMLOptions{CAFile: "/etc/ca.pem"})
	if err != nil {
		t.Fatalf("KafkaConfigXML() error = %v", err)
	}
	want := `<clickhouse>
    <kafka>
        <security_protocol>sasl_ssl</security_protocol>
        <sasl_mechanisms>PLAIN</sasl_mechanisms>
        <sasl_username>api-key</sasl_username>
        <sasl_password>p&lt;&amp;&gt;&#34;&#39;x</sasl_password>
        <ssl_ca_location>/etc/ca.pem</ssl_ca_location>
    </kafka>
</clickhouse>
`
	if string(got) != want {
		t.Errorf("KafkaConfigXML() =\n%s\nwant\n%s", got, want)
	}
	var doc struct {
		Kafka struct {
			Password string `xml:"sasl_password"`
		} `xml:"kafka"`
	}
	if err := xml.Unmarshal(got, &doc); err != nil || doc.Kafka.Password != k.Password {
		t.Errorf("parsing the XML back: password %q, err %v; want %q", doc.Kafka.Password, err, k.Password)
	}
}

func TestKafkaConfigXMLErrors(t *testing.T) {
	tests := []struct {
		name string
		k    secrets.Kafka
		want error
	}{
		{"no username", secrets.Kafka{Password: "s3cr3t-value"}, ErrEmpty},
		{"no password", secrets.Kafka{Username: "u"}, ErrEmpty},
		{"NUL in password", secrets.Kafka{Username: "u", Password: "a\x00b"}, ErrControlChar},
		{"form feed in password", secrets.Kafka{Username: "u", Password: "a\fb"}, ErrControlChar},
		{"invalid UTF-8 in username", secrets.Kafka{Username: "u\xff", Password: "p"}, ErrControlChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := KafkaConfigXML(tt.k, KafkaXMLOptions{})
			if !errors.Is(err, tt.want) {
				t.Errorf("KafkaConfigXML() error = %v, want %v", err, tt.want)
			}
			if err != nil && tt.k.Password != "" && strings.Contains(err.Error(), tt.k.Password) {
				t.Errorf("error %q carries the password", err)
			}
		})
	}
}

// FuzzKafkaConfigXML checks that any accepted credentials come back unchanged from the XML ClickHouse reads.
func FuzzKafkaConfigXML(f *testing.F) {
	for _, s := range []string{"secret", `<&>"'`, "ünïcödé", "]]>", "a\tb\nc", "\r\n"} {
		f.Add("user", s)
	}
	f.Fuzz(func(t *testing.T, user, password string) {
		b, err := KafkaConfigXML(secrets.Kafka{Username: user, Password: password}, KafkaXMLOptions{})
		if err != nil {
			return
		}
		var doc struct {
			Kafka struct {
				User     string `xml:"sasl_username"`
				Password string `xml:"sasl_password"`
			} `xml:"kafka"`
		}
		if err := xml.Unmarshal(b, &doc); err != nil {
			t.Fatalf("output does not parse: %v\n%s", err, b)
		}
		// CR and LF are written as character references, so no parser folds them.
		if doc.Kafka.User != user || doc.Kafka.Password != password {
			t.Fatalf("round trip: got (%q, %q), want (%q, %q)", doc.Kafka.User, doc.Kafka.Password, user, password)
		}
	})
}
