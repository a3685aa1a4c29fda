package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Summary is the reader's final JSON line (the CLI contract).
type Summary struct {
	Received          uint64            `json:"received"`
	Delivered         uint64            `json:"delivered"`
	DeadLettered      uint64            `json:"dead_lettered"`
	Failed            uint64            `json:"failed"`
	InFlight          uint64            `json:"in_flight"`
	Duration          float64           `json:"duration_seconds"`
	EventsPerSec      float64           `json:"events_per_second"`
	DeadLetterReasons map[string]uint64 `json:"dead_letter_reasons"`
	Error             string            `json:"error"`
}

// Balanced reports whether every received line was delivered, dead-lettered or failed, with none in flight.
func (s Summary) Balanced() bool {
	return s.InFlight == 0 && s.Received == s.Delivered+s.DeadLettered+s.Failed
}

// BuildReader builds ./tasks/reader into dir and returns the binary's path. READER_BIN, when set, names a
// binary already built (dev/chaos.sh builds bin/reader) and is returned instead.
func BuildReader(root, dir string) (string, error) {
	if bin := os.Getenv("READER_BIN"); bin != "" {
		if _, err := os.Stat(bin); err != nil {
			return "", fmt.Errorf("READER_BIN: %w", err)
		}
		return bin, nil
	}
	cmd := exec.Command("go", "build", "-o", dir+string(filepath.Separator), "./tasks/reader")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("building ./tasks/reader: %w: %s", err, out)
	}
	return filepath.Join(dir, "reader"), nil
}

// Reader is a running reader process. Its stdout and stderr go to files in the test's temporary directory,
// and a sampler follows its resident memory and open file descriptors until it exits.
type Reader struct {
	tb          testing.TB
	cmd         *exec.Cmd
	MetricsAddr string
	StdoutPath  string
	StderrPath  string
	done        chan struct{}
	waitErr     error

	peakRSS atomic.Uint64 // bytes
	peakFDs atomic.Int64
	mu      sync.Mutex
	samples []Sample
}

// Sample is one observation of the reader process.
type Sample struct {
	At  time.Time
	RSS uint64 // bytes
	FDs int
}

// ReaderEnv is the environment a reader runs with: PATH and HOME of the test process and nothing else, so a
// READER_* or AWS_* variable of the caller never leaks into a scenario, plus extra.
func ReaderEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + os.TempDir()}
	return append(env, extra...)
}

// StartReader starts bin with args and env. Unless args set them, it adds --metrics-addr on a free loopback
// port and --log-level info. The process is SIGKILLed when the test ends if it still runs.
func StartReader(tb testing.TB, bin string, env []string, args ...string) *Reader {
	tb.Helper()
	dir := tb.TempDir()
	r := &Reader{tb: tb, StdoutPath: filepath.Join(dir, "stdout"), StderrPath: filepath.Join(dir, "stderr"), done: make(chan struct{})}
	joined := " " + strings.Join(args, " ")
	if !strings.Contains(joined, " --metrics-addr") {
		r.MetricsAddr = FreeAddr(tb)
		args = append(args, "--metrics-addr", r.MetricsAddr)
	} else {
		for i, a := range args {
			if a == "--metrics-addr" && i+1 < len(args) {
				r.MetricsAddr = args[i+1]
			}
		}
	}
	if !strings.Contains(joined, " --log-level") {
		args = append(args, "--log-level", "info")
	}
	stdout, err := os.Create(r.StdoutPath)
	if err != nil {
		tb.Fatalf("creating reader stdout file: %v", err)
	}
	stderr, err := os.Create(r.StderrPath)
	if err != nil {
		tb.Fatalf("creating reader stderr file: %v", err)
	}
	r.cmd = exec.Command(bin, args...)
	r.cmd.Env = env
	r.cmd.Stdout, r.cmd.Stderr = stdout, stderr
	if err := r.cmd.Start(); err != nil {
		tb.Fatalf("starting reader: %v", err)
	}
	go func() {
		r.waitErr = r.cmd.Wait()
		stdout.Close()
		stderr.Close()
		close(r.done)
	}()
	go r.sample()
	tb.Cleanup(func() {
		select {
		case <-r.done:
		default:
			_ = r.cmd.Process.Kill() // it may have exited since the check
			<-r.done
		}
		if tb.Failed() {
			tb.Logf("reader stderr (last lines):\n%s", tail(r.Stderr(), 40))
		}
	})
	return r
}

// PID is the reader's process id.
func (r *Reader) PID() int { return r.cmd.Process.Pid }

func (r *Reader) sample() {
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-t.C:
		}
		rss, ok := procRSS(r.PID())
		if !ok {
			continue
		}
		fds := procFDs(r.PID())
		if rss > r.peakRSS.Load() {
			r.peakRSS.Store(rss)
		}
		if int64(fds) > r.peakFDs.Load() {
			r.peakFDs.Store(int64(fds))
		}
		r.mu.Lock()
		r.samples = append(r.samples, Sample{At: time.Now(), RSS: rss, FDs: fds})
		r.mu.Unlock()
	}
}

