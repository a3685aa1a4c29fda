//go:build readerimage

package main

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// The reader's image run as the synthesized task definition says, against the local stack: dev/image.sh
// builds the image (READER_IMAGE) and synthesizes the app (CDK_OUT), then runs this test.
//
// What the task definition gives the container is used as it is: the environment, the user, the read-only
// root filesystem, the health check command and the stop timeout. Only what cannot be the same here is
// replaced, each for the reason given in imageOverrides.

const imageEvents = 20000

// containerDefinition is the part of the template's reader container this test runs by.
type containerDefinition struct {
	Name        string
	Environment []struct {
		Name  string
		Value any
	}
	Secrets                []any
	User                   string
	ReadonlyRootFilesystem bool
	StopTimeout            float64
	HealthCheck            struct {
		Command     []string
		StartPeriod float64
		Timeout     float64
	}
}

// readContainerDefinition finds the one task definition in the cloud assembly's templates and returns its
// reader container and the template's parameters with their defaults (nil for none).
func readContainerDefinition(t *testing.T, cdkOut string) (containerDefinition, map[string]any) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(cdkOut, "*.template.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no templates in %s (%v): synthesize first (dev/cdk.sh synth)", cdkOut, err)
	}
	var found []containerDefinition
	params := map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var tmpl struct {
			Parameters map[string]struct{ Default any }
			Resources  map[string]struct {
				Type       string
				Properties struct{ ContainerDefinitions []containerDefinition }
			}
		}
		if err := json.Unmarshal(b, &tmpl); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		n := len(found)
		for _, r := range tmpl.Resources {
			if r.Type != "AWS::ECS::TaskDefinition" {
				continue
			}
			for _, c := range r.Properties.ContainerDefinitions {
				if c.Name == "reader" {
					found = append(found, c)
				}
			}
		}
		if len(found) > n {
			for name, p := range tmpl.Parameters {
				params[name] = p.Default
			}
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d reader containers in the templates of %s, want 1", len(found), cdkOut)
	}
	return found[0], params
}

// taskEnv returns the container's environment as CloudFormation resolves it: the region token is region, a
// reference to a parameter is its default; the variables that take a parameter without a default (given at
// deploy time) are returned in deployTime, for the test to set.
func taskEnv(t *testing.T, cd containerDefinition, params map[string]any, region string) (env map[string]string, deployTime []string) {
	t.Helper()
	env = map[string]string{}
	for _, e := range cd.Environment {
		switch v := e.Value.(type) {
		case string:
			env[e.Name] = v
		case map[string]any:
			ref, _ := v["Ref"].(string)
			def, isParam := params[ref]
			switch {
			case len(v) == 1 && ref == "AWS::Region":
				env[e.Name] = region
			case len(v) == 1 && isParam && def == nil:
				deployTime = append(deployTime, e.Name)
			case len(v) == 1 && isParam:
				env[e.Name] = fmt.Sprint(def)
			default:
				t.Fatalf("%s = %v: a token this test cannot stand in for", e.Name, v)
			}
		default:
			t.Fatalf("%s = %v: want a string or a reference", e.Name, v)
		}
	}
	return env, deployTime
}

// imageOverrides are the variables set here that differ from the task definition, with the reason for
// each: the container runs on this machine's network, against the local stack.
func imageOverrides(st *stacktest.Stack, t *testing.T, sourceAddr, topic, dlq, caPath string) map[string][2]string {
	return map[string][2]string{
		"READER_SOURCE_ADDR": {sourceAddr, "the template's source is a placeholder host; the log source listens here"},
		"READER_TOPIC":       {topic, "a fresh topic, so runs sharing the broker do not count each other's events"},
		"READER_DLQ_TOPIC":   {dlq, "the fresh topic's dead-letter topic"},
		"READER_CA_FILE":     {caPath, "the local broker's certificate is signed by the stack's own CA (mounted read-only)"},
		// The task role's credentials (ECS serves them from its credentials endpoint) and the Secrets Manager
		// endpoint: the emulator's keys, which it authorizes, and its address.
		"AWS_ACCESS_KEY_ID":                {st.Get(t, "AWS_ACCESS_KEY_ID"), "the task role's credentials"},
		"AWS_SECRET_ACCESS_KEY":            {st.Get(t, "AWS_SECRET_ACCESS_KEY"), "the task role's credentials"},
		"AWS_ENDPOINT_URL_SECRETS_MANAGER": {st.Get(t, "AWS_ENDPOINT_URL_SECRETS_MANAGER"), "Secrets Manager is the emulator"},
	}
}

