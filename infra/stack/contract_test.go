package stack_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"

	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/memlimit"
	"github.com/mwaa-kafka/pipeline/internal/pipeline"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// The contract between the CDK app and the reader: the environment the app gives the reader's container
// (and what the schedule adds for a bounded run) is parsed by the reader's own parser, and every READER_*
// variable names a flag the reader has. A renamed flag or variable, or a value the reader rejects, fails
// here rather than in a task that will not start.

// regionStandIn replaces the deploy-time region token, which only CloudFormation resolves.
const regionStandIn = "us-east-1"

// containerEnv returns the reader container's environment as the template sets it.
func containerEnv(t *testing.T, tmpl assertions.Template) map[string]string {
	t.Helper()
	defs := resources(tmpl, "AWS::ECS::TaskDefinition")
	if len(defs) != 1 {
		t.Fatalf("%d task definitions, want 1", len(defs))
	}
	env := map[string]string{}
	for _, td := range defs {
		containers, _ := props(td)["ContainerDefinitions"].([]any)
		for _, c := range containers {
			cd, _ := c.(map[string]any)
			if cd["Name"] != stack.ContainerName {
				continue
			}
			vars, _ := cd["Environment"].([]any)
			for _, v := range vars {
				kv, _ := v.(map[string]any)
				name, _ := kv["Name"].(string)
				switch value := kv["Value"].(type) {
				case string:
					env[name] = value
				default: // a token such as {"Ref": "AWS::Region"}
					if fmt.Sprint(value) != "map[Ref:AWS::Region]" {
						t.Fatalf("%s = %v: a token this test cannot stand in for", name, value)
					}
					env[name] = regionStandIn
				}
			}
		}
	}
	if len(env) == 0 {
		t.Fatalf("the %q container has no environment", stack.ContainerName)
	}
	return env
}

// scheduleOverrides returns the environment the reader schedule's container override adds.
func scheduleOverrides(t *testing.T, tmpl assertions.Template) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, rule := range resources(tmpl, "AWS::Events::Rule") {
		targets, _ := props(rule)["Targets"].([]any)
		for _, tg := range targets {
			target, _ := tg.(map[string]any)
			input, ok := target["Input"].(string)
			if !ok || target["EcsParameters"] == nil {
				continue
			}
			var in struct {
				ContainerOverrides []struct {
					Name        string `json:"name"`
					Environment []struct {
						Name  string `json:"name"`
						Value string `json:"value"`
					} `json:"environment"`
				} `json:"containerOverrides"`
			}
			if err := json.Unmarshal([]byte(input), &in); err != nil {
				t.Fatalf("schedule input %q: %v", input, err)
			}
			for _, o := range in.ContainerOverrides {
				if o.Name != stack.ContainerName {
					t.Errorf("the schedule overrides container %q, want %q", o.Name, stack.ContainerName)
				}
				for _, e := range o.Environment {
					env[e.Name] = e.Value
				}
			}
		}
	}
	return env
}

