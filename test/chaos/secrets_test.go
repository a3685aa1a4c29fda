package chaos

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// secretArgs are the flags of a connect-mode reader that takes its credentials from Secrets Manager.
func secretArgs(src, secret, topic, dlq string, extra ...string) []string {
	return append([]string{
		"--source-mode", "connect", "--source-addr", src,
		"--credentials", "secretsmanager", "--secret-name", secret, "--region", stack.Get("AWS_REGION"),
		"--ca-file", stack.Get("KAFKA_CA_FILE"), "--topic", topic, "--dlq-topic", dlq,
	}, extra...)
}

// TestSecretsManagerUnreachableAtStart: Secrets Manager does not answer when the reader starts, then comes
// back. The reader retries with a growing backoff, reads nothing from TCP meanwhile, then starts and
// delivers everything.
func TestSecretsManagerUnreachableAtStart(t *testing.T) {
	n := pick[uint64](20_000, 200_000)
	outage := pick(4*time.Second, 30*time.Second)
	topic, dlq := topics(t)
	proxy := harness.NewProxy(t, strings.TrimPrefix(stack.Get("AWS_ENDPOINT_URL_SECRETSMANAGER"), "http://"))
	src := harness.NewSource(t, n, harness.SourceOptions{})
	r := harness.StartReader(t, readerBin, harness.ReaderEnv(stack.AWSEnv("http://"+proxy.Addr())...),
		secretArgs(src.Addr(), stack.Get("SECRET_NAME"), topic, dlq, "--max-events", itoa(n), "--startup-timeout", "3m")...)
	startedAt := time.Now()
	// The outage lasts at least its length and until the reader has failed to reach Secrets Manager twice
	// (a busy machine may take seconds to start it): only then does it say something about the backoff.
	const wantRetries = 2
	for deadline := startedAt.Add(2 * time.Minute); time.Since(startedAt) < outage || len(r.LogLines("secrets manager unreachable")) < wantRetries; {
		if r.Exited() || time.Now().After(deadline) {
			t.Fatalf("%d 'secrets manager unreachable' log lines %v after the start, want %d (exited %v)",
				len(r.LogLines("secrets manager unreachable")), time.Since(startedAt).Round(time.Second), wantRetries, r.Exited())
		}
		time.Sleep(100 * time.Millisecond)
	}
	away := time.Since(startedAt)
	connsDuringOutage := src.Conns()
	if err := proxy.Start(); err != nil {
		t.Fatalf("bringing Secrets Manager back: %v", err)
	}
	code, sum := r.Wait(3 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	retries := r.LogLines("secrets manager unreachable")
	var waits []string
	for _, rec := range retries {
		w, _ := rec["retry_in"].(string)
		waits = append(waits, w)
	}
	report.Add(harness.Row{Scenario: "6. Secrets Manager unreachable for " + outage.String() + " at start", Sent: src.Written(),
		Delivered: tally.Unique, Lost: tally.Lost(n), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("away %.1fs; %d retries, waits %s; %d source connections while it was away; exit %d", away.Seconds(),
			len(retries), strings.Join(waits, " "), connsDuringOutage, code)})

	for i := 1; i < len(waits); i++ {
		prev, _ := time.ParseDuration(waits[i-1])
		cur, _ := time.ParseDuration(waits[i])
		if cur < prev {
			t.Errorf("backoff shrank: %v", waits)
		}
	}
	if connsDuringOutage != 0 {
		t.Errorf("the reader connected to the source %d times before it had credentials", connsDuringOutage)
	}
	if code != 0 || sum.Delivered != n || !sum.Balanced() {
		t.Errorf("exit %d, summary %+v; want 0 and %d delivered", code, sum, n)
	}
	checkExactlyOnce(t, tally, n)
}

// TestPasswordRotated: the SASL password is rotated while the reader runs. The broker restarts knowing only
// the new password, the reader fails to authenticate, re-reads the secret (which still holds the old password
// for a while, as during a rotation), and once the secret holds the new one it applies it and resumes; no
// line is lost or duplicated.
func TestPasswordRotated(t *testing.T) {
	n := pick[uint64](60_000, 300_000)
	rate := pick(10_000, 10_000)
	topic, dlq := topics(t)
	ensureBroker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	secret := kafkatest.UniqueTopic("chaos_rotation")
	user, oldPassword := stack.Get("KAFKA_SASL_TEST_USERNAME"), stack.Get("KAFKA_SASL_TEST_PASSWORD")
	if err := stack.PutKafkaSecret(ctx, secret, stack.Get("KAFKA_BOOTSTRAP_SERVER"), user, oldPassword); err != nil {
		t.Fatal(err)
	}
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	r := harness.StartReader(t, readerBin, harness.ReaderEnv(stack.AWSEnv("")...),
		secretArgs(src.Addr(), secret, topic, dlq, "--max-events", itoa(n), "--drain-timeout", "2m")...)
	if err := src.WaitWritten(n/5, 3*time.Minute); err != nil {
		t.Fatalf("waiting for a fifth of the stream: %v", err)
	}

	newPassword := randomHex(t)
	restore, err := stack.SetTestUserPassword(newPassword)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := restore(); err != nil {
			t.Errorf("restoring the broker config: %v", err)
			return
		}
		if err := stack.StopBroker(brokerCtx(t)); err != nil {
			t.Errorf("restarting the broker with the stack's password: %v", err)
		}
		// ensureBroker starts it again.
	})
	rotatedAt := time.Now()
	if err := stack.StopBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := stack.StartBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	// The reader must see the rejection and find the secret unchanged before the secret is updated.
	deadline := time.Now().Add(time.Minute)
	for len(r.LogLines("secret still holds the same ones")) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the reader did not report an authentication failure within a minute of the rotation")
		}
		time.Sleep(200 * time.Millisecond)
	}
	putCtx, putCancel := context.WithTimeout(context.Background(), time.Minute) // the scenario's ctx may be spent on restarts
	defer putCancel()
	if err := stack.PutKafkaSecret(putCtx, secret, stack.Get("KAFKA_BOOTSTRAP_SERVER"), user, newPassword); err != nil {
		t.Fatal(err)
	}
	secretUpdated := time.Since(rotatedAt)

	code, sum := r.Wait(5 * time.Minute)
	tally := harness.ReadEvents(t, stack.PlaintextBootstrap(), topic, 1, n)
	dls := harness.ReadDeadLetters(t, stack.PlaintextBootstrap(), dlq)
	applied := r.LogLines("applied rotated kafka credentials")
	out := string(r.Stderr()) + string(r.Stdout())
	leaks := strings.Count(out, newPassword) + strings.Count(out, oldPassword)
	report.Add(harness.Row{Scenario: "6. SASL password rotated while running", Sent: src.Written(), Delivered: tally.Unique,
		DeadLettered: uint64(len(dls)), Lost: tally.Lost(n), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("secret updated %.1fs after the broker rotation; %d authentication-failure re-reads; applied %d time(s); password in output %d times; exit %d",
			secretUpdated.Seconds(), len(r.LogLines("secret still holds the same ones")), len(applied), leaks, code)})

	if len(applied) == 0 {
		t.Errorf("the reader never applied the rotated credentials")
	}
	if leaks != 0 {
		t.Errorf("a SASL password appears %d times in the reader's output", leaks)
	}
	if code != 0 || sum.Delivered != n || !sum.Balanced() {
		t.Errorf("exit %d, summary %+v; want 0 and %d delivered", code, sum, n)
	}
	checkExactlyOnce(t, tally, n)
	if len(dls) != 0 {
		t.Errorf("%d dead letters (reasons %v), want none", len(dls), harness.ReasonCounts(dls))
	}
}

func randomHex(t *testing.T) string {
	t.Helper()
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
