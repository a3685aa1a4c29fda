package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestFirstRunWithoutAWSConfig runs the built reader the way a new user first does: no arguments, in an
// environment with no AWS configuration at all. It must fail at once with exit 1 and one error that says
// what is missing and how to point the reader at the local stack, with none of the SDK's noise about the
// instance metadata service. That service is an in-process server on loopback answering 403, as it does off
// EC2 (no real one can run here, and the test must not reach the link-local address).
func TestFirstRunWithoutAWSConfig(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "reader")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	defer imds.Close()

	home := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)

	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("reader with no AWS configuration: %v, want exit status 1\nstderr:\n%s", err, &stderr)
	}
	if elapsed > 10*time.Second {
		t.Errorf("reader took %v to fail, want at once", elapsed)
	}
	for _, want := range []string{
		"no AWS credentials configured", "AWS_ACCESS_KEY_ID", "no Secrets Manager endpoint configured",
		"source .cache/stack/stack.env", "--credentials env",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, &stderr)
		}
	}
	for _, noise := range []string{"IMDS", "ec2imds", "StatusCode", "SDK "} {
		if strings.Contains(stderr.String(), noise) || strings.Contains(stdout.String(), noise) {
			t.Errorf("output mentions %q:\nstdout:\n%s\nstderr:\n%s", noise, &stdout, &stderr)
		}
	}
	// The run's summary still goes to stdout, with the same error, and says nothing was read.
	if !strings.Contains(stdout.String(), `"received":0`) || !strings.Contains(stdout.String(), "no AWS credentials configured") {
		t.Errorf("stdout = %q, want the summary with received 0 and the error", &stdout)
	}
}

// TestSIGHUPNeverStopsTheReader runs the built reader against the local broker and sends it SIGHUP in the
// states where Go's default action (exit at once, no drain) used to end it: source TLS off while reading, and
// source TLS on but not started yet (the reader still waiting for its topics). Each SIGHUP must be logged as
// received (the proof it arrived) and the reader must go on: reading, then starting TLS once the topics
// exist, and draining to exit 0 with a balanced summary at SIGTERM.
func TestSIGHUPNeverStopsTheReader(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	bin := buildReader(t)

	t.Run("source TLS off, reading", func(t *testing.T) {
		topic, dlq := kafkatest.TopicPair(t, bootstrap, "sighup", 3)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		srcDone := make(chan logsource.Stats, 1)
		go func() {
			st, _ := logsource.Serve(ctx, ln, logsource.Config{Seed: 9, FirstID: 1, Rate: 5000, TimeMode: logsource.TimeSynthetic,
				Start: time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)})
			srcDone <- st
		}()
		r := startReader(t, bin, "--source-addr", ln.Addr().String(), "--topic", topic, "--dlq-topic", dlq,
			"--security-protocol", "plaintext", "--bootstrap", bootstrap)
		r.waitReceived(t, 1, 30*time.Second)
		for i := 1; i <= 3; i++ {
			r.hangUp(t, i)
			// Still reading after it: more lines arrive.
			r.waitReceived(t, r.received(t)+1000, 30*time.Second)
		}
		sum := r.terminate(t)
		cancel()
		sent := (<-srcDone).Sent
		if sum.Delivered == 0 {
			t.Errorf("summary = %+v, want lines delivered", sum)
		}
		t.Logf("three SIGHUPs while reading, then SIGTERM: sent %d, %+v", sent, sum)
	})

	t.Run("source TLS on, not started yet", func(t *testing.T) {
		topic, dlq := kafkatest.UniqueTopic("sighup_tls"), kafkatest.UniqueTopic("sighup_tls_dlq")
		r := startReader(t, bin, "--source-addr", freeAddr(t), "--source-tls", "--topic", topic, "--dlq-topic", dlq,
			"--security-protocol", "plaintext", "--bootstrap", bootstrap)
		// The topics do not exist yet: the reader waits for them, before it starts the source TLS.
		r.waitLog(t, "kafka not ready; retrying", 1, 30*time.Second)
		if r.logCount("source TLS on") != 0 {
			t.Fatal("source TLS started before the topics exist")
		}
		r.hangUp(t, 1)
		kafkatest.CreateTopic(t, bootstrap, topic, 1)
		kafkatest.CreateTopic(t, bootstrap, dlq, 1)
		r.waitLog(t, "source TLS on", 1, 60*time.Second)
		// Once TLS runs, SIGHUP reloads the certificates (the system CAs here: nothing changes).
		r.hangUp(t, 2)
		r.waitLog(t, "source TLS certificates unchanged", 1, 10*time.Second)
		r.terminate(t)
	})
}