// parseAsReader feeds env to the reader's parser, after checking that every READER_* variable is one the
// reader reads.
func parseAsReader(t *testing.T, env map[string]string) pipeline.Config {
	t.Helper()
	known := pipeline.EnvNames()
	var unknown []string
	for name := range env {
		if strings.HasPrefix(name, readerspec.EnvPrefix) && !known[name] {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		t.Fatalf("the stack sets %v, which the reader does not read (no such flag)", unknown)
	}
	cfg, err := pipeline.ParseConfig(nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("the reader rejects the environment the stack gives it: %v\nenvironment: %v", err, env)
	}
	return cfg
}

func TestReaderContract(t *testing.T) {
	tests := []struct {
		name    string
		context map[string]any
		check   func(t *testing.T, cfg pipeline.Config)
	}{
		{name: "service, connect mode", check: func(t *testing.T, cfg pipeline.Config) {
			if cfg.Source.Mode != tcpin.Connect || cfg.Source.Addr != "logs.example.internal:5170" {
				t.Errorf("source = %v %s, want connect logs.example.internal:5170", cfg.Source.Mode, cfg.Source.Addr)
			}
			if cfg.Bounded() {
				t.Errorf("the service's reader is bounded (duration %v, max events %d)", cfg.Duration, cfg.MaxEvents)
			}
		}},
		{name: "listen mode", context: map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "loadBalancer": "true"},
			check: func(t *testing.T, cfg pipeline.Config) {
				if cfg.Source.Mode != tcpin.Listen || cfg.Source.Addr != "0.0.0.0:5170" {
					t.Errorf("source = %v %s, want listen 0.0.0.0:5170", cfg.Source.Mode, cfg.Source.Addr)
				}
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, tmpl := synth(t, tt.context)
			env := containerEnv(t, tmpl)
			cfg := parseAsReader(t, env)
			if cfg.Credentials.Region != regionStandIn || cfg.Credentials.SecretName == "" || cfg.Topic == "" || cfg.DLQTopic == "" {
				t.Errorf("credentials %+v, topics %q/%q: want the secret, its region and both topics set", cfg.Credentials, cfg.Topic, cfg.DLQTopic)
			}
			if want := readerspec.MetricsAddr("0.0.0.0"); cfg.MetricsAddr != want {
				t.Errorf("metrics address = %q, want %q (the port ECS and the load balancer probe)", cfg.MetricsAddr, want)
			}
			tt.check(t, cfg)
			assertContainerRunsAsImage(t, tmpl, cfg)
		})
	}

	t.Run("scheduled bounded run", func(t *testing.T) {
		_, tmpl := synth(t, map[string]any{"scheduledReader": "true"})
		env := containerEnv(t, tmpl)
		overrides := scheduleOverrides(t, tmpl)
		if len(overrides) == 0 {
			t.Fatal("the reader schedule sets no environment override")
		}
		for k, v := range overrides {
			env[k] = v
		}
		cfg := parseAsReader(t, env)
		if !cfg.Bounded() || cfg.Duration.String() != "4m0s" {
			t.Errorf("scheduled run: bounded %v, duration %v; want a 4m bounded run", cfg.Bounded(), cfg.Duration)
		}
	})
}

// containerDef returns the reader's container definition as the template sets it.
func containerDef(t *testing.T, tmpl assertions.Template) map[string]any {
	t.Helper()
	for _, td := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		containers, _ := props(td)["ContainerDefinitions"].([]any)
		for _, c := range containers {
			if cd, _ := c.(map[string]any); cd["Name"] == stack.ContainerName {
				return cd
			}
		}
	}
	t.Fatalf("no container %s", stack.ContainerName)
	return nil
}

// dockerfileRuntime reads the runtime stage's USER and HEALTHCHECK command (exec form) of the reader's
// Dockerfile.
func dockerfileRuntime(t *testing.T) (user string, health []string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "tasks/reader/Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		instr, rest, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch instr {
		case "USER":
			user = strings.TrimSpace(rest)
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("HEALTHCHECK %q has no exec-form CMD", rest)
			}
			if err := json.Unmarshal([]byte(strings.TrimSpace(cmd)), &health); err != nil {
				t.Fatalf("HEALTHCHECK CMD %q: %v", cmd, err)
			}
		}
	}
	if user == "" || len(health) == 0 {
		t.Fatalf("Dockerfile: USER %q, HEALTHCHECK %v: want both", user, health)
	}
	return user, health
}

