package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// secretAdmin writes secrets into the stack's Secrets Manager emulator, in any region (the emulator keeps
// each region's secrets apart, as AWS does).
type secretAdmin struct {
	st       *stacktest.Stack
	endpoint string
}

func (a secretAdmin) client(t *testing.T, region string) *secretsmanager.Client {
	t.Helper()
	return secretsmanager.New(secretsmanager.Options{
		Region:       region,
		BaseEndpoint: aws.String(a.endpoint),
		Credentials: credentials.NewStaticCredentialsProvider(a.st.Get(t, "AWS_ACCESS_KEY_ID"),
			a.st.Get(t, "AWS_SECRET_ACCESS_KEY"), ""),
	})
}

// put creates the secret name in region with value, or gives it value as its new version, and deletes it
// when the test ends.
func (a secretAdmin) put(t *testing.T, region, name, value string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := a.client(t, region)
	_, err := c.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(value)})
	if err == nil {
		return
	}
	if _, err := c.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("creating secret %s in %s: %v", name, region, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.DeleteSecret(ctx, &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
}

// readiness is one answer of /healthz or /readyz.
type readiness struct {
	code   int
	status string
	reason string
	raw    string
}

func getProbe(url string) (readiness, error) {
	resp, err := http.Get(url) //nolint:noctx // a loopback probe inside the test's own deadline loop
	if err != nil {
		return readiness{}, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var body struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		return readiness{}, fmt.Errorf("%s answered %d with a body that is not JSON: %q", url, resp.StatusCode, b)
	}
	return readiness{code: resp.StatusCode, status: body.Status, reason: body.Reason, raw: strings.TrimSpace(string(b))}, nil
}

// waitProbe polls path on the reader until want holds, failing if the reader ends or d passes first.
func (r *readerProc) waitProbe(t *testing.T, path string, d time.Duration, what string, want func(readiness) bool) readiness {
	t.Helper()
	var last readiness
	var lastErr error
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		r.alive(t, "while waiting for "+path+" to say "+what)
		last, lastErr = getProbe("http://" + r.metrics + path)
		if lastErr == nil && want(last) {
			return last
		}
	}
	t.Fatalf("%s never said %s within %v: last %d %s (%v)", path, what, d, last.code, last.raw, lastErr)
	return last
}

