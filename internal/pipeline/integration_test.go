package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

var testStart = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)

// readerConfig is a plaintext configuration for the local broker, dead letters to dlqTopic.
func readerConfig(t *testing.T, bootstrap, addr, topic, dlqTopic string, extra ...string) Config {
	t.Helper()
	args := append([]string{"--source-addr", addr, "--topic", topic, "--dlq-topic", dlqTopic,
		"--security-protocol", "plaintext", "--bootstrap", bootstrap, "--metrics-addr", "",
		"--startup-timeout", "20s"}, extra...)
	cfg, err := ParseConfig(args, func(string) string { return "" }, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("ParseConfig: %v", err)
	}
	return cfg
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(io.Discard, nil))
}

func sourceListener(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

type sourceResult struct {
	stats logsource.Stats
	err   error
}

func serveSource(ctx context.Context, ln net.Listener, cfg logsource.Config) <-chan sourceResult {
	ch := make(chan sourceResult, 1)
	go func() {
		st, err := logsource.Serve(ctx, ln, cfg)
		ch <- sourceResult{st, err}
	}()
	return ch
}

// checkEvents asserts that recs (possibly many newline-joined events per message) hold every event of
// the generator from firstID exactly once, byte for byte, and nothing else.
func checkEvents(t *testing.T, recs []kafkatest.Record, seed int64, firstID uint32, n uint64) {
	t.Helper()
	gen := event.NewGenerator(seed, firstID, testStart)
	seen := make([]bool, n)
	var total uint64
	var want []byte
	for _, r := range recs {
		for _, line := range bytes.Split(r.Value, []byte{'\n'}) {
			var ev struct {
				EventID uint32 `json:"eventId"`
			}
			if err := json.Unmarshal(line, &ev); err != nil {
				t.Fatalf("topic holds a line that is not an event: %q: %v", line, err)
			}
			i := uint64(ev.EventID - firstID)
			if i >= n {
				t.Fatalf("unexpected eventId %d (want %d..%d)", ev.EventID, firstID, uint64(firstID)+n-1)
			}
			if seen[i] {
				t.Fatalf("eventId %d delivered twice", ev.EventID)
			}
			seen[i] = true
			want = gen.AppendAt(want[:0], i)
			if !bytes.Equal(line, want) {
				t.Fatalf("eventId %d bytes differ:\n got %q\nwant %q", ev.EventID, line, want)
			}
			total++
		}
	}
	if total != n {
		for i, ok := range seen {
			if !ok {
				t.Fatalf("%d of %d events arrived; eventId %d is missing", total, n, firstID+uint32(i))
			}
		}
	}
}

func TestIntegrationEndToEnd(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	n := uint64(1_000_000)
	if testing.Short() {
		n = 50_000
	}
	for _, tc := range []struct {
		reader     string
		perMessage int
	}{{"highperf", 1}, {"basic", 1}, {"highperf", 200}} {
		t.Run(fmt.Sprintf("%s/%d_per_message", tc.reader, tc.perMessage), func(t *testing.T) {
			topic, dlq := kafkatest.TopicPair(t, bootstrap, "e2e", 3)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			ln := sourceListener(t)
			const seed, first = 42, 1
			src := serveSource(ctx, ln, logsource.Config{Count: n, Seed: seed, FirstID: first, Start: testStart, TimeMode: logsource.TimeSynthetic})

			cfg := readerConfig(t, bootstrap, ln.Addr().String(), topic, dlq,
				"--reader", tc.reader, "--max-events", strconv.FormatUint(n, 10),
				"--events-per-message", strconv.Itoa(tc.perMessage))
			var out bytes.Buffer
			start := time.Now()
			sum, err := Run(ctx, cfg, &out, quietLogger())
			elapsed := time.Since(start)
			if err != nil {
				t.Fatalf("Run: %v (summary %s)", err, out.String())
			}
			sres := <-src
			if sres.err != nil {
				t.Fatalf("log source: %v", sres.err)
			}
			if sum.Received != n || sum.Delivered != n || sum.DeadLettered != 0 || sum.Failed != 0 || sum.InFlight != 0 {
				t.Fatalf("summary = %+v, want %d received and delivered", sum, n)
			}
			var printed Summary
			if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &printed); err != nil || printed.Delivered != n {
				t.Fatalf("printed summary %q (err %v), want delivered=%d", out.String(), err, n)
			}
			t.Logf("%s reader, %d events per message: %d events in %v = %.0f events/s (%.1f MB/s of source bytes)",
				tc.reader, tc.perMessage, n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(),
				float64(sres.stats.Bytes)/elapsed.Seconds()/1e6)
			wantMsgs := int(n)
			if tc.perMessage > 1 {
				wantMsgs = int(n) / tc.perMessage
			}
			recs := kafkatest.ReadAll(t, bootstrap, topic, wantMsgs, 3*time.Minute)
			checkEvents(t, recs, seed, first, n)
		})
	}
}

