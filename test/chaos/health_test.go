package chaos

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// Thresholds of the health scenarios: short, so that each state shows within a 20-second outage.
var healthArgs = []string{"--stall-after", "3s", "--unhealthy-after", "10s", "--log-interval", "5s"}

// wantProbe polls path until match holds, failing the test with the last answer when it does not within d.
func wantProbe(t *testing.T, r *harness.Reader, path string, d time.Duration, what string, match func(harness.Probe) bool) harness.Probe {
	t.Helper()
	p, ok := r.WaitProbe(path, d, match)
	if !ok {
		t.Fatalf("%s: %s did not reach the state within %v; last answer %d %s", what, path, d, p.Code, p.Raw)
	}
	t.Logf("%s: GET %s -> %d %s", what, path, p.Code, strings.TrimSpace(p.Raw))
	return p
}

func state(code int, st string) func(harness.Probe) bool {
	return func(p harness.Probe) bool { return p.Code == code && p.Get("state") == st }
}

// logRecords returns the reader's log records with exactly this message.
func logRecords(r *harness.Reader, msg string) []map[string]any {
	var out []map[string]any
	for _, rec := range r.LogLines(msg) {
		if rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// waitLogRecords waits until the reader has logged at least one record with exactly this message, or d
// passes, and returns the records so far: the watcher logs from its own one-second tick, so a state the probe
// already shows may reach the log a tick later.
func waitLogRecords(t *testing.T, r *harness.Reader, msg string, d time.Duration) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		if recs := logRecords(r, msg); len(recs) > 0 || time.Now().After(deadline) || r.Exited() {
			return recs
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stopAndReport ends a health scenario: SIGTERM, the run's summary, the scenario's row in the report (notes,
// then the exit code), and a failure unless the reader exited 0 with every line settled and none lost.
func stopAndReport(t *testing.T, r *harness.Reader, src *harness.Source, scenario, notes string) {
	t.Helper()
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(2 * time.Minute)
	report.Add(harness.Row{Scenario: scenario, Sent: src.Written(), Delivered: sum.Delivered, DeadLettered: sum.DeadLettered,
		Notes: fmt.Sprintf("%s; exit %d", notes, code)})
	if code != 0 || !sum.Balanced() || sum.Failed != 0 {
		t.Errorf("exit %d, summary %+v; want 0, balanced, nothing failed", code, sum)
	}
}

func num(rec map[string]any, key string) float64 {
	f, _ := rec[key].(float64)
	return f
}

// TestHealthBrokerPaused: the broker is frozen for 20 s under a steady stream. /healthz goes from delivering
// to stalled (still 200) to unhealthy (503) and back to 200; the log has one WARN when the stall starts,
// rate-limited repeats while it lasts, and one INFO when it recovers, saying how long and how much waited.
func TestHealthBrokerPaused(t *testing.T) {
	const n, rate = 400_000, 5_000
	pause := 20 * time.Second
	topic, dlq := topics(t)
	ensureBroker(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		append([]string{"--drain-timeout", "1m", "--queue-max-kbytes", "4096"}, healthArgs...)...)...)
	r.WaitReady(time.Minute)
	wantProbe(t, r, "/readyz", 10*time.Second, "before the pause", func(p harness.Probe) bool { return p.Healthy() && p.Get("status") == "ready" })
	if err := src.WaitWritten(2*rate, time.Minute); err != nil {
		t.Fatal(err)
	}
	wantProbe(t, r, "/healthz", 10*time.Second, "before the pause", state(200, "delivering"))

	if err := stack.PauseBroker(); err != nil {
		t.Fatal(err)
	}
	pausedAt := time.Now()
	stalled := wantProbe(t, r, "/healthz", 8*time.Second, "paused, stall shorter than --unhealthy-after", state(200, "stalled"))
	unhealthy := wantProbe(t, r, "/healthz", 15*time.Second, "paused, stall longer than --unhealthy-after", state(503, "stalled"))
	time.Sleep(time.Until(pausedAt.Add(pause)))
	if err := stack.ResumeBroker(); err != nil {
		t.Fatal(err)
	}
	paused := time.Since(pausedAt)
	recovered := wantProbe(t, r, "/healthz", 30*time.Second, "resumed", func(p harness.Probe) bool {
		return p.Healthy() && p.Get("state") != "stalled"
	})
	ends := waitLogRecords(t, r, "delivery recovered", 10*time.Second)
	recoveredSeen := time.Since(pausedAt)

	starts, repeats := logRecords(r, "delivery stalled"), logRecords(r, "delivery still stalled")
	for _, rec := range append(append(append([]map[string]any{}, starts...), repeats...), ends...) {
		b, _ := json.Marshal(rec)
		t.Logf("log: %s", b)
	}
	if len(starts) != 1 || starts[0]["level"] != "WARN" {
		t.Errorf("%d 'delivery stalled' records (%v), want one WARN", len(starts), starts)
	} else if num(starts[0], "in_flight") <= 0 || starts[0]["cause"] == nil || starts[0]["kafka_queue_messages"] == nil {
		t.Errorf("'delivery stalled' = %v, want in_flight > 0, a cause and the kafka queue", starts[0])
	}
	if len(ends) != 1 || ends[0]["level"] != "INFO" {
		t.Fatalf("%d 'delivery recovered' records (%v), want one INFO", len(ends), ends)
	}
	// The stall covers the whole freeze (no acknowledgement can arrive from a stopped broker) and ends before
	// the test saw its record; the watcher's one-second tick blurs either end by a second.
	stalledFor := num(ends[0], "stalled_seconds")
	if stalledFor < paused.Seconds()-1 || stalledFor > recoveredSeen.Seconds()+1 {
		t.Errorf("recovery stalled_seconds = %v, want between the %.1fs freeze and the %.1fs until the record was seen",
			stalledFor, paused.Seconds(), recoveredSeen.Seconds())
	}
	// Repeats every --log-interval (5s) from the first WARN until the recovery: as many as fit in the stall
	// as it was measured. The watcher's ticks make an interval 5 s or a little more (up to 7 s allowed for a
	// busy machine), and the recovery tick logs no repeat.
	if len(starts) == 1 {
		logged := stalledFor - num(starts[0], "waiting_seconds")
		lo, hi := max(int(math.Ceil(logged/7))-1, 1), int(logged/5)
		if len(repeats) < lo || len(repeats) > hi {
			t.Errorf("%d 'delivery still stalled' records in the %.1fs from the first WARN to the recovery, want %d-%d (every --log-interval 5s)",
				len(repeats), logged, lo, hi)
		}
	}
	if num(ends[0], "delayed_lines") < num(starts[0], "in_flight") {
		t.Errorf("recovery delayed_lines = %v, want at least the %v lines in flight when the stall began", ends[0]["delayed_lines"], starts[0]["in_flight"])
	}

	stopAndReport(t, r, src, "8. health: broker SIGSTOPped "+pause.String()+" under 5,000 lines/s",
		fmt.Sprintf("/healthz %d %s -> %d %s -> %d %s; stall WARN once, %d repeats, recovered after %.1fs with %.0f lines delayed",
			stalled.Code, stalled.Get("state"), unhealthy.Code, unhealthy.Get("state"), recovered.Code, recovered.Get("state"),
			len(repeats), num(ends[0], "stalled_seconds"), num(ends[0], "delayed_lines")))
}

// TestHealthReaderStopped: a bounded run reads its last line while the broker is frozen. Reading has ended
// and the drain waits: /healthz and /readyz say the source reader stopped. After SIGCONT the drain finishes.
func TestHealthReaderStopped(t *testing.T) {
	const n, rate = 25_000, 5_000
	topic, dlq := topics(t)
	ensureBroker(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		append([]string{"--max-events", itoa(n), "--drain-timeout", "1m"}, healthArgs...)...)...)
	r.WaitReady(time.Minute)
	wantProbe(t, r, "/healthz", 10*time.Second, "reading", func(p harness.Probe) bool { return p.Healthy() })
	// The last 10,000 lines (about 3 MiB) fit the 8 MiB queue: reading ends while the broker is frozen.
	if err := src.WaitWritten(n-2*rate, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := stack.PauseBroker(); err != nil {
		t.Fatal(err)
	}
	stopped := wantProbe(t, r, "/healthz", 15*time.Second, "read everything, draining into a frozen broker", state(503, "stopped"))
	notReady := wantProbe(t, r, "/readyz", 5*time.Second, "read everything, draining", func(p harness.Probe) bool { return p.Code == 503 })
	if err := stack.ResumeBroker(); err != nil {
		t.Fatal(err)
	}
	code, sum := r.Wait(2 * time.Minute)
	report.Add(harness.Row{Scenario: "8. health: bounded run ends while the broker is frozen", Sent: src.Written(),
		Delivered: sum.Delivered, DeadLettered: sum.DeadLettered,
		Notes: fmt.Sprintf("/healthz %d (%s); /readyz %d (%s); exit %d", stopped.Code, stopped.Get("reason"), notReady.Code,
			notReady.Get("reason"), code)})
	if code != 0 || sum.Received != n || sum.Delivered != n || !sum.Balanced() {
		t.Errorf("exit %d, summary %+v; want 0 and %d delivered, balanced", code, sum, n)
	}
}

// TestHealthBrokerKilled: the broker is SIGKILLed. /readyz turns not ready naming the unreachable brokers,
// /healthz turns unhealthy once the stall outlasts --unhealthy-after; both recover after the restart.
func TestHealthBrokerKilled(t *testing.T) {
	const n, rate = 400_000, 5_000
	topic, dlq := topics(t)
	ensureBroker(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	r := harness.StartReader(t, readerBin, envCreds(), readerArgs(src.Addr(), topic, dlq,
		append([]string{"--drain-timeout", "1m"}, healthArgs...)...)...)
	r.WaitReady(time.Minute)
	wantProbe(t, r, "/healthz", 10*time.Second, "before the kill", func(p harness.Probe) bool { return p.Healthy() })

	if err := stack.KillBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	notReady := wantProbe(t, r, "/readyz", 30*time.Second, "broker killed", func(p harness.Probe) bool {
		return p.Code == 503 && strings.Contains(p.Get("reason"), "unreachable")
	})
	unhealthy := wantProbe(t, r, "/healthz", 30*time.Second, "broker killed", state(503, "stalled"))
	if err := stack.StartBroker(brokerCtx(t)); err != nil {
		t.Fatal(err)
	}
	down := time.Since(killedAt)
	ready := wantProbe(t, r, "/readyz", time.Minute, "broker restarted", func(p harness.Probe) bool { return p.Healthy() })
	healthy := wantProbe(t, r, "/healthz", time.Minute, "broker restarted", func(p harness.Probe) bool {
		return p.Healthy() && p.Get("state") != "stalled"
	})
	for _, msg := range []string{"not ready", "ready again", "delivery recovered"} {
		if got := waitLogRecords(t, r, msg, 10*time.Second); len(got) != 1 {
			t.Errorf("%d '%s' records, want 1: %v", len(got), msg, got)
		}
	}
	stopAndReport(t, r, src, "8. health: broker SIGKILLed and restarted",
		fmt.Sprintf("broker down %.1fs; /readyz %d (%s) -> %d; /healthz %d %s -> %d %s", down.Seconds(),
			notReady.Code, notReady.Get("reason"), ready.Code, unhealthy.Code, unhealthy.Get("state"), healthy.Code, healthy.Get("state")))
}

// TestHealthCredentialsRevoked: the broker stops accepting the reader's password (restarted with another
// one). /readyz turns not ready naming the authentication failure; when the broker accepts the password
// again, it is ready again.
func TestHealthCredentialsRevoked(t *testing.T) {
	const n, rate = 400_000, 2_000
	topic, dlq := topics(t)
	ensureBroker(t)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	env := harness.ReaderEnv("KAFKA_BOOTSTRAP_SERVER="+stack.Get("KAFKA_BOOTSTRAP_SERVER"),
		"KAFKA_SASL_USERNAME="+stack.Get("KAFKA_SASL_TEST_USERNAME"), "KAFKA_SASL_PASSWORD="+stack.Get("KAFKA_SASL_TEST_PASSWORD"))
	r := harness.StartReader(t, readerBin, env, readerArgs(src.Addr(), topic, dlq,
		append([]string{"--drain-timeout", "1m"}, healthArgs...)...)...)
	r.WaitReady(time.Minute)

	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	restore, err := stack.SetTestUserPassword(hex.EncodeToString(b))
	if err != nil {
		t.Fatal(err)
	}
	restored := false
	t.Cleanup(func() {
		if !restored {
			_ = restore()
		}
	})
	restart := func() {
		t.Helper()
		if err := stack.StopBroker(brokerCtx(t)); err != nil {
			t.Fatal(err)
		}
		if err := stack.StartBroker(brokerCtx(t)); err != nil {
			t.Fatal(err)
		}
	}
	restart()
	revoked := wantProbe(t, r, "/readyz", time.Minute, "password revoked", func(p harness.Probe) bool {
		return p.Code == 503 && strings.Contains(p.Get("reason"), "authentication")
	})
	if err := restore(); err != nil {
		t.Fatal(err)
	}
	restored = true
	restart()
	ready := wantProbe(t, r, "/readyz", time.Minute, "password accepted again", func(p harness.Probe) bool { return p.Healthy() })
	stopAndReport(t, r, src, "8. health: broker stops accepting the password, then accepts it again",
		fmt.Sprintf("/readyz %d (%s) -> %d", revoked.Code, revoked.Get("reason"), ready.Code))
}