// PeakRSS is the largest resident set size seen so far, in bytes.
func (r *Reader) PeakRSS() uint64 { return r.peakRSS.Load() }

// PeakFDs is the most open file descriptors seen so far.
func (r *Reader) PeakFDs() int { return int(r.peakFDs.Load()) }

// Samples returns the observations so far.
func (r *Reader) Samples() []Sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Sample(nil), r.samples...)
}

// FDs returns the number of open file descriptors now.
func (r *Reader) FDs() int { return procFDs(r.PID()) }

func procRSS(pid int) (uint64, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err == nil
		}
	}
	return 0, false
}

func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(ents)
}

// Signal sends sig to the reader.
func (r *Reader) Signal(sig syscall.Signal) {
	r.tb.Helper()
	if err := r.cmd.Process.Signal(sig); err != nil {
		r.tb.Fatalf("sending %v to the reader: %v", sig, err)
	}
}

// Exited reports whether the process has ended.
func (r *Reader) Exited() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// Wait waits up to d for the reader to exit and returns its exit code (-1 when killed by a signal) and the
// summary it printed (zero when it printed none). It fails the test when the reader is still running at d.
func (r *Reader) Wait(d time.Duration) (int, Summary) {
	r.tb.Helper()
	select {
	case <-r.done:
	case <-time.After(d):
		r.tb.Fatalf("reader still running after %v; stderr:\n%s", d, tail(r.Stderr(), 30))
	}
	code := 0
	var ee *exec.ExitError
	if errors.As(r.waitErr, &ee) {
		code = ee.ExitCode()
	} else if r.waitErr != nil {
		r.tb.Fatalf("waiting for reader: %v", r.waitErr)
	}
	s, _ := r.Summary()
	return code, s
}

// Summary parses the last line of stdout.
func (r *Reader) Summary() (Summary, error) {
	var s Summary
	out := bytes.TrimSpace(r.Stdout())
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if len(out) == 0 {
		return s, errors.New("reader printed no summary")
	}
	if err := json.Unmarshal(out, &s); err != nil {
		return s, fmt.Errorf("parsing summary %q: %w", out, err)
	}
	return s, nil
}

// Stdout returns what the reader wrote to stdout so far.
func (r *Reader) Stdout() []byte { b, _ := os.ReadFile(r.StdoutPath); return b }

// Stderr returns what the reader wrote to stderr (its JSON logs) so far.
func (r *Reader) Stderr() []byte { b, _ := os.ReadFile(r.StderrPath); return b }

// LogLines returns the reader's JSON log records whose msg contains substr.
func (r *Reader) LogLines(substr string) []map[string]any {
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(r.Stderr()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var rec map[string]any
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		if msg, _ := rec["msg"].(string); strings.Contains(msg, substr) {
			out = append(out, rec)
		}
	}
	return out
}

// WaitReady polls /readyz until it answers 200 or d passes.
func (r *Reader) WaitReady(d time.Duration) {
	r.tb.Helper()
	deadline := time.Now().Add(d)
	for {
		if r.Exited() {
			r.tb.Fatalf("reader exited before it was ready; stderr:\n%s", tail(r.Stderr(), 30))
		}
		if code, _, err := httpGet(r.MetricsAddr, "/readyz"); err == nil && code == http.StatusOK {
			return
		}
		if time.Now().After(deadline) {
			r.tb.Fatalf("reader not ready after %v; stderr:\n%s", d, tail(r.Stderr(), 30))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Metrics scrapes /metrics; the keys are series as written ("name" or "name{labels}").
func (r *Reader) Metrics() (map[string]float64, error) {
	code, body, err := httpGet(r.MetricsAddr, "/metrics")
	if err != nil {
		return nil, err
	}
	if code != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %d", code)
	}
	return ParseMetrics(body), nil
}

// MetricsText returns the raw /metrics page.
func (r *Reader) MetricsText() (string, error) {
	_, body, err := httpGet(r.MetricsAddr, "/metrics")
	return string(body), err
}

// ParseMetrics reads the Prometheus text format's samples.
func ParseMetrics(body []byte) map[string]float64 {
	out := make(map[string]float64)
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func httpGet(addr, path string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		return 0, nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// FreeAddr returns a loopback address with a port nothing listens on right now.
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("finding a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func dialTimeout(addr string, d time.Duration) (net.Conn, error) {
	return net.DialTimeout("tcp", addr, d)
}

func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// HTTPGet fetches path from addr and returns the body, whatever the status.
func HTTPGet(addr, path string) ([]byte, error) {
	_, b, err := httpGet(addr, path)
	return b, err
}