func TestIntegrationSASLWithSecretFromEmulator(t *testing.T) {
	st := stacktest.Load(t)
	st.SetAWSEnv(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "sasl", 3)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ln := sourceListener(t)
	const n, seed, first = 20_000, 7, 1000
	src := serveSource(ctx, ln, logsource.Config{Count: n, Seed: seed, FirstID: first, Start: testStart, TimeMode: logsource.TimeSynthetic})

	args := []string{"--source-addr", ln.Addr().String(), "--topic", topic, "--dlq-topic", dlq,
		"--credentials", "secretsmanager", "--secret-name", st.Get(t, "SECRET_NAME"),
		"--ca-file", st.Get(t, "KAFKA_CA_FILE"), "--metrics-addr", "", "--max-events", strconv.Itoa(n)}
	cfg, err := ParseConfig(args, os.Getenv, io.Discard, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Credentials.Endpoint == "" {
		t.Fatal("the emulator endpoint did not reach the config")
	}
	var logs bytes.Buffer
	sum, err := Run(ctx, cfg, io.Discard, slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if err != nil {
		t.Fatalf("Run over SASL_SSL: %v", err)
	}
	if (<-src).err != nil {
		t.Fatal("log source failed")
	}
	if sum.Delivered != n || !sum.Balanced() {
		t.Fatalf("summary = %+v, want %d delivered", sum, n)
	}
	if pw := st.Get(t, "KAFKA_SASL_PASSWORD"); strings.Contains(logs.String(), pw) {
		t.Fatal("the SASL password appears in the reader's logs")
	}
	checkEvents(t, kafkatest.ReadAll(t, bootstrap, topic, n, time.Minute), seed, first, n)
}

// freeAddr returns a loopback address with a port nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln := sourceListener(t)
	defer ln.Close()
	return ln.Addr().String()
}

// received scrapes logreader_lines_received_total from a reader's metrics endpoint.
func received(addr string) (uint64, error) {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "logreader_lines_received_total "); ok {
			f, err := strconv.ParseFloat(v, 64)
			return uint64(f), err
		}
	}
	return 0, errors.New("no logreader_lines_received_total in /metrics")
}

