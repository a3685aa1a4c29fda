package chaos

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestMisconfigured: the topic does not exist, the credentials are wrong, the secret is missing, or no
// broker answers. A bounded run exits non-zero with an error that names the cause, and reads nothing from
// TCP (it never connects to the source), since it could not deliver it.
func TestMisconfigured(t *testing.T) {
	missing := kafkatest.UniqueTopic("chaos_missing")
	tests := []struct {
		name string
		env  func() []string
		args func(topic, dlq string) []string
		// want are substrings the error must hold (the cause, and what it concerns).
		want []string
	}{
		{
			name: "topic does not exist",
			env:  func() []string { return envCreds() },
			args: func(_, dlq string) []string { return []string{"--topic", missing, "--dlq-topic", dlq} },
			want: []string{"topic does not exist", missing},
		},
		{
			name: "dead-letter topic does not exist",
			env:  func() []string { return envCreds() },
			args: func(topic, _ string) []string { return []string{"--topic", topic, "--dlq-topic", missing} },
			want: []string{"topic does not exist", missing},
		},
		{
			name: "wrong password",
			env: func() []string {
				return harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER="+stack.Get("KAFKA_BOOTSTRAP_SERVER"),
					"KAFKA_SASL_USERNAME="+stack.Get("KAFKA_SASL_USERNAME"), "KAFKA_SASL_PASSWORD=not-the-password-0451")
			},
			args: func(topic, dlq string) []string { return []string{"--topic", topic, "--dlq-topic", dlq} },
			want: []string{"kafka authentication failed"},
		},
		{
			name: "unknown user",
			env: func() []string {
				return harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER="+stack.Get("KAFKA_BOOTSTRAP_SERVER"),
					"KAFKA_SASL_USERNAME=nobody", "KAFKA_SASL_PASSWORD="+stack.Get("KAFKA_SASL_PASSWORD"))
			},
			args: func(topic, dlq string) []string { return []string{"--topic", topic, "--dlq-topic", dlq} },
			want: []string{"kafka authentication failed"},
		},
		{
			name: "secret does not exist",
			env:  func() []string { return harness.ReaderEnv(stack.AWSEnv("")...) },
			args: func(topic, dlq string) []string {
				return []string{"--credentials", "secretsmanager", "--secret-name", "chaos_no_such_secret", "--region", stack.Get("AWS_REGION"),
					"--topic", topic, "--dlq-topic", dlq}
			},
			want: []string{"secret not found", "chaos_no_such_secret"},
		},
		{
			name: "no broker answers",
			env: func() []string {
				return harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER=127.0.0.1:1", "KAFKA_SASL_USERNAME=u", "KAFKA_SASL_PASSWORD=p")
			},
			args: func(topic, dlq string) []string {
				return []string{"--topic", topic, "--dlq-topic", dlq, "--startup-timeout", "5s"}
			},
			want: []string{"kafka brokers unreachable"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic, dlq := topics(t)
			src := harness.NewSource(t, 1000, harness.SourceOptions{})
			args := append([]string{"--source-mode", "connect", "--source-addr", src.Addr(), "--credentials", "env",
				"--ca-file", stack.Get("KAFKA_CA_FILE"), "--max-events", "1000", "--startup-timeout", "20s"}, tt.args(topic, dlq)...)
			start := time.Now()
			r := harness.StartReader(t, readerBin, tt.env(), args...)
			code, sum := r.Wait(time.Minute)
			took := time.Since(start)
			failures := r.LogLines("reader failed")
			var msg string
			if len(failures) > 0 {
				msg, _ = failures[0]["err"].(string)
			}
			report.Add(harness.Row{Scenario: "7. " + tt.name, Sent: src.Written(), Delivered: sum.Delivered,
				Notes: fmt.Sprintf("exit %d after %.1fs; %d source connections; error: %s", code, took.Seconds(), src.Conns(), msg)})
			if code == 0 {
				t.Errorf("exit code 0, want non-zero")
			}
			if msg == "" {
				t.Fatalf("no 'reader failed' log line with an error; stderr:\n%s", r.Stderr())
			}
			for _, w := range tt.want {
				if !strings.Contains(msg, w) || !strings.Contains(sum.Error, w) {
					t.Errorf("error %q (summary %q) does not name %q", msg, sum.Error, w)
				}
			}
			if src.Conns() != 0 || sum.Received != 0 {
				t.Errorf("the reader connected to the source %d times and received %d lines, want none", src.Conns(), sum.Received)
			}
			if strings.Contains(string(r.Stderr()), stack.Get("KAFKA_SASL_PASSWORD")) {
				t.Errorf("the SASL password appears in the reader's logs")
			}
		})
	}
}
