package abuse

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// secretForms are the ways a password could show up in output: as is, and base64 or hex encoded (alone, or
// inside the SASL/PLAIN message "\x00user\x00password").
func secretForms(user, password string) []string {
	plain := "\x00" + user + "\x00" + password
	return []string{
		password,
		base64.StdEncoding.EncodeToString([]byte(password)),
		base64.StdEncoding.EncodeToString([]byte(plain)),
		hex.EncodeToString([]byte(password)),
		hex.EncodeToString([]byte(plain)),
	}
}

// captured is everything a reader run produced.
type captured struct {
	name string
	text []byte
}

func findSecrets(t *testing.T, outputs []captured, secrets map[string][]string) {
	t.Helper()
	for _, out := range outputs {
		for what, forms := range secrets {
			for _, f := range forms {
				if f != "" && bytes.Contains(out.text, []byte(f)) {
					t.Errorf("%s appears in %s (as %q...)", what, out.name, f[:min(len(f), 6)])
				}
			}
		}
	}
}

// TestPasswordNeverAppears runs the reader at debug level with librdkafka's debug output on (debug=all),
// over SASL_SSL with the credentials from Secrets Manager, through good lines, bad lines and a wrong-password
// run, and a goroutine dump (SIGQUIT, what a crash prints), and searches everything it wrote (stdout,
// stderr, the summary file, /metrics, /healthz, /readyz) for the SASL password and the AWS secret key.
func TestPasswordNeverAppears(t *testing.T) {
	e := loadEnv(t)
	awsEnv := []string{
		"AWS_ENDPOINT_URL_SECRETSMANAGER=" + e.st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER"),
		"AWS_REGION=" + e.st.Get(t, "AWS_REGION"),
		"AWS_ACCESS_KEY_ID=" + e.st.Get(t, "AWS_ACCESS_KEY_ID"),
		"AWS_SECRET_ACCESS_KEY=" + e.st.Get(t, "AWS_SECRET_ACCESS_KEY"),
		"AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true",
	}
	const wrongPassword = "wrong-password-5f3c9a71"
	secrets := map[string][]string{
		"the SASL password":         secretForms(e.user, e.password),
		"the wrong SASL password":   secretForms(e.user, wrongPassword),
		"the AWS secret access key": {e.st.Get(t, "AWS_SECRET_ACCESS_KEY")},
	}
	debug := []string{"--log-level", "debug", "--kafka-property", "debug=all"}
	var outputs []captured
	var debugLines int

	t.Run("running", func(t *testing.T) {
		topic, dlq := e.topics(t)
		src := harness.NewSource(t, 2000, harness.SourceOptions{})
		summary := filepath.Join(t.TempDir(), "summary.json")
		args := append([]string{"--source-mode", "connect", "--source-addr", src.Addr(), "--credentials", "secretsmanager",
			"--secret-name", e.st.Get(t, "SECRET_NAME"), "--region", e.st.Get(t, "AWS_REGION"), "--ca-file", e.ca,
			"--topic", topic, "--dlq-topic", dlq, "--summary-file", summary}, debug...)
		r := harness.StartReader(t, readerBin, harness.ReaderEnv(awsEnv...), args...)
		r.WaitReady(time.Minute)
		waitReceived(t, r, 2000, time.Minute)
		var pages []captured
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			body, err := harness.HTTPGet(r.MetricsAddr, path)
			if err != nil {
				t.Fatalf("GET %s: %v", path, err)
			}
			pages = append(pages, captured{"GET " + path, body})
		}
		r.Signal(syscall.SIGTERM)
		code, sum := r.Wait(time.Minute)
		if code != 0 || sum.Delivered != 2000 {
			t.Errorf("exit %d, summary %+v; want 0 and 2000 delivered", code, sum)
		}
		sumFile, err := os.ReadFile(summary)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, captured{"stdout", r.Stdout()}, captured{"stderr", r.Stderr()}, captured{"the summary file", sumFile})
		outputs = append(outputs, pages...)
		debugLines = bytes.Count(r.Stderr(), []byte(`"component":"librdkafka"`))
	})

	t.Run("wrong password", func(t *testing.T) {
		topic, dlq := e.topics(t)
		env := harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER="+e.sasl, "KAFKA_SASL_USERNAME="+e.user, "KAFKA_SASL_PASSWORD="+wrongPassword)
		args := append(e.baseArgs("connect", harness.FreeAddr(t), topic, dlq, "--max-events", "10", "--startup-timeout", "15s"), debug...)
		r := harness.StartReader(t, readerBin, env, args...)
		code, _ := r.Wait(time.Minute)
		if code == 0 {
			t.Errorf("exit 0 with a wrong password")
		}
		if !bytes.Contains(r.Stderr(), []byte("kafka authentication failed")) {
			t.Errorf("no authentication error logged")
		}
		outputs = append(outputs, captured{"stdout (wrong password)", r.Stdout()}, captured{"stderr (wrong password)", r.Stderr()})
	})

	t.Run("goroutine dump", func(t *testing.T) {
		topic, dlq := e.topics(t)
		src := harness.NewSource(t, 1000, harness.SourceOptions{})
		args := append(e.baseArgs("connect", src.Addr(), topic, dlq), debug...)
		r := harness.StartReader(t, readerBin, e.creds(), args...)
		r.WaitReady(time.Minute)
		waitReceived(t, r, 1000, time.Minute)
		r.Signal(syscall.SIGQUIT)
		code, _ := r.Wait(time.Minute)
		if code != 2 || !bytes.Contains(r.Stderr(), []byte("goroutine ")) {
			t.Errorf("exit %d and no goroutine dump after SIGQUIT", code)
		}
		outputs = append(outputs, captured{"stderr (SIGQUIT goroutine dump)", r.Stderr()})
	})

	// The search only means something if the debug output was there to search.
	if debugLines < 100 {
		t.Errorf("only %d librdkafka log lines captured at debug level: the capture is not what it claims", debugLines)
	}
	findSecrets(t, outputs, secrets)
	var size int
	for _, o := range outputs {
		size += len(o.text)
	}
	report.Add(harness.Row{Scenario: "D. SASL password searched in every output at debug level (debug=all)",
		Notes: fmt.Sprintf("%d outputs, %d bytes, %d librdkafka debug lines; failures: %v", len(outputs), size, debugLines, t.Failed())})
}