func TestIntegrationBadInputIsDeadLetteredAndGoodLinesFlow(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	// What a strict reader must say about each injected class.
	wantReason := map[logsource.BadClass]string{
		logsource.BadOversized: "oversized_line", logsource.BadInvalidUTF8: "invalid_utf8",
		logsource.BadInvalidJSON: "invalid_json", logsource.BadArray: "not_object",
		logsource.BadMissingField: "missing_field", logsource.BadWrongType: "wrong_type",
		logsource.BadEventIDRange: "event_id_out_of_range", logsource.BadTimestamp: "bad_timestamp",
		logsource.BadEmpty: "empty_line", logsource.BadTruncated: "truncated_line", logsource.BadNUL: "invalid_json",
		logsource.BadBOM: "invalid_json", logsource.BadDeep: "too_deep", logsource.BadHugeNumber: "event_id_out_of_range",
		logsource.BadDuplicateKey: "duplicate_key",
	}
	for _, reader := range []string{"highperf", "basic"} {
		t.Run(reader, func(t *testing.T) {
			topic, dlq := kafkatest.TopicPair(t, bootstrap, "bad", 3)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			ln := sourceListener(t)
			const n, seed, first = 6_000, 3, 1
			src := serveSource(ctx, ln, logsource.Config{Count: n, Seed: seed, FirstID: first, Start: testStart, TimeMode: logsource.TimeSynthetic,
				Bad: logsource.AllBadClasses, BadEvery: 100})

			metrics := freeAddr(t)
			cfg := readerConfig(t, bootstrap, ln.Addr().String(), topic, dlq, "--reader", reader, "--metrics-addr", metrics)
			rctx, stop := context.WithCancel(ctx)
			defer stop()
			type runResult struct {
				sum Summary
				err error
			}
			done := make(chan runResult, 1)
			go func() {
				s, err := Run(rctx, cfg, io.Discard, quietLogger())
				done <- runResult{s, err}
			}()
			sres := <-src
			if sres.err != nil {
				t.Fatalf("log source: %v", sres.err)
			}
			// Every line the source wrote must be received before we stop the (unbounded) reader.
			wantLines := sres.stats.Sent + sres.stats.BadTotal()
			deadline := time.Now().Add(time.Minute)
			for {
				got, err := received(metrics)
				if err == nil && got >= wantLines {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("reader received %d lines (err %v), source wrote %d", got, err, wantLines)
				}
				time.Sleep(50 * time.Millisecond)
			}
			stop()
			res := <-done
			if res.err != nil {
				t.Fatalf("Run: %v", res.err)
			}
			sum := res.sum
			if sum.Received != wantLines || sum.Delivered != sres.stats.Sent || sum.DeadLettered != sres.stats.BadTotal() || sum.Failed != 0 {
				t.Fatalf("summary = %+v; source sent %d good and %v bad", sum, sres.stats.Sent, sres.stats.BadSent)
			}
			wantByReason := map[string]uint64{}
			for class, count := range sres.stats.BadSent {
				reason, ok := wantReason[logsource.BadClass(class)]
				if !ok {
					t.Fatalf("no expected reason for class %q", class)
				}
				wantByReason[reason] += count
			}
			gotByReason := map[string]uint64{}
			for _, r := range kafkatest.ReadAll(t, bootstrap, dlq, int(sres.stats.BadTotal()), time.Minute) {
				gotByReason[r.Headers["reason"]]++
				if r.Headers["detail"] == "" || r.Headers["source"] == "" || len(r.Value) > 4096 {
					t.Errorf("dead letter lacks detail/source or its sample is unbounded: headers %v, %d bytes", r.Headers, len(r.Value))
				}
			}
			if fmt.Sprint(gotByReason) != fmt.Sprint(wantByReason) {
				t.Errorf("dead letters by reason = %v, want %v", gotByReason, wantByReason)
			}
			checkEvents(t, kafkatest.ReadAll(t, bootstrap, topic, int(sres.stats.Sent), time.Minute), seed, first, sres.stats.Sent)
		})
	}
}