// podman runs podman and returns its stdout; a failure fails the test with stderr.
func podman(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("podman", args...)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String()
}

func TestImageRunsAsTheTaskDefinition(t *testing.T) {
	image, cdkOut := os.Getenv("READER_IMAGE"), os.Getenv("CDK_OUT")
	if image == "" || cdkOut == "" {
		t.Fatal("READER_IMAGE and CDK_OUT are unset: dev/image.sh builds the image, synthesizes and runs this test")
	}
	st := stacktest.Load(t)
	root := stacktest.RepoRoot(t)
	cd, params := readContainerDefinition(t, cdkOut)
	env, deployTime := taskEnv(t, cd, params, st.Get(t, "AWS_REGION"))
	if len(cd.Secrets) > 0 {
		t.Fatalf("the task definition takes %d variables from secrets, which this test does not feed", len(cd.Secrets))
	}
	if env["READER_SOURCE_MODE"] != "connect" {
		t.Fatalf("READER_SOURCE_MODE = %q: this test serves the source the default (connect) stack dials", env["READER_SOURCE_MODE"])
	}
	if env["READER_CREDENTIALS"] != "secretsmanager" || env["READER_SECRET_NAME"] != st.Get(t, "SECRET_NAME") {
		t.Fatalf("credentials %q from secret %q, want secretsmanager and the stack's secret %q",
			env["READER_CREDENTIALS"], env["READER_SECRET_NAME"], st.Get(t, "SECRET_NAME"))
	}
	if !cd.ReadonlyRootFilesystem || cd.User == "" || len(cd.HealthCheck.Command) < 2 || cd.HealthCheck.Command[0] != "CMD" || cd.StopTimeout <= 0 {
		t.Fatalf("task definition: read-only %v, user %q, health check %v, stop timeout %v: want all set, exec form",
			cd.ReadonlyRootFilesystem, cd.User, cd.HealthCheck.Command, cd.StopTimeout)
	}
	stopTimeout := time.Duration(cd.StopTimeout) * time.Second

	// The image's binary is the Dockerfile's build: go.mod's toolchain, cgo on, the same flags.
	assertImageBinary(t, root, image)

	// The reader serves health on the task definition's port on this machine's network: it must be free.
	_, metricsPort, err := net.SplitHostPort(env["READER_METRICS_ADDR"])
	if err != nil || metricsPort != strconv.Itoa(readerspec.MetricsPort) {
		t.Fatalf("READER_METRICS_ADDR %q, want port %d", env["READER_METRICS_ADDR"], readerspec.MetricsPort)
	}
	if ln, err := net.Listen("tcp", "127.0.0.1:"+metricsPort); err != nil {
		t.Fatalf("port %s is taken on this machine, and the container shares its network: %v", metricsPort, err)
	} else {
		ln.Close()
	}

	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "image", 3)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	type served struct {
		stats logsource.Stats
		err   error
	}
	sourceDone := make(chan served, 1)
	go func() {
		s, err := logsource.Serve(ctx, ln, logsource.Config{Count: imageEvents, Seed: 23, FirstID: 1})
		sourceDone <- served{s, err}
	}()

	const caPath = "/etc/reader/kafka-ca.pem"
	overrides := imageOverrides(st, t, ln.Addr().String(), topic, dlq, caPath)
	names := make([]string, 0, len(overrides))
	for k, v := range overrides {
		env[k] = v[0]
		names = append(names, k)
	}
	sort.Strings(names)
	for _, v := range deployTime {
		if _, ok := overrides[v]; !ok {
			t.Fatalf("%s takes a template parameter without a default, which this test does not set", v)
		}
	}
	t.Logf("the task definition's environment, with %v set here (see imageOverrides)", names)
	// An env file, not -e flags: the secret access key stays off the command line.
	envFile := filepath.Join(t.TempDir(), "reader.env")
	var lines []string
	for k, v := range env {
		lines = append(lines, k+"="+v)
	}
	sort.Strings(lines)
	if err := os.WriteFile(envFile, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	health, _ := json.Marshal(cd.HealthCheck.Command[1:])
	name := fmt.Sprintf("reader-image-%d", os.Getpid())
	args := []string{
		// runc: crun refuses cgroup v1 and v2 mounted together, as on this machine; runc runs on either.
		"--runtime", "runc", "run", "-d", "--name", name, "--network", "host",
		"--read-only", "--user", cd.User, "--env-file", envFile,
		"-v", st.Get(t, "KAFKA_CA_FILE") + ":" + caPath + ":ro",
		"--stop-timeout", strconv.Itoa(int(cd.StopTimeout)),
		// The task definition's health check, run on demand below rather than by a timer.
		"--health-cmd", string(health), "--health-interval", "disable",
	}
	args = append(args, ulimits(t)...)
	args = append(args, image)
	podman(t, args...)
	t.Cleanup(func() { _ = exec.Command("podman", "rm", "-f", "-t", "0", name).Run() })
	t.Logf("podman %s", strings.Join(args, " "))

	// The health check command, inside the container, passes within the task definition's start period.
	start := time.Now()
	startPeriod := time.Duration(cd.HealthCheck.StartPeriod) * time.Second
	for {
		out, err := exec.Command("podman", "healthcheck", "run", name).CombinedOutput()
		if err == nil {
			t.Logf("health check %v passed inside the container after %v", cd.HealthCheck.Command[1:], time.Since(start).Round(time.Millisecond))
			break
		}
		if time.Since(start) > startPeriod {
			t.Fatalf("health check %v still failing after the start period %v: %v %s\nlogs:\n%s",
				cd.HealthCheck.Command[1:], startPeriod, err, out, containerLogs(name))
		}
		time.Sleep(500 * time.Millisecond)
	}
	if s := strings.TrimSpace(podman(t, "inspect", "--format", "{{.State.Health.Status}}", name)); s != "healthy" {
		t.Fatalf("container health %q after the check passed, want healthy", s)
	}

	// The log source's events, every one in the topic once.
	var src served
	select {
	case src = <-sourceDone:
	case <-ctx.Done():
		t.Fatalf("the log source did not finish: %v\nlogs:\n%s", ctx.Err(), containerLogs(name))
	}
	if src.err != nil || src.stats.Sent != imageEvents {
		t.Fatalf("log source: sent %d of %d: %v", src.stats.Sent, imageEvents, src.err)
	}
	records := kafkatest.ReadAll(t, bootstrap, topic, imageEvents, 2*time.Minute)
	ids := map[uint32]int{}
	for _, r := range records {
		var e struct{ EventID uint32 }
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		ids[e.EventID]++
	}
	if len(records) != imageEvents || len(ids) != imageEvents || ids[src.stats.FirstEventID] != 1 || ids[src.stats.LastEventID] != 1 {
		t.Fatalf("topic holds %d records, %d distinct eventIds; want %d, each of %d..%d once",
			len(records), len(ids), imageEvents, src.stats.FirstEventID, src.stats.LastEventID)
	}
	t.Logf("%d events sent, %d records in %s, eventIds %d..%d each once", src.stats.Sent, len(records), topic,
		src.stats.FirstEventID, src.stats.LastEventID)
	var dead int
	kafkatest.ReadToEnd(t, bootstrap, dlq, func(kafkatest.Record) { dead++ })
	if dead != 0 {
		t.Errorf("%d records in the dead-letter topic, want 0", dead)
	}

	// A second stream, paced, is still flowing when the stop comes, so the drain has lines in flight. The
	// source listens at the same address again; the reader dials it again by itself.
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	streamCtx, stopStream := context.WithCancel(ctx)
	defer stopStream()
	second := make(chan served, 1)
	go func() {
		s, err := logsource.Serve(streamCtx, ln2, logsource.Config{Seed: 24, FirstID: imageEvents + 1, Rate: 5000})
		second <- served{s, err}
	}()
	const more = 5000
	waitReceived(t, name, "http://127.0.0.1:"+metricsPort+"/metrics", imageEvents+more, time.Minute)

	// SIGTERM (podman stop, as ECS stops a task): the reader stops reading, drains what it has read and exits
	// 0 with its summary inside the stop timeout. An exit by SIGKILL at the timeout would be 137.
	if r := strings.TrimSpace(podman(t, "inspect", "--format", "{{.State.Running}}", name)); r != "true" {
		t.Fatalf("the reader is not running before the stop (running %s):\n%s", r, containerLogs(name))
	}
	stopStart := time.Now()
	podman(t, "stop", "-t", strconv.Itoa(int(cd.StopTimeout)), name)
	drain := time.Since(stopStart)
	stopStream()
	src2 := <-second
	state := strings.Fields(podman(t, "inspect", "--format", "{{.State.ExitCode}} {{.State.OOMKilled}}", name))
	stdout, stderr := containerOutput(t, name)
	logs := stdout + stderr
	if len(state) != 2 || state[0] != "0" || state[1] != "false" {
		t.Fatalf("after SIGTERM: exit code, OOM-killed %v, want 0 false\nlogs:\n%s", state, logs)
	}
	if drain >= stopTimeout {
		t.Fatalf("the reader took %v to stop, the stop timeout is %v", drain, stopTimeout)
	}
	drainLog, finishLog := logTime(logs, "draining"), logTime(logs, "reader finished")
	if drainLog.IsZero() || finishLog.IsZero() {
		t.Errorf("the reader's log does not show the drain and the finish after SIGTERM:\n%s", logs)
	}
	sum := summaryLine(t, logs)
	if sum.Received < imageEvents+more || sum.Delivered != sum.Received || sum.DeadLettered != 0 || sum.Failed != 0 || sum.InFlight != 0 || sum.Error != "" {
		t.Fatalf("summary %+v, want at least %d received, every one delivered, nothing else", sum, imageEvents+more)
	}

	// Everything the reader took in is in the topic once: the first stream and what it read of the second.
	records = kafkatest.ReadAll(t, bootstrap, topic, int(sum.Delivered), 2*time.Minute)
	ids = map[uint32]int{}
	for _, r := range records {
		var e struct{ EventID uint32 }
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatalf("record %s: %v", r.Value, err)
		}
		if e.EventID < 1 || e.EventID > src2.stats.LastEventID {
			t.Fatalf("eventId %d in the topic, the sources sent 1..%d", e.EventID, src2.stats.LastEventID)
		}
		ids[e.EventID]++
	}
	if uint64(len(records)) != sum.Delivered || uint64(len(ids)) != sum.Delivered {
		t.Fatalf("topic holds %d records, %d distinct eventIds; the summary says %d delivered", len(records), len(ids), sum.Delivered)
	}
	t.Logf("SIGTERM during a stream (%d more sent): podman stop returned after %v (stop timeout %v); the reader logged its drain to its finish in %v; summary %+v; %d records in the topic, each once",
		src2.stats.Sent, drain.Round(time.Millisecond), stopTimeout, finishLog.Sub(drainLog).Round(time.Millisecond), sum, len(records))
}