// assertContainerRunsAsImage checks the task definition against the image and the reader: a read-only root
// filesystem (the reader, as configured, writes no file), the image's non-root user, the image's health
// check probing the address and path the reader serves, and a stop timeout that covers the reader's whole shutdown.
func assertContainerRunsAsImage(t *testing.T, tmpl assertions.Template, cfg pipeline.Config) {
	t.Helper()
	cd := containerDef(t, tmpl)
	if cd["ReadonlyRootFilesystem"] != true {
		t.Errorf("ReadonlyRootFilesystem = %v, want true", cd["ReadonlyRootFilesystem"])
	}
	if cfg.DLQFile != "" || cfg.SummaryFile != "" {
		t.Errorf("the reader writes files (dlq file %q, summary file %q) on a read-only root filesystem", cfg.DLQFile, cfg.SummaryFile)
	}
	if mp, _ := cd["MountPoints"].([]any); len(mp) > 0 {
		t.Errorf("mount points %v: the reader needs no writable path", mp)
	}
	user, health := dockerfileRuntime(t)
	if cd["User"] != user || cd["User"] != stack.ReaderUser {
		t.Errorf("container User = %v, Dockerfile USER %q, stack.ReaderUser %q: want all equal", cd["User"], user, stack.ReaderUser)
	}
	if uid, _, _ := strings.Cut(user, ":"); uid == "0" || uid == "root" {
		t.Errorf("the container runs as %q", user)
	}

	hc, _ := cd["HealthCheck"].(map[string]any)
	cmd := strs(hc["Command"])
	if want := append([]string{"CMD"}, health...); !slices.Equal(cmd, want) {
		t.Errorf("health check %v, Dockerfile HEALTHCHECK %v", cmd, want)
	}
	_, port, err := net.SplitHostPort(cfg.MetricsAddr)
	if err != nil {
		t.Fatalf("reader metrics address %q: %v", cfg.MetricsAddr, err)
	}
	if url := "http://127.0.0.1:" + port + readerspec.HealthPath; !slices.Contains(cmd, url) {
		t.Errorf("health check %v does not probe %s, where the reader (--metrics-addr %s) serves health", cmd, url, cfg.MetricsAddr)
	}

	// The reader's whole shutdown (stop read-out, drain, close, summary) ends within its drain timeout
	// (test/chaos TestReaderSIGTERMBrokerDown); 10s of slack keeps SIGKILL from cutting the exit short.
	if stop := stopTimeout(t, tmpl); stop < cfg.DrainTimeout+10*time.Second || stop > 120*time.Second {
		t.Errorf("StopTimeout %s, reader drain timeout %s: want drain + 10s <= stop timeout <= 120s (Fargate's limit)", stop, cfg.DrainTimeout)
	}
}

// TestReaderMemoryLimitContract: the task definition gives the reader GOMEMLIMIT, and it is the limit the
// reader would set itself from a cgroup of the task's memory: the two cannot drift apart.
func TestReaderMemoryLimitContract(t *testing.T) {
	_, tmpl := synth(t, nil)
	env := containerEnv(t, tmpl)
	var memMiB int
	for _, td := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		fmt.Sscan(fmt.Sprint(props(td)["Memory"]), &memMiB)
	}
	if memMiB != readerspec.TaskMemoryMiB {
		t.Errorf("task memory = %d MiB, want readerspec.TaskMemoryMiB %d", memMiB, readerspec.TaskMemoryMiB)
	}
	got, ok := env["GOMEMLIMIT"]
	if !ok {
		t.Fatalf("the reader's container has no GOMEMLIMIT: the Go heap may grow past the task's %d MiB", memMiB)
	}
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte(fmt.Sprint(int64(memMiB)<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	mem, err := memlimit.FromCgroup(root)
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprint(readerspec.GoMemLimit(mem)); got != want {
		t.Errorf("GOMEMLIMIT = %s, want %s: what the reader sets from a %d MiB cgroup", got, want, memMiB)
	}
}

// The metric contract: the reader writes its EMF records, and the health Lambda its own, under one identity
// (namespace and Service dimension) per deployment, which is the one the health Lambda reads the reader's
// metrics under and the one every alarm and graph of the stack watches. The environment is part of it, so
// that two environments in one account never alarm on each other's metrics.

// metricIdentity is a namespace and a Service dimension.
type metricIdentity struct{ Namespace, Service string }

// healthEnv returns the health Lambda's environment as the template sets it, with stand-ins for tokens.
func healthEnv(t *testing.T, tmpl assertions.Template) map[string]string {
	t.Helper()
	for _, fn := range resources(tmpl, "AWS::Lambda::Function") {
		env, _ := props(fn)["Environment"].(map[string]any)
		vars, _ := env["Variables"].(map[string]any)
		if _, ok := vars["HEALTH_SECRET_NAME"]; !ok {
			continue
		}
		out := map[string]string{}
		for k, v := range vars {
			if s, ok := v.(string); ok {
				out[k] = s
			} else {
				out[k] = "token-stand-in" // a cluster or service name, resolved at deploy time
			}
		}
		return out
	}
	t.Fatal("no health Lambda (a function with HEALTH_SECRET_NAME)")
	return nil
}

// alarmMetricIdentities returns, per alarm, the identity of each of its metrics in the pipeline's namespace.
func alarmMetricIdentities(tmpl assertions.Template) map[string][]metricIdentity {
	out := map[string][]metricIdentity{}
	add := func(alarm string, m map[string]any) {
		if m["Namespace"] != stack.MetricsNamespace {
			return
		}
		id := metricIdentity{Namespace: stack.MetricsNamespace}
		dims, _ := m["Dimensions"].([]any)
		for _, d := range dims {
			if d := d.(map[string]any); d["Name"] == cwmetric.DimService {
				id.Service = fmt.Sprint(d["Value"])
			}
		}
		out[alarm] = append(out[alarm], id)
	}
	for id, a := range resources(tmpl, "AWS::CloudWatch::Alarm") {
		pr := props(a)
		add(id, pr)
		metrics, _ := pr["Metrics"].([]any)
		for _, m := range metrics {
			if ms, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
				add(id, ms["Metric"].(map[string]any))
			}
		}
	}
	return out
}