// TestBrokerCertificateVerification: verification is on by default, a wrong CA or a host name the
// certificate does not name fails with a clear TLS error, and turning verification off takes an explicit
// flag and logs a warning.
func TestBrokerCertificateVerification(t *testing.T) {
	e := loadEnv(t)
	otherCA := stacktest.UnrelatedCA(t)
	// The broker's certificate names localhost and 127.0.0.1; 127.0.0.2 reaches the same broker through a
	// proxy, under an address the certificate does not name.
	proxy := harness.NewProxyAt(t, "127.0.0.2:0", strings.Replace(e.sasl, "localhost", "127.0.0.1", 1))
	if err := proxy.Start(); err != nil {
		t.Fatalf("starting a proxy on 127.0.0.2: %v", err)
	}
	tests := []struct {
		name      string
		bootstrap string
		flags     []string
		wantOK    bool
		want      []string // substrings of the error, or of a log line when wantOK
	}{
		{name: "system CAs by default", bootstrap: e.sasl, want: []string{"kafka TLS handshake failed", "certificate verify failed"}},
		{name: "wrong CA", bootstrap: e.sasl, flags: []string{"--ca-file", otherCA}, want: []string{"kafka TLS handshake failed", "certificate verify failed"}},
		{name: "host name not in the certificate", bootstrap: proxy.Addr(), flags: []string{"--ca-file", e.ca},
			want: []string{"kafka TLS handshake failed", "certificate verify failed"}},
		{name: "verification off by flag", bootstrap: e.sasl, flags: []string{"--insecure-skip-tls-verify"}, wantOK: true,
			want: []string{"certificate verification is OFF"}},
		{name: "the right CA", bootstrap: e.sasl, flags: []string{"--ca-file", e.ca}, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic, dlq := e.topics(t)
			src := harness.NewSource(t, 100, harness.SourceOptions{})
			env := harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER="+tt.bootstrap, "KAFKA_SASL_USERNAME="+e.user, "KAFKA_SASL_PASSWORD="+e.password)
			args := append([]string{"--source-mode", "connect", "--source-addr", src.Addr(), "--credentials", "env",
				"--topic", topic, "--dlq-topic", dlq, "--max-events", "100", "--startup-timeout", "20s"}, tt.flags...)
			r := harness.StartReader(t, readerBin, env, args...)
			code, sum := r.Wait(time.Minute)
			stderr := string(r.Stderr())
			note := fmt.Sprintf("exit %d, %d delivered", code, sum.Delivered)
			if tt.wantOK {
				if code != 0 || sum.Delivered != 100 {
					t.Errorf("exit %d, summary %+v; want 0 and 100 delivered", code, sum)
				}
				for _, w := range tt.want {
					recs := r.LogLines(w)
					if len(recs) == 0 || recs[0]["level"] != "WARN" {
						t.Errorf("no warning log line with %q (got %v)", w, recs)
					}
				}
				if len(tt.flags) == 0 || tt.flags[0] != "--insecure-skip-tls-verify" {
					if strings.Contains(stderr, "verification is OFF") {
						t.Errorf("verification reported off without the flag")
					}
				}
			} else {
				if code == 0 || src.Conns() != 0 {
					t.Errorf("exit %d with %d source connections, want a failure before reading", code, src.Conns())
				}
				for _, w := range tt.want {
					if !strings.Contains(sum.Error, w) {
						t.Errorf("error %q does not say %q", sum.Error, w)
					}
				}
				note += "; error: " + sum.Error
			}
			report.Add(harness.Row{Scenario: "E. TLS: " + tt.name, Sent: 100, Delivered: sum.Delivered, Notes: note})
		})
	}
}
