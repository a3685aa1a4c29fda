package kafkaout

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigDefaultsAndValidation(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "no brokers", cfg: Config{}, wantErr: "brokers"},
		{name: "sasl without password", cfg: Config{Connection: Connection{Brokers: "b:9092", Username: "u"}}, wantErr: "SASL username and password"},
		{name: "unknown protocol", cfg: Config{Connection: Connection{Brokers: "b:9092", SecurityProtocol: "kerberos"}}, wantErr: "security protocol"},
		{name: "plaintext ok", cfg: Config{Connection: Connection{Brokers: "b:9092", SecurityProtocol: Plaintext}}},
		{name: "sasl ok", cfg: Config{Connection: Connection{Brokers: "b:9092", Username: "u", Password: "p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.cfg.withDefaults()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("withDefaults() error = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("withDefaults() error = %v, want ErrInvalidConfig mentioning %q", err, tt.wantErr)
			}
		})
	}
}

func TestConfigMapIsReliableAndVerifiesTLS(t *testing.T) {
	cfg, err := Config{Connection: Connection{Brokers: "b:9093", Username: "u", Password: "s3cret", CAFile: "/ca.pem"}}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	m := cfg.configMap()
	want := map[string]any{
		"acks": "all", "enable.idempotence": true, "compression.type": "lz4", "security.protocol": "sasl_ssl",
		"sasl.mechanisms": "PLAIN", "enable.ssl.certificate.verification": true,
		"ssl.endpoint.identification.algorithm": "https", "ssl.ca.location": "/ca.pem",
		"queue.buffering.max.kbytes": 8192, // the reader's documented 8 MiB
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("configMap()[%q] = %v, want %v", k, m[k], v)
		}
	}
	if strings.Contains(cfg.String(), "s3cret") {
		t.Errorf("Config.String() = %q leaks the password", cfg.String())
	}

	insecure, _ := Config{Connection: Connection{Brokers: "b:9093", Username: "u", Password: "p", InsecureSkipVerify: true},
		Overrides: map[string]string{"linger.ms": "50"}}.withDefaults()
	m = insecure.configMap()
	if m["enable.ssl.certificate.verification"] != false || m["ssl.endpoint.identification.algorithm"] != "none" {
		t.Errorf("InsecureSkipVerify did not turn verification off: %v", m)
	}
	if m["linger.ms"] != "50" {
		t.Errorf("override not applied last: linger.ms = %v", m["linger.ms"])
	}
}

func TestParseOverrides(t *testing.T) {
	got, err := ParseOverrides(" linger.ms=20, debug=broker,,batch.size=100 ")
	if err != nil || len(got) != 3 || got["linger.ms"] != "20" || got["debug"] != "broker" || got["batch.size"] != "100" {
		t.Fatalf("ParseOverrides = %v, %v", got, err)
	}
	for _, bad := range []string{"novalue", "=x"} {
		if _, err := ParseOverrides(bad); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("ParseOverrides(%q) error = %v, want ErrInvalidConfig", bad, err)
		}
	}
}

func TestConnectionProperties(t *testing.T) {
	got, err := Connection{Brokers: "b:9093", Username: "u", Password: "s3cret", CAFile: "/ca.pem"}.Properties("smoke")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"bootstrap.servers": "b:9093", "client.id": "smoke", "security.protocol": "sasl_ssl",
		"sasl.mechanisms": "PLAIN", "sasl.username": "u", "sasl.password": "s3cret",
		"enable.ssl.certificate.verification": "true", "ssl.endpoint.identification.algorithm": "https",
		"ssl.ca.location": "/ca.pem",
	}
	if len(got) != len(want) {
		t.Errorf("Properties() = %d properties, want %d: %v", len(got), len(want), got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("Properties()[%q] = %q, want %q", k, got[k], v)
		}
	}

	plain, err := Connection{Brokers: "b:9092", SecurityProtocol: Plaintext}.Properties("x")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"sasl.username", "sasl.password", "enable.ssl.certificate.verification"} {
		if _, ok := plain[k]; ok {
			t.Errorf("plaintext Properties() sets %q: %v", k, plain)
		}
	}

	if _, err := (Connection{Brokers: "b:9093", Username: "u"}).Properties("x"); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("Properties() without a password: error = %v, want ErrInvalidConfig", err)
	}
}

// TestLingerZeroMeansZero: --linger-ms 0 (send each message at once) reaches librdkafka as 0; it used to
// become the flag's default of 5 ms without a word.
func TestLingerZeroMeansZero(t *testing.T) {
	for _, tt := range []struct {
		linger int
		want   int
	}{{0, 0}, {1, 1}, {DefaultLingerMs, DefaultLingerMs}, {250, 250}} {
		c, err := Config{Connection: Connection{Brokers: "b:9092", SecurityProtocol: Plaintext}, LingerMs: tt.linger}.withDefaults()
		if err != nil {
			t.Fatalf("withDefaults(LingerMs %d): %v", tt.linger, err)
		}
		if got := c.configMap()["linger.ms"]; got != tt.want {
			t.Errorf("LingerMs %d: linger.ms = %v, want %d", tt.linger, got, tt.want)
		}
	}
	if _, err := (Config{Connection: Connection{Brokers: "b:9092", SecurityProtocol: Plaintext}, LingerMs: -1}).withDefaults(); err == nil ||
		!strings.Contains(err.Error(), "--linger-ms") {
		t.Errorf("withDefaults(LingerMs -1) error = %v, want one naming --linger-ms", err)
	}
}