func buildReader(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "reader")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// syncBuffer is a bytes.Buffer the process writes and the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// readerProc is a reader process with its metrics address and captured output.
type readerProc struct {
	cmd            *exec.Cmd
	metrics        string
	stdout, stderr syncBuffer
	done           chan struct{}
	err            error
}

func startReader(t *testing.T, bin string, args ...string) *readerProc {
	t.Helper()
	r := &readerProc{metrics: freeAddr(t), done: make(chan struct{})}
	r.cmd = newReaderCmd(bin, append(args, "--metrics-addr", r.metrics)...)
	r.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
	r.start(t)
	return r
}

func newReaderCmd(bin string, args ...string) *exec.Cmd { return exec.Command(bin, args...) }

// start starts r.cmd with its output captured, and kills it when the test ends if it still runs.
func (r *readerProc) start(t *testing.T) {
	t.Helper()
	r.cmd.Stdout, r.cmd.Stderr = &r.stdout, &r.stderr
	if err := r.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r.err = r.cmd.Wait()
		close(r.done)
	}()
	t.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill()
			<-r.done
		}
		if t.Failed() {
			t.Logf("reader stderr:\n%s", r.stderr.String())
		}
	})
}

// alive fails the test if the reader is no longer running.
func (r *readerProc) alive(t *testing.T, what string) {
	t.Helper()
	select {
	case <-r.done:
		t.Fatalf("the reader ended %s: %v", what, r.err)
	default:
	}
}

// hangUp sends the reader its i-th SIGHUP and waits until it logged receiving it.
func (r *readerProc) hangUp(t *testing.T, i int) {
	t.Helper()
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	r.waitLog(t, "SIGHUP received; the reader goes on", i, 10*time.Second)
}

func (r *readerProc) logCount(msg string) int {
	n := 0
	for _, line := range strings.Split(r.stderr.String(), "\n") {
		var rec struct {
			Msg string `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == msg {
			n++
		}
	}
	return n
}

// waitLog waits until the reader logged msg n times, failing if it ends or d passes first.
func (r *readerProc) waitLog(t *testing.T, msg string, n int, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); r.logCount(msg) < n; time.Sleep(20 * time.Millisecond) {
		r.alive(t, "while waiting for the log line "+strconv.Quote(msg))
		if time.Now().After(deadline) {
			t.Fatalf("no %q log line (%d of %d) within %v", msg, r.logCount(msg), n, d)
		}
	}
	r.alive(t, "after the log line "+strconv.Quote(msg))
}

func (r *readerProc) received(t *testing.T) uint64 {
	t.Helper()
	resp, err := http.Get("http://" + r.metrics + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "logreader_lines_received_total "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return uint64(f)
		}
	}
	return 0
}

// waitReceived waits until the reader has received n lines, failing if it ends or d passes first.
func (r *readerProc) waitReceived(t *testing.T, n uint64, d time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(d); r.received(t) < n; time.Sleep(50 * time.Millisecond) {
		r.alive(t, "while reading")
		if time.Now().After(deadline) {
			t.Fatalf("received %d lines, want %d within %v", r.received(t), n, d)
		}
	}
}

// summary is the reader's final JSON line.
type summary struct {
	Received     uint64 `json:"received"`
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"dead_lettered"`
	Failed       uint64 `json:"failed"`
	InFlight     uint64 `json:"in_flight"`
}

// terminate sends SIGTERM and requires exit 0 with a balanced summary, which it returns.
func (r *readerProc) terminate(t *testing.T) summary {
	t.Helper()
	r.alive(t, "before SIGTERM")
	if err := r.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-r.done:
	case <-time.After(time.Minute):
		t.Fatal("the reader did not exit within a minute of SIGTERM")
	}
	if r.err != nil {
		t.Fatalf("reader exited with %v after SIGTERM, want 0", r.err)
	}
	out := strings.TrimSpace(r.stdout.String())
	var s summary
	if err := json.Unmarshal([]byte(out[strings.LastIndexByte(out, '\n')+1:]), &s); err != nil {
		t.Fatalf("last stdout line is not the summary: %q", out)
	}
	if s.InFlight != 0 || s.Failed != 0 || s.Received != s.Delivered+s.DeadLettered {
		t.Fatalf("summary = %+v, want balanced, none failed", s)
	}
	return s
}
