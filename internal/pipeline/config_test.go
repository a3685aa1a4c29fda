package pipeline

import (
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
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
			return c.Source.Mode == tcpin.Connect && c.Reader == HighPerf && c.Topic == "logs_4" && c.DLQTopic == "logs_4_dlq" &&
				c.Credentials.SecretName == "MWAA_Secrets" && c.Credentials.Region == "us-east-1" &&
				c.Kafka.SecurityProtocol == kafkaout.SASLSSL && !c.Kafka.InsecureSkipVerify &&
				c.Validation == event.Strict && c.EventsPerMessage == 1 && !c.Bounded() &&
				c.Kafka.QueueMaxKBytes == 8192 && c.Credentials.Source == secrets.SourceSecretsManager
		}},
		{name: "env fills what flags do not set", args: []string{"--topic", "from_flag"},
			env: map[string]string{"READER_TOPIC": "from_env", "READER_MAX_EVENTS": "10", "READER_DURATION": "4m", "READER_READER": "basic"},
			check: func(c Config) bool {
				return c.Topic == "from_flag" && c.MaxEvents == 10 && c.Duration == 4*time.Minute && c.Reader == Basic && c.Bounded()
			}},
		{name: "emulator endpoint from the AWS variable", env: map[string]string{"AWS_ENDPOINT_URL_SECRETSMANAGER": "http://127.0.0.1:1"},
			check: func(c Config) bool { return c.Credentials.Endpoint == "http://127.0.0.1:1" }},
		{name: "bad env value names the variable", env: map[string]string{"READER_MAX_EVENTS": "lots"}, wantErr: "READER_MAX_EVENTS"},
		{name: "bad mode", args: []string{"--source-mode", "pull"}, wantErr: "--source-mode"},
		{name: "bad reader", args: []string{"--reader", "fast"}, wantErr: "--reader"},
		{name: "dlq equals topic", args: []string{"--dlq-topic", "logs_4"}, wantErr: "--dlq-topic must differ"},
		{name: "plaintext needs bootstrap", args: []string{"--security-protocol", "plaintext"}, wantErr: "needs --bootstrap"},
		{name: "bad kafka property", args: []string{"--kafka-property", "novalue"}, wantErr: "--kafka-property"},
		{name: "bad validation", args: []string{"--validation", "loose"}, wantErr: "--validation"},
		{name: "source TLS from READER_ variables", args: []string{"--source-mode", "listen"},
			env: map[string]string{"READER_SOURCE_TLS": "true", "READER_SOURCE_TLS_CERT": "/c.pem", "READER_SOURCE_TLS_KEY": "/k.pem",
				"READER_SOURCE_TLS_CA": "/ca.pem", "READER_SOURCE_TLS_ALLOWED_CLIENTS": "app-01, app-02.logs.internal", "READER_SOURCE_TLS_HANDSHAKE_TIMEOUT": "3s"},
			check: func(c Config) bool {
				t := c.Source.TLSConfig
				return t.Enabled && t.CertFile == "/c.pem" && t.KeyFile == "/k.pem" && t.CAFile == "/ca.pem" &&
					strings.Join(t.AllowedClients, "|") == "app-01|app-02.logs.internal" && t.HandshakeTimeout == 3*time.Second
			}},
		{name: "source TLS material from the environment only", args: []string{"--source-mode", "listen", "--source-tls"},
			env: map[string]string{"READER_SOURCE_TLS_CERT_PEM": "CERT", "READER_SOURCE_TLS_KEY_PEM": "KEY", "READER_SOURCE_TLS_CA_PEM": "CA"},
			check: func(c Config) bool {
				t := c.Source.TLSConfig
				return t.CertPEM == "CERT" && t.KeyPEM == "KEY" && t.CAPEM == "CA" && t.CertFile == ""
			}},
		{name: "source TLS off by default", check: func(c Config) bool { return !c.Source.TLSConfig.Enabled && c.Source.TLSConfig.CAFile == "" }},
		{name: "listen TLS needs a certificate", args: []string{"--source-mode", "listen", "--source-tls"}, wantErr: "--source-tls-cert"},
		{name: "allow-list needs a CA", args: []string{"--source-mode", "listen", "--source-tls", "--source-tls-cert", "c", "--source-tls-key", "k",
			"--source-tls-allowed-clients", "a"}, wantErr: "--source-tls-ca"},
		{name: "message cap too small", args: []string{"--events-per-message", "10", "--max-message-bytes", "100"}, wantErr: "--max-message-bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string { return tt.env[k] }
			c, err := ParseConfig(tt.args, getenv, io.Discard, io.Discard)
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
	var out, errOut strings.Builder
	_, err := ParseConfig([]string{"--help"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("error = %v, want flag.ErrHelp", err)
	}
	if errOut.Len() != 0 {
		t.Errorf("help wrote %q to stderr, want it all on stdout", errOut.String())
	}
	for _, want := range []string{"READER_<NAME>", "--source-addr", "--max-events", "--dlq-file", "--insecure-skip-tls-verify"} {
		if !strings.Contains(out.String(), strings.TrimPrefix(want, "--")) {
			t.Errorf("help output lacks %q", want)
		}
	}
}

func TestParseConfigMistakeGoesToStderr(t *testing.T) {
	var out, errOut strings.Builder
	_, err := ParseConfig([]string{"--no-such-flag"}, func(string) string { return "" }, &out, &errOut)
	if !errors.Is(err, flagenv.ErrUsage) || flagenv.ExitCode(err) != 2 {
		t.Fatalf("error = %v (exit %d), want a usage error with exit status 2", err, flagenv.ExitCode(err))
	}
	if out.Len() != 0 || !strings.Contains(errOut.String(), "READER_<NAME>") {
		t.Errorf("stdout = %q, stderr = %q; want the usage on stderr only", out.String(), errOut.String())
	}
	if !strings.Contains(err.Error(), "--no-such-flag") {
		t.Errorf("error = %v, want it to name --no-such-flag", err)
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

// TestParseConfigZeroMeansZeroOrIsRejected: every flag already carries its real default, so a zero (or a
// negative) given on the command line or in READER_* is what the operator asked for: it is kept where it
// means something (--linger-ms 0: send at once), otherwise refused with the flag's name, never turned back
// into the default without a word.
func TestParseConfigZeroMeansZeroOrIsRejected(t *testing.T) {
	tests := []struct {
		flag, value string
		wantErr     string // empty: accepted
		check       func(Config) bool
	}{
		{flag: "linger-ms", value: "0", check: func(c Config) bool { return c.Kafka.LingerMs == 0 }},
		{flag: "linger-ms", value: "-1", wantErr: "--linger-ms"},
		{flag: "queue-max-kbytes", value: "0", wantErr: "--queue-max-kbytes"},
		{flag: "max-line-bytes", value: "0", wantErr: "--max-line-bytes"},
		{flag: "max-conns", value: "0", wantErr: "--max-conns"},
		{flag: "max-conns-per-addr", value: "0", wantErr: "--max-conns-per-addr"},
		{flag: "min-progress-bytes", value: "0", wantErr: "--min-progress-bytes"},
		{flag: "progress-interval", value: "0s", wantErr: "--progress-interval"},
		{flag: "partial-line-budget", value: "0", wantErr: "--partial-line-budget"},
		{flag: "stop-read-timeout", value: "0s", wantErr: "--stop-read-timeout"},
		{flag: "idle-timeout", value: "0s", wantErr: "--idle-timeout"},
		{flag: "idle-timeout", value: "-1s", wantErr: "--idle-timeout"},
		{flag: "source-tls-handshake-timeout", value: "0s", wantErr: "--source-tls-handshake-timeout"},
		{flag: "source-tls-reload-interval", value: "0s", wantErr: "--source-tls-reload-interval"},
		{flag: "events-per-message", value: "0", wantErr: "--events-per-message"},
		{flag: "drain-timeout", value: "0s", wantErr: "--drain-timeout"},
		{flag: "stall-after", value: "0s", wantErr: "--stall-after"},
		{flag: "log-interval", value: "0s", wantErr: "--log-interval"},
		{flag: "emf-interval", value: "0s", check: func(c Config) bool { return c.Ops.EMFInterval == 0 }},
		{flag: "max-events", value: "0", check: func(c Config) bool { return c.MaxEvents == 0 && !c.Bounded() }},
		{flag: "duration", value: "0s", check: func(c Config) bool { return c.Duration == 0 && !c.Bounded() }},
	}
	for _, tt := range tests {
		for _, from := range []string{"flag", "env"} {
			t.Run(tt.flag+"="+tt.value+"/"+from, func(t *testing.T) {
				args, env := []string{"--" + tt.flag, tt.value}, map[string]string{}
				if from == "env" {
					args = nil
					env["READER_"+strings.ToUpper(strings.ReplaceAll(tt.flag, "-", "_"))] = tt.value
				}
				c, err := ParseConfig(args, func(k string) string { return env[k] }, io.Discard, io.Discard)
				if tt.wantErr != "" {
					if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig) {
						t.Fatalf("ParseConfig(%q, %v) error = %v, want ErrInvalidConfig naming %s", args, env, err, tt.wantErr)
					}
					return
				}
				if err != nil {
					t.Fatalf("ParseConfig(%q, %v) error = %v", args, env, err)
				}
				if !tt.check(c) {
					t.Errorf("ParseConfig(%q, %v): --%s %s was not kept", args, env, tt.flag, tt.value)
				}
			})
		}
	}
}

// TestParseReplayConfigZero: replay takes the producer's flags too, with the same rule.
func TestParseReplayConfigZero(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		wantErr string
	}{
		{args: []string{"--linger-ms", "0"}},
		{args: []string{"--linger-ms", "-5"}, wantErr: "--linger-ms"},
		{args: []string{"--queue-max-kbytes", "0"}, wantErr: "--queue-max-kbytes"},
	} {
		c, err := ParseReplayConfig(tt.args, func(string) string { return "" }, io.Discard, io.Discard)
		switch {
		case tt.wantErr == "" && err != nil:
			t.Errorf("ParseReplayConfig(%q) error = %v", tt.args, err)
		case tt.wantErr == "" && c.Kafka.LingerMs != 0:
			t.Errorf("ParseReplayConfig(%q): LingerMs = %d, want 0", tt.args, c.Kafka.LingerMs)
		case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrInvalidConfig)):
			t.Errorf("ParseReplayConfig(%q) error = %v, want ErrInvalidConfig naming %s", tt.args, err, tt.wantErr)
		}
	}
}