func TestIntegrationReconnectsAfterSourceRestart(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "reconnect", 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n1, n2, seed = 3000, 4000, 11
	ln := sourceListener(t)
	addr := ln.Addr().String()
	first := serveSource(ctx, ln, logsource.Config{Count: n1, Seed: seed, FirstID: 1, Start: testStart, TimeMode: logsource.TimeSynthetic})

	cfg := readerConfig(t, bootstrap, addr, topic, dlq, "--max-events", strconv.Itoa(n1+n2))
	done := make(chan error, 1)
	var sum Summary
	go func() {
		var err error
		sum, err = Run(ctx, cfg, io.Discard, quietLogger())
		done <- err
	}()
	if r := <-first; r.err != nil || r.stats.Sent != n1 {
		t.Fatalf("first source: %+v %v", r.stats, r.err)
	}
	// The source is gone; the reader must keep dialing and pick up the restarted one on the same address.
	time.Sleep(300 * time.Millisecond)
	ln2, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("restarting the source on %s: %v", addr, err)
	}
	second := serveSource(ctx, ln2, logsource.Config{Count: n2, Seed: seed, FirstID: 1 + n1, Start: testStart.Add(time.Hour), TimeMode: logsource.TimeSynthetic})
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if r := <-second; r.err != nil {
		t.Fatalf("second source: %v", r.err)
	}
	if sum.Delivered != n1+n2 || !sum.Balanced() {
		t.Fatalf("summary = %+v, want %d delivered", sum, n1+n2)
	}
	recs := kafkatest.ReadAll(t, bootstrap, topic, n1+n2, time.Minute)
	ids := map[uint32]bool{}
	for _, r := range recs {
		var ev struct {
			EventID uint32 `json:"eventId"`
		}
		if err := json.Unmarshal(r.Value, &ev); err != nil {
			t.Fatal(err)
		}
		ids[ev.EventID] = true
	}
	for id := uint32(1); id <= n1+n2; id++ {
		if !ids[id] {
			t.Fatalf("eventId %d missing after the source restart", id)
		}
	}
}

// TestIntegrationSIGTERMDrains runs the real binary, stops it with SIGTERM mid-stream, and checks that it
// exits 0 with a balanced summary and that the topic holds exactly what it says it delivered.
func TestIntegrationSIGTERMDrains(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "sigterm", 3)
	bin := filepath.Join(t.TempDir(), "reader")
	build := exec.Command("go", "build", "-o", bin, "./tasks/reader")
	build.Dir = stacktest.RepoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building the reader: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ln := sourceListener(t)
	const seed = 5
	src := serveSource(ctx, ln, logsource.Config{Seed: seed, FirstID: 1, Start: testStart, Rate: 40_000, TimeMode: logsource.TimeSynthetic})

	metrics := freeAddr(t)
	cmd := exec.Command(bin, "--source-addr", ln.Addr().String(), "--topic", topic, "--dlq-topic", dlq,
		"--security-protocol", "plaintext", "--bootstrap", bootstrap, "--metrics-addr", metrics)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// SIGTERM only once the reader is delivering mid-stream (the source never ends): a fixed sleep would,
	// on a busy machine, stop a reader that has not connected yet and prove nothing about the drain.
	const before = 20_000
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if got, err := received(metrics); err == nil && got >= before {
			break
		}
		if time.Now().After(deadline) {
			got, err := received(metrics)
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("the reader received %d lines (err %v) in a minute, want %d before SIGTERM\n%s", got, err, before, stderr.String())
		}
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("reader exited with %v after SIGTERM\n%s", err, stderr.String())
	}
	cancel()
	<-src
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	var sum Summary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil {
		t.Fatalf("last stdout line is not the summary: %q", stdout.String())
	}
	if sum.Delivered == 0 || sum.InFlight != 0 || sum.Failed != 0 || !sum.Balanced() {
		t.Fatalf("summary after SIGTERM = %+v, want lines delivered, none in flight or failed", sum)
	}
	// A line cut by the stop may be dead-lettered as truncated; nothing else.
	if sum.Received < before || sum.DeadLettered > 1 {
		t.Fatalf("summary after SIGTERM = %+v, want at least the %d lines received before it, at most one dead-lettered (cut by the stop)", sum, before)
	}
	t.Logf("SIGTERM after %d lines received: %+v", before, sum)
	checkEvents(t, kafkatest.ReadAll(t, bootstrap, topic, int(sum.Delivered), time.Minute), seed, 1, sum.Delivered)
}
