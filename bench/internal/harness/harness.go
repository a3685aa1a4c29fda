// Package harness runs the side-by-side benchmark: it installs the peers (dev/bench-peers.sh), builds our
// reader and the log source, starts its own local stack (dev/stack.sh with its own directory and ports, since
// the stall phase pauses the broker), runs every phase, and writes the table, the JSON file, the chart and,
// when asked, the results README.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
	"github.com/mwaa-kafka/pipeline/bench/internal/topiccheck"
	"github.com/mwaa-kafka/pipeline/internal/certtest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

type binaries struct{ reader, logsource, otelcol string }

type harness struct {
	cfg    Config
	root   string
	runDir string
	bins   binaries
	peers  map[string]string
	stack  *stack
	stderr io.Writer
	t0     time.Time

	digestMu sync.Mutex
	digests  map[uint64]uint64

	tls tlsFiles // the TLS contender's certificates
}

// tlsFiles are the certificates of the TLS contender: the source serves cert/key, the reader trusts ca.
type tlsFiles struct{ ca, cert, key string }

// issueTLS issues a CA and a loopback server certificate for the TLS contender, under dir.
func issueTLS(dir string) (tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return tlsFiles{}, fmt.Errorf("creating %s: %w", dir, err)
	}
	ca, err := certtest.NewCA(dir, "bench")
	if err != nil {
		return tlsFiles{}, err
	}
	p, err := ca.Issue("source", certtest.Options{CommonName: "logsource", Server: true})
	if err != nil {
		return tlsFiles{}, err
	}
	return tlsFiles{ca: ca.CertFile, cert: p.CertFile, key: p.KeyFile}, nil
}

func (h *harness) log(format string, a ...any) {
	fmt.Fprintf(h.stderr, "bench %6.1fs  %s\n", time.Since(h.t0).Seconds(), fmt.Sprintf(format, a...))
}

func (h *harness) expect(count uint64) topiccheck.Expect {
	return topiccheck.Expect{Seed: h.cfg.Seed, FirstID: 1, Start: h.cfg.Start, Count: count}
}

// digest returns the expected lines' digest for a stream of count events, computing it once.
func (h *harness) digest(count uint64) uint64 {
	h.digestMu.Lock()
	defer h.digestMu.Unlock()
	if d, ok := h.digests[count]; ok {
		return d
	}
	d := h.expect(count).Digest()
	h.digests[count] = d
	return d
}

