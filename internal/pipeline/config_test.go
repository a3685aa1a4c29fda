package pipeline

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParseConfig(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		check   func(Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c Config) bool {
			return c.SourceMode == "connect" && c.Reader == "highperf" && c.Topic == "logs_4" && c.DLQTopic == "logs_4_dlq" &&
				c.SecretName == "MWAA_Secrets" && c.Region == "us-east-1" && c.SecurityProtocol == "sasl_ssl" && !c.InsecureSkipTLS &&
				c.Validation == "strict" && c.EventsPerMessage == 1 && !c.Bounded()
		}},
		{name: "env fills what flags do not set", args: []string{"--topic", "from_flag"},
			env: map[string]string{"READER_TOPIC": "from_env", "READER_MAX_EVENTS": "10", "READER_DURATION": "4m", "READER_READER": "basic"},
			check: func(c Config) bool {
				return c.Topic == "from_flag" && c.MaxEvents == 10 && c.Duration == 4*time.Minute && c.Reader == "basic" && c.Bounded()
			}},
		{name: "emulator endpoint from the AWS variable", env: map[string]string{"AWS_ENDPOINT_URL_SECRETSMANAGER": "http://127.0.0.1:1"},
			check: func(c Config) bool { return c.SecretsEndpoint == "http://127.0.0.1:1" }},
		{name: "bad env value names the variable", env: map[string]string{"READER_MAX_EVENTS": "lots"}, wantErr: "READER_MAX_EVENTS"},
		{name: "bad mode", args: []string{"--source-mode", "pull"}, wantErr: "--source-mode"},
		{name: "bad reader", args: []string{"--reader", "fast"}, wantErr: "--reader"},
		{name: "dlq equals topic", args: []string{"--dlq-topic", "logs_4"}, wantErr: "--dlq-topic must differ"},
		{name: "plaintext needs bootstrap", args: []string{"--security-protocol", "plaintext"}, wantErr: "needs --bootstrap"},
		{name: "bad kafka property", args: []string{"--kafka-property", "novalue"}, wantErr: "--kafka-property"},
		{name: "bad validation", args: []string{"--validation", "loose"}, wantErr: "--validation"},
		{name: "message cap too small", args: []string{"--events-per-message", "10", "--max-message-bytes", "100"}, wantErr: "--max-message-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := ParseConfig(tt.args, getenv, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
					t.Fatalf("ParseConfig(%q) error = %v, want ErrInvalidConfig mentioning %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseConfig(%q) error = %v", tt.args, err)
			}
			if !tt.check(c) {
				t.Errorf("ParseConfig(%q) = %+v, not what was expected", tt.args, c)
			}
		})
	}
}

func TestParseConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := ParseConfig([]string{"--help"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error = %v, want flag.ErrHelp", err)
	}
	for _, want := range []string{"READER_<NAME>", "--source-addr", "--max-events", "--dlq-file", "--insecure-skip-tls-verify"} {
		if !strings.Contains(out.String(), strings.TrimPrefix(want, "--")) {
			t.Errorf("help output lacks %q", want)
		}
	}
}

func TestSummaryBalance(t *testing.T) {
	var c Counts
	c.received.Add(10)
	c.delivered.Add(6)
	c.deadLettered.Add(3)
	s := c.Snapshot()
	if s.InFlight != 1 || s.Balanced() {
		t.Fatalf("snapshot = %+v, want 1 in flight and unbalanced", s)
	}
	c.failed.Add(1)
	if s := c.Snapshot(); s.InFlight != 0 || !s.Balanced() {
		t.Fatalf("snapshot = %+v, want balanced", s)
	}
}