// TestIntegrationServiceWaitsForTheSecret runs the built reader as a service (listen mode, no bound) with
// its Kafka credentials in Secrets Manager, in the states a first deploy meets: the secret not created yet,
// created but malformed and then missing a key, created in another region than the reader's. Each time the
// reader must stay up: /healthz 200 (so its container is not replaced), /readyz 503 with the reason and no
// secret value, /acceptingz 503 and the listen port closed (no source is accepted that could not be delivered), one WARN for the
// whole episode while it retries. Once the secret is fixed in the emulator it must log one INFO, become
// ready, open its port (/acceptingz 200, the load balancer's check), accept a source and deliver every line to the real broker, and drain to exit 0 at SIGTERM.
func TestIntegrationServiceWaitsForTheSecret(t *testing.T) {
	st := stacktest.Load(t)
	plaintext := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	password := st.Get(t, "KAFKA_SASL_PASSWORD")
	good, err := json.Marshal(map[string]string{
		"KAFKA_BOOTSTRAP_SERVER": st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		"KAFKA_SASL_USERNAME":    st.Get(t, "KAFKA_SASL_USERNAME"),
		"KAFKA_SASL_PASSWORD":    password,
	})
	if err != nil {
		t.Fatal(err)
	}
	noPassword, _ := json.Marshal(map[string]string{
		"KAFKA_BOOTSTRAP_SERVER": st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		"KAFKA_SASL_USERNAME":    st.Get(t, "KAFKA_SASL_USERNAME"),
	})
	admin := secretAdmin{st: st, endpoint: st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER")}
	home := st.Get(t, "AWS_REGION")
	bin := buildReader(t)

	// A step is one state of the secret: what the test does to the emulator, then what /readyz must say.
	type step struct {
		do         func(t *testing.T, name string)
		wantReason string
	}
	cases := []struct {
		name   string
		region string // the reader's --region
		broken []step
		fix    func(t *testing.T, name string)
	}{
		{
			name: "not created yet", region: home,
			broken: []step{{nil, "secret not found"}},
			fix:    func(t *testing.T, name string) { admin.put(t, home, name, string(good)) },
		},
		{
			name: "malformed then a key missing", region: home,
			broken: []step{
				{func(t *testing.T, name string) { admin.put(t, home, name, `{"KAFKA_BOOTSTRAP_SERVER": "`+password) }, "malformed secret"},
				{func(t *testing.T, name string) { admin.put(t, home, name, string(noPassword)) }, "missing key KAFKA_SASL_PASSWORD"},
			},
			fix: func(t *testing.T, name string) { admin.put(t, home, name, string(good)) },
		},
		{
			name: "in another region", region: "eu-west-1",
			broken: []step{{func(t *testing.T, name string) { admin.put(t, home, name, string(good)) }, "secret not found"}},
			fix:    func(t *testing.T, name string) { admin.put(t, "eu-west-1", name, string(good)) },
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			name := fmt.Sprintf("reader-test/%s/%d", strings.ReplaceAll(tc.name, " ", "-"), time.Now().UnixNano())
			topic, dlq := kafkatest.TopicPair(t, plaintext, "secretwait", 2)
			source := freeAddr(t)
			if tc.broken[0].do != nil {
				tc.broken[0].do(t, name)
			}
			r := startReaderEnv(t, bin, []string{
				"AWS_ACCESS_KEY_ID=" + st.Get(t, "AWS_ACCESS_KEY_ID"), "AWS_SECRET_ACCESS_KEY=" + st.Get(t, "AWS_SECRET_ACCESS_KEY"),
				// The retry cap is short so that the test sees several retries and the recovery quickly.
				"READER_SECRET_RETRY_MAX=1s",
			},
				"--credentials", "secretsmanager", "--secret-name", name, "--region", tc.region,
				"--secrets-endpoint", admin.endpoint, "--ca-file", st.Get(t, "KAFKA_CA_FILE"),
				"--source-mode", "listen", "--source-addr", source, "--topic", topic, "--dlq-topic", dlq,
				"--log-level", "debug")

			for i, s := range tc.broken {
				if i > 0 {
					s.do(t, name)
				}
				ready := r.waitProbe(t, "/readyz", 30*time.Second, "not ready because "+s.wantReason, func(p readiness) bool {
					return p.code == http.StatusServiceUnavailable && strings.Contains(p.reason, s.wantReason)
				})
				t.Logf("/readyz: %d %s", ready.code, ready.raw)
				if !strings.Contains(ready.reason, name) {
					t.Errorf("/readyz reason %q does not name the secret %s", ready.reason, name)
				}
				// The reader retries (proof the failure took hold more than once) and stays alive meanwhile.
				retries := r.logCount("kafka credentials still unavailable; retrying")
				r.waitLog(t, "kafka credentials still unavailable; retrying", retries+2, 30*time.Second)
				health, err := getProbe("http://" + r.metrics + "/healthz")
				if err != nil || health.code != http.StatusOK {
					t.Fatalf("/healthz while the secret is unusable: %d %s (%v), want 200", health.code, health.raw, err)
				}
				t.Logf("/healthz: %d %s", health.code, health.raw)
				if acc, err := getProbe("http://" + r.metrics + "/acceptingz"); err != nil || acc.code != http.StatusServiceUnavailable {
					t.Errorf("/acceptingz (the load balancer's check) while the secret is unusable: %d %s (%v), want 503", acc.code, acc.raw, err)
				}
				if c, err := net.DialTimeout("tcp", source, time.Second); err == nil {
					c.Close()
					t.Errorf("the listen port %s accepts connections while the reader cannot deliver", source)
				}
			}
			if n := r.logCount("kafka credentials unavailable"); n != 1 {
				t.Errorf("%d WARN lines for the episode, want 1", n)
			}
			if m := r.metric(t, "logreader_credentials_unavailable"); m != 1 {
				t.Errorf("logreader_credentials_unavailable = %v while the secret is unusable, want 1", m)
			}

			tc.fix(t, name)
			r.waitLog(t, "kafka credentials available", 1, 30*time.Second)
			r.waitProbe(t, "/readyz", 60*time.Second, "ready", func(p readiness) bool { return p.code == http.StatusOK })
			if acc, err := getProbe("http://" + r.metrics + "/acceptingz"); err != nil || acc.code != http.StatusOK {
				t.Errorf("/acceptingz once ready: %d %s (%v), want 200", acc.code, acc.raw, err)
			}
			if m := r.metric(t, "logreader_credentials_unavailable"); m != 0 {
				t.Errorf("logreader_credentials_unavailable = %v after the recovery, want 0", m)
			}
			const lines = 500
			conn, err := net.DialTimeout("tcp", source, 5*time.Second)
			if err != nil {
				t.Fatalf("the reader is ready but its listen port is not: %v", err)
			}
			for i := 1; i <= lines; i++ {
				fmt.Fprintf(conn, `{"eventId":%d,"level":"Info","source":"secret-test","timestamp":"2026-12-02 12:00:00.000001",`+
					`"computer":"c1","user":"u1","message":"after the secret was fixed"}`+"\n", i)
			}
			conn.Close()
			r.waitReceived(t, lines, 30*time.Second)
			sum := r.terminate(t)
			if sum.Delivered != lines {
				t.Errorf("summary = %+v, want %d delivered", sum, lines)
			}
			got := kafkatest.ReadAll(t, plaintext, topic, lines, time.Minute)
			if len(got) != lines {
				t.Errorf("%d messages on %s, want %d", len(got), topic, lines)
			}
			if n := r.logCount("kafka credentials unavailable"); n != 1 {
				t.Errorf("%d WARN lines for the episode, want 1", n)
			}
			for _, out := range []string{r.stderr.String(), r.stdout.String()} {
				if strings.Contains(out, password) {
					t.Fatal("the reader's output holds the Kafka password")
				}
			}
		})
	}
}

// startReaderEnv is startReader with extra environment variables.
func startReaderEnv(t *testing.T, bin string, env []string, args ...string) *readerProc {
	t.Helper()
	r := &readerProc{metrics: freeAddr(t), done: make(chan struct{})}
	r.cmd = newReaderCmd(bin, append(args, "--metrics-addr", r.metrics)...)
	r.cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}, env...)
	r.start(t)
	return r
}

// metric reads one unlabelled series from the reader's /metrics; -1 when it is absent.
func (r *readerProc) metric(t *testing.T, name string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + r.metrics + "/metrics") //nolint:noctx // loopback, one request
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			var f float64
			fmt.Sscan(v, &f)
			return f
		}
	}
	return -1
}