// waitReceived polls the reader's metrics until it has received want lines.
func waitReceived(t *testing.T, name, url string, want uint64, timeout time.Duration) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^\w*lines_received_total (\S+)$`)
	var got float64
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if m := re.FindSubmatch(b); m != nil {
			got, _ = strconv.ParseFloat(string(m[1]), 64)
			if uint64(got) >= want {
				return
			}
		}
	}
	t.Fatalf("the reader received %v lines within %v, want %d\nlogs:\n%s", got, timeout, want, containerLogs(name))
}

// logTime returns the time of the reader's first log line with msg, or the zero time.
func logTime(logs, msg string) time.Time {
	for _, line := range strings.Split(logs, "\n") {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(line), &l) == nil && l.Msg == msg {
			return l.Time
		}
	}
	return time.Time{}
}

// ulimits sets the open-file limit ECS gives a Fargate task (65535), or this machine's hard limit where that
// is lower, and a process limit under the machine's: podman's defaults raise limits, which a container
// engine without CAP_SYS_RESOURCE may not.
func ulimits(t *testing.T) []string {
	t.Helper()
	var nofile, nproc syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &nofile); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Getrlimit(6 /* RLIMIT_NPROC */, &nproc); err != nil {
		t.Fatal(err)
	}
	n := min(uint64(65535), nofile.Max)
	p := min(uint64(4096), nproc.Max/2)
	return []string{"--ulimit", fmt.Sprintf("nofile=%d:%d", n, n), "--ulimit", fmt.Sprintf("nproc=%d:%d", p, p)}
}

// containerOutput returns the container's stdout and stderr.
func containerOutput(t *testing.T, name string) (string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := exec.Command("podman", "logs", name)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("podman logs %s: %v", name, err)
	}
	return out.String(), errb.String()
}

func containerLogs(name string) string {
	b, _ := exec.Command("podman", "logs", "--tail", "40", name).CombinedOutput()
	return string(b)
}

type imageSummary struct {
	Received     uint64 `json:"received"`
	Delivered    uint64 `json:"delivered"`
	DeadLettered uint64 `json:"dead_lettered"`
	Failed       uint64 `json:"failed"`
	InFlight     uint64 `json:"in_flight"`
	Error        string `json:"error"`
}

// summaryLine finds the reader's summary on stdout, among the EMF records (and the log lines, where podman
// hands both streams back as one): the last line with "received" that is neither.
func summaryLine(t *testing.T, stdout string) imageSummary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		var raw map[string]json.RawMessage
		if json.Unmarshal([]byte(lines[i]), &raw) != nil || raw["received"] == nil || raw["_aws"] != nil || raw["msg"] != nil {
			continue
		}
		var s imageSummary
		if err := json.Unmarshal([]byte(lines[i]), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	t.Fatalf("no summary on the reader's stdout:\n%s", stdout)
	return imageSummary{}
}

// assertImageBinary copies the reader out of the image and checks its build information against the
// Dockerfile: go.mod's toolchain, cgo on, and the Dockerfile's flags.
func assertImageBinary(t *testing.T, root, image string) {
	t.Helper()
	d := readDockerfile(t, filepath.Join(root, "tasks/reader/Dockerfile"))
	ctr := strings.TrimSpace(podman(t, "create", image))
	defer exec.Command("podman", "rm", ctr).Run()
	bin := filepath.Join(t.TempDir(), "reader")
	podman(t, "cp", ctr+":/usr/local/bin/reader", bin)
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		t.Fatalf("the image's reader: %v", err)
	}
	settings := map[string]string{}
	for _, s := range info.Settings {
		settings[s.Key] = s.Value
	}
	tag := strings.TrimPrefix(d.buildImage, "golang:")
	if v, _, _ := strings.Cut(tag, "-"); info.GoVersion != "go"+v {
		t.Errorf("the image's reader was built by %s, the Dockerfile's by %s", info.GoVersion, d.buildImage)
	}
	tags, _ := d.build.flag("tags")
	want := map[string]string{"CGO_ENABLED": d.buildEnv["CGO_ENABLED"], "-trimpath": "true", "-tags": tags}
	for k, v := range want {
		if settings[k] != v {
			t.Errorf("the image's reader has %s=%q, the Dockerfile's build %q", k, settings[k], v)
		}
	}
	// With -trimpath the go command does not record -ldflags (they may hold paths), so the stripping they
	// ask for is read from the binary: -s drops the symbol table, -w the DWARF sections.
	ldflags, _ := d.build.flag("ldflags")
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var symtab, dwarf bool
	for _, sec := range f.Sections {
		symtab = symtab || sec.Name == ".symtab"
		dwarf = dwarf || strings.HasPrefix(sec.Name, ".debug_") || strings.HasPrefix(sec.Name, ".zdebug_")
	}
	fl := strings.Fields(ldflags)
	if slices.Contains(fl, "-s") == symtab || slices.Contains(fl, "-w") == dwarf {
		t.Errorf("the image's reader has a symbol table %v, DWARF %v; the Dockerfile links with -ldflags %q", symtab, dwarf, ldflags)
	}
	if !regexp.MustCompile(`^go1\.`).MatchString(info.GoVersion) || !slices.Contains([]string{"amd64", "arm64"}, settings["GOARCH"]) {
		t.Errorf("the image's reader: Go %s, GOARCH %q", info.GoVersion, settings["GOARCH"])
	}
	t.Logf("the image's reader: %s, CGO_ENABLED=%s -trimpath=%s -tags=%q, symbol table %v, DWARF %v", info.GoVersion,
		settings["CGO_ENABLED"], settings["-trimpath"], settings["-tags"], symtab, dwarf)
}