// dashboardMetric matches a metric of the dashboard body: ["namespace","name","Service","value",...
var dashboardMetric = regexp.MustCompile(`\["([^"]+)","([^"]+)","Service","([^"]+)"`)

// dashboardIdentities returns the identity of each metric the dashboard graphs in the pipeline's namespace.
func dashboardIdentities(t *testing.T, tmpl assertions.Template) []metricIdentity {
	t.Helper()
	var body strings.Builder
	for _, d := range resources(tmpl, "AWS::CloudWatch::Dashboard") {
		switch b := props(d)["DashboardBody"].(type) {
		case string:
			body.WriteString(b)
		case map[string]any: // {"Fn::Join": ["", [parts...]]}: the literal parts hold the metrics
			join, _ := b["Fn::Join"].([]any)
			if len(join) == 2 {
				parts, _ := join[1].([]any)
				for _, p := range parts {
					if s, ok := p.(string); ok {
						body.WriteString(s)
					} else {
						body.WriteString("TOKEN")
					}
				}
			}
		}
	}
	var out []metricIdentity
	for _, m := range dashboardMetric.FindAllStringSubmatch(body.String(), -1) {
		if m[1] == stack.MetricsNamespace {
			out = append(out, metricIdentity{Namespace: m[1], Service: m[3]})
		}
	}
	if len(out) == 0 {
		t.Fatalf("the dashboard graphs no metric of namespace %s", stack.MetricsNamespace)
	}
	return out
}

func TestMetricIdentityContract(t *testing.T) {
	services := map[string]string{} // Service → environment
	for _, env := range []string{"", "staging", "production"} {
		t.Run("env="+env, func(t *testing.T) {
			_, tmpl := synth(t, map[string]any{"env": env})
			reader := parseAsReader(t, containerEnv(t, tmpl))
			if reader.Ops.EMFInterval <= 0 {
				t.Fatalf("the reader writes no EMF records (interval %v)", reader.Ops.EMFInterval)
			}
			want := metricIdentity{Namespace: reader.Ops.EMFNamespace, Service: reader.Ops.EMFService}
			if want.Service != cwmetric.ServiceFor(env) {
				t.Errorf("the reader's Service dimension = %q, want %q: the environment is part of the metric identity",
					want.Service, cwmetric.ServiceFor(env))
			}
			if other, ok := services[want.Service]; ok {
				t.Errorf("environments %q and %q share the metric identity %+v", other, env, want)
			}
			services[want.Service] = env

			hc, err := health.FromEnv(func(k string) string { return healthEnv(t, tmpl)[k] })
			if err != nil {
				t.Fatalf("the health Lambda rejects the environment the stack gives it: %v", err)
			}
			if got := (metricIdentity{hc.Namespace, hc.Service}); got != want {
				t.Errorf("the health Lambda writes its metrics as %+v, the reader as %+v", got, want)
			}
			if got := (metricIdentity{hc.Namespace, hc.ReaderService}); got != want {
				t.Errorf("the health Lambda reads the reader's metrics as %+v, the reader writes them as %+v", got, want)
			}
			alarms := alarmMetricIdentities(tmpl)
			if len(alarms) == 0 {
				t.Fatal("no alarm watches the pipeline's own metrics")
			}
			for alarm, ids := range alarms {
				for _, id := range ids {
					if id != want {
						t.Errorf("alarm %s watches %+v, the reader and the health Lambda write %+v", alarm, id, want)
					}
				}
			}
			for _, id := range dashboardIdentities(t, tmpl) {
				if id != want {
					t.Errorf("the dashboard graphs %+v, the reader and the health Lambda write %+v", id, want)
				}
			}
		})
	}
}