// Run runs the benchmark and prints the table to stdout. It returns an error wrapping ErrCorrectness when a
// correctness target is missed (never for speed), and ErrSetup when the benchmark could not run.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (report.Results, error) {
	root, err := repoRoot()
	if err != nil {
		return report.Results{}, err
	}
	h := &harness{cfg: cfg, root: root, stderr: stderr, t0: time.Now(), digests: map[uint64]uint64{}}
	h.runDir = filepath.Join(root, ".cache", "bench", "run")
	if err := os.RemoveAll(h.runDir); err != nil {
		return report.Results{}, fmt.Errorf("clearing %s: %w", h.runDir, err)
	}
	if err := os.MkdirAll(h.runDir, 0o755); err != nil {
		return report.Results{}, fmt.Errorf("creating %s: %w", h.runDir, err)
	}
	res := report.Results{When: time.Now(), Quick: cfg.Quick, Events: cfg.Events, Rounds: cfg.Rounds}
	res.Machine = machine()
	if h.tls, err = issueTLS(filepath.Join(h.runDir, "tls")); err != nil {
		return res, fmt.Errorf("%w: issuing the TLS contender's certificates: %w", ErrSetup, err)
	}

	if cfg.needsPeers() {
		h.log("peers: dev/bench-peers.sh")
		if h.peers, err = h.installPeers(ctx); err != nil {
			return res, err
		}
	}
	h.log("building tasks/reader and tasks/logsource")
	if err := h.build(ctx); err != nil {
		return res, err
	}
	// The bound starts once the setup is done: a first build of the collector on a fresh machine takes
	// minutes that say nothing about the run.
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	// The expected digest of the main stream is computed while the stack starts.
	go h.digest(cfg.Events)
	h.stack = newStack(root, cfg.PortBase)
	stackLog := filepath.Join(h.runDir, "stack.log")
	h.log("starting the benchmark's own stack (%s, Kafka on 127.0.0.1:%d)", h.stack.dir, cfg.PortBase)
	if err := h.stack.up(ctx, stackLog); err != nil {
		return res, err
	}
	if !cfg.KeepStack {
		defer func() {
			h.log("stopping the benchmark's stack")
			dctx, dcancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
			defer dcancel()
			_ = h.stack.pause(false) // never leave a paused broker behind
			if err := h.stack.down(dctx, stackLog); err != nil {
				h.log("warning: %v", err)
			}
		}()
	}
	res.Machine.Kafka = "Kafka " + h.stack.vars["KAFKA_VERSION"]
	res.Machine.Peers = h.peerVersions(ctx)

	var errs []error
	if res.Throughput, err = h.throughput(ctx); err != nil {
		errs = append(errs, err)
	}
	if ctx.Err() == nil && len(cfg.StallContenders) > 0 {
		if res.Stall, err = h.stall(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil && len(cfg.LatencyContenders) > 0 {
		if res.Latency, err = h.latency(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	if ctx.Err() == nil && cfg.Micro {
		res.Micro = h.micro(ctx)
	}
	res.WallSeconds = time.Since(h.t0).Seconds()
	res.CheckTargets()
	report.Table(stdout, res)
	if werr := h.write(res); werr != nil {
		errs = append(errs, werr)
	}
	if fails := h.correctnessFailures(res); len(fails) > 0 {
		errs = append(errs, fmt.Errorf("%w:\n  %s", ErrCorrectness, strings.Join(fails, "\n  ")))
	}
	return res, errors.Join(errs...)
}

// correctnessFailures: our readers must be exact and flat under a stall; in quick mode no contender may
// lose events either (a full run marks a peer that loses events instead of failing).
func (h *harness) correctnessFailures(res report.Results) []string {
	fails := res.CorrectnessFailures()
	if h.cfg.Quick {
		for _, t := range res.Throughput {
			if !t.Ours && (!t.Exact || t.Error != "") {
				fails = append(fails, fmt.Sprintf("%s did not deliver exactly the events sent: %s %s", t.Label, t.Check, t.Error))
			}
		}
	}
	for _, l := range res.Latency {
		if (l.Ours || h.cfg.Quick) && (!l.Exact || l.Error != "") {
			fails = append(fails, fmt.Sprintf("%s (latency run) did not deliver exactly the events sent: %s %s", l.Label, l.Check, l.Error))
		}
	}
	return fails
}

func (h *harness) write(res report.Results) error {
	out := h.cfg.Out
	if !filepath.IsAbs(out) {
		out = filepath.Join(h.root, out)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", out, err)
	}
	if err := report.WriteJSON(filepath.Join(out, "results.json"), res); err != nil {
		return err
	}
	var svg bytes.Buffer
	if err := report.Chart(&svg, res); err != nil {
		return fmt.Errorf("drawing the chart: %w", err)
	}
	if err := os.WriteFile(filepath.Join(out, "chart.svg"), svg.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing the chart: %w", err)
	}
	written := []string{"results.json", "chart.svg"}
	if h.cfg.Readme {
		var md bytes.Buffer
		report.Markdown(&md, res, "make bench")
		if err := os.WriteFile(filepath.Join(out, "README.md"), md.Bytes(), 0o644); err != nil {
			return fmt.Errorf("writing the results README: %w", err)
		}
		written = append(written, "README.md")
	}
	h.log("wrote %s in %s", strings.Join(written, ", "), out)
	return nil
}

func (h *harness) installPeers(ctx context.Context) (map[string]string, error) {
	cmd := exec.CommandContext(ctx, filepath.Join(h.root, "dev", "bench-peers.sh"))
	cmd.Dir = h.root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: dev/bench-peers.sh: %w: %s", ErrSetup, err, strings.TrimSpace(errb.String()))
	}
	vars, err := stacktest.ParseEnv(&out)
	if err != nil {
		return nil, fmt.Errorf("%w: reading what dev/bench-peers.sh printed: %w", ErrSetup, err)
	}
	for _, k := range []string{"BENCH_KCAT", "BENCH_RSYSLOGD", "BENCH_RSYSLOG_MODDIR", "BENCH_SYSLOG_NG", "BENCH_SYSLOG_NG_MODDIR", "BENCH_PEERS_LD_LIBRARY_PATH"} {
		if vars[k] == "" {
			return nil, fmt.Errorf("%w: dev/bench-peers.sh printed no %s", ErrSetup, k)
		}
	}
	return vars, nil
}

// build compiles our two programs into the benchmark's own directory, so a concurrent `make build` cannot
// swap a binary in the middle of a run.
func (h *harness) build(ctx context.Context) error {
	dir := filepath.Join(h.root, ".cache", "bench", "bin")
	pkgs := []string{"./tasks/reader", "./tasks/logsource"}
	if h.cfg.ReaderBin != "" {
		pkgs = pkgs[1:]
	}
	cmd := exec.CommandContext(ctx, "go", append([]string{"build", "-o", dir + "/"}, pkgs...)...)
	cmd.Dir = h.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w: go build %s: %w: %s", ErrSetup, strings.Join(pkgs, " "), err, out)
	}
	h.bins = binaries{reader: filepath.Join(dir, "reader"), logsource: filepath.Join(dir, "logsource")}
	if h.cfg.ReaderBin != "" {
		var err error
		if h.bins.reader, err = filepath.Abs(h.cfg.ReaderBin); err != nil {
			return fmt.Errorf("%w: --reader-bin: %w", ErrInvalidConfig, err)
		}
		if _, err := os.Stat(h.bins.reader); err != nil {
			return fmt.Errorf("%w: --reader-bin: %w", ErrInvalidConfig, err)
		}
	}
	if h.cfg.runs(report.OtelCol) {
		bin, err := h.buildOtelcol(ctx, dir)
		if err != nil {
			return err
		}
		h.bins.otelcol = bin
	}
	return nil
}

func (h *harness) peerVersions(ctx context.Context) []string {
	if h.peers == nil {
		return nil
	}
	// version runs bin and returns the first line of its output that holds want, cut at the first " (" or
	// " compiled" (kcat and rsyslogd follow the version with their feature lists).
	version := func(name, want string, env []string, bin string, args ...string) string {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(os.Environ(), env...)
		out, _ := cmd.CombinedOutput()
		for _, l := range strings.Split(string(out), "\n") {
			if i := strings.Index(l, want); i >= 0 {
				v := strings.TrimSpace(l[i+len(want):])
				for _, cut := range []string{" (", " compiled"} {
					v, _, _ = strings.Cut(v, cut)
				}
				return name + " " + v
			}
		}
		return name + " (version unknown)"
	}
	ld := []string{"LD_LIBRARY_PATH=" + h.peers["BENCH_PEERS_LD_LIBRARY_PATH"]}
	out := []string{
		version("kcat", "Version ", nil, h.peers["BENCH_KCAT"], "-V"),
		version("rsyslog", "rsyslogd ", nil, h.peers["BENCH_RSYSLOGD"], "-v"),
		version("syslog-ng", "Installer-Version: ", ld, h.peers["BENCH_SYSLOG_NG"], "--version"),
	}
	if h.bins.otelcol != "" {
		out = append(out, version("OpenTelemetry Collector", "version ", nil, h.bins.otelcol, "--version")+
			" (contrib's tcplog receiver and Kafka exporter 0.165.1)")
	}
	return out
}

func machine() report.Machine {
	m := report.Machine{Cores: runtime.NumCPU(), GoVersion: runtime.Version()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		f := strings.Fields(string(b))
		if len(f) >= 3 {
			m.LoadAvg = strings.Join(f[:3], " ")
		}
	}
	return m
}

// repoRoot finds the module root (the directory holding go.mod) from the working directory up.
func repoRoot() (string, error) {
	root, err := stacktest.FindRepoRoot()
	if err != nil {
		return "", fmt.Errorf("%w: no go.mod above the working directory; run from the repository: %w", ErrSetup, err)
	}
	return root, nil
}
