//go:build lambdaemulator

// The Lambda functions as AWS runs them: the bootstrap binaries that the synthesized template references
// (read from cdk.out's manifest, template and asset manifest), each started by the AWS Lambda Runtime
// Interface Emulator and invoked over its HTTP API with the events a user sends from the console and the
// event EventBridge's schedule sends, against the local stack.
//
// dev/lambda-emulator.sh runs these after `cdk synth`: it builds the emulator and sets LAMBDA_RIE and CDK_OUT.
package functions_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// The emulator's loopback addresses: its invoke API and the Runtime API the bootstrap binary polls. One
// emulator runs at a time; an address nothing listens on stands in for an unreachable broker.
const (
	emulatorAddr    = "127.0.0.1:32090"
	runtimeAPIAddr  = "127.0.0.1:32091"
	unreachableAddr = "127.0.0.1:32099"
)

// deployed is one Lambda function as the synthesized template deploys it.
type deployed struct {
	LogicalID string
	Binary    string // the bootstrap file in cdk.out that deploy uploads
	Arch      lambdabuild.Arch
	Timeout   int // seconds
	Memory    int // MiB
	Env       map[string]string
}

// loadDeployed reads the functions of the one stack in cdkOut, by logical id prefix (Health, Bootstrap).
func loadDeployed(t *testing.T, cdkOut string) map[string]deployed {
	t.Helper()
	var manifest struct {
		Artifacts map[string]struct {
			Type       string `json:"type"`
			Properties struct {
				TemplateFile string `json:"templateFile"`
				File         string `json:"file"`
			} `json:"properties"`
		} `json:"artifacts"`
	}
	readJSON(t, filepath.Join(cdkOut, "manifest.json"), &manifest)
	var templateFile, assetsFile string
	for _, a := range manifest.Artifacts {
		switch a.Type {
		case "aws:cloudformation:stack":
			templateFile = a.Properties.TemplateFile
		case "cdk:asset-manifest":
			assetsFile = a.Properties.File
		}
	}
	if templateFile == "" || assetsFile == "" {
		t.Fatalf("%s/manifest.json names no stack template or asset manifest", cdkOut)
	}
	var tmpl struct {
		Resources map[string]struct {
			Type       string `json:"Type"`
			Properties struct {
				Code          struct{ S3Key string }
				Architectures []string
				Runtime       string
				Handler       string
				Timeout       int
				MemorySize    int
				Environment   struct{ Variables map[string]any }
			} `json:"Properties"`
		} `json:"Resources"`
	}
	readJSON(t, filepath.Join(cdkOut, templateFile), &tmpl)
	var assets struct {
		Files map[string]struct {
			Source struct {
				Path      string `json:"path"`
				Packaging string `json:"packaging"`
			} `json:"source"`
		} `json:"files"`
	}
	readJSON(t, filepath.Join(cdkOut, assetsFile), &assets)

	out := map[string]deployed{}
	for id, r := range tmpl.Resources {
		if r.Type != "AWS::Lambda::Function" {
			continue
		}
		p := r.Properties
		if p.Runtime != "provided.al2023" || p.Handler != "bootstrap" || len(p.Architectures) != 1 {
			t.Fatalf("%s: runtime %q, handler %q, architectures %v; want provided.al2023, bootstrap, one architecture", id, p.Runtime, p.Handler, p.Architectures)
		}
		hash := strings.TrimSuffix(p.Code.S3Key, ".zip")
		asset, ok := assets.Files[hash]
		if !ok || asset.Source.Packaging != "zip" {
			t.Fatalf("%s: code %s is not a zipped directory asset of %s", id, p.Code.S3Key, assetsFile)
		}
		d := deployed{LogicalID: id, Binary: filepath.Join(cdkOut, asset.Source.Path, lambdabuild.BinaryName),
			Arch: lambdabuild.Arch(p.Architectures[0]), Timeout: p.Timeout, Memory: p.MemorySize, Env: map[string]string{}}
		for k, v := range p.Environment.Variables {
			if s, ok := v.(string); ok { // tokens (Refs) resolve only in AWS
				d.Env[k] = s
			}
		}
		for _, prefix := range []string{"Health", "Bootstrap"} {
			if strings.HasPrefix(id, prefix) {
				out[prefix] = d
			}
		}
	}
	if len(out) != 2 {
		t.Fatalf("template %s: functions %v, want Health and Bootstrap", templateFile, out)
	}
	return out
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading the cloud assembly (run cdk synth first): %v", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
}

// TestEmulatorArtifacts checks what deploy uploads before anything runs it: each bootstrap is an ELF binary
// for the template's architecture, runnable here, needing no glibc newer than provided.al2023's.
func TestEmulatorArtifacts(t *testing.T) {
	for name, d := range loadDeployed(t, cdkOut(t)) {
		arch, err := lambdabuild.MachineArch(d.Binary)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if arch != d.Arch || arch != lambdabuild.HostArch() {
			t.Errorf("%s: %s is built for %s, the template says %s, this host runs %s", name, d.Binary, arch, d.Arch, lambdabuild.HostArch())
		}
		if err := lambdabuild.CheckGlibc(d.Binary); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		need, _ := lambdabuild.GlibcNeeded(d.Binary)
		t.Logf("%s: %s (%s, glibc needed %q, timeout %ds, %d MiB)", name, d.Binary, arch, need, d.Timeout, d.Memory)
	}
}

func cdkOut(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("CDK_OUT")
	if dir == "" {
		t.Fatal("CDK_OUT is not set: run these tests with dev/lambda-emulator.sh")
	}
	return dir
}

// emulator is one running aws-lambda-rie with one function.
type emulator struct {
	fn  deployed
	url string
}

// startEmulator runs the function's bootstrap under the emulator with the template's environment, overlaid
// with env (what only the local stack can supply), and the template's timeout and memory.
func startEmulator(t *testing.T, fn deployed, env map[string]string) *emulator {
	t.Helper()
	rie := os.Getenv("LAMBDA_RIE")
	if rie == "" {
		t.Fatal("LAMBDA_RIE is not set: run these tests with dev/lambda-emulator.sh")
	}
	cmd := exec.Command(rie, "--log-level", "error", "--runtime-interface-emulator-address", emulatorAddr,
		"--runtime-api-address", runtimeAPIAddr, fn.Binary)
	cmd.Dir = filepath.Dir(fn.Binary)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"AWS_LAMBDA_FUNCTION_NAME=" + fn.LogicalID,
		"AWS_LAMBDA_FUNCTION_TIMEOUT=" + strconv.Itoa(fn.Timeout),
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=" + strconv.Itoa(fn.Memory),
	}
	for k, v := range fn.Env {
		if _, over := env[k]; !over {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting %s: %v", rie, err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator output:\n%s", logs.String())
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", emulatorAddr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the emulator did not listen on %s within 10s: %v\n%s", emulatorAddr, err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &emulator{fn: fn, url: "http://" + emulatorAddr + "/2015-03-31/functions/function/invocations"}
}

// invoke posts payload to the emulator's invoke API, as `aws lambda invoke` does, logs the request and the
// response, and returns the response body and how long the invocation took.
func (e *emulator) invoke(t *testing.T, payload string) ([]byte, time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(e.fn.Timeout+10)*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, e.url, strings.NewReader(payload))
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("invoking %s: %v", e.fn.LogicalID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	t.Logf("POST %s\n  request:  %s\n  response: %d %s (%s)", e.url, payload, resp.StatusCode, body, took.Round(time.Millisecond))
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("invoking %s: HTTP %d: %s", e.fn.LogicalID, resp.StatusCode, body)
	}
	return body, took
}

// lambdaError is the body of a failed invocation.
type lambdaError struct {
	ErrorType    string `json:"errorType"`
	ErrorMessage string `json:"errorMessage"`
}

func asError(body []byte) (lambdaError, bool) {
	var e lambdaError
	return e, json.Unmarshal(body, &e) == nil && e.ErrorMessage != ""
}

func scheduledEvent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("health", "event.json"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// awsEnv points a function at the Secrets Manager emulator, as the execution role's credentials would.
func awsEnv(t *testing.T, st *stacktest.Stack) map[string]string {
	env := map[string]string{}
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_SECRETSMANAGER"} {
		env[k] = st.Get(t, k)
	}
	return env
}

func putSecret(t *testing.T, st *stacktest.Stack, prefix, value string) string {
	t.Helper()
	sm := secretsmanager.New(secretsmanager.Options{
		Region:       st.Get(t, "AWS_REGION"),
		BaseEndpoint: aws.String(st.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER")),
		Credentials:  credentials.NewStaticCredentialsProvider(st.Get(t, "AWS_ACCESS_KEY_ID"), st.Get(t, "AWS_SECRET_ACCESS_KEY"), ""),
	})
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	ctx := context.Background()
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: &name, SecretString: &value}); err != nil {
		t.Fatalf("creating secret %s in the emulator: %v", name, err)
	}
	t.Cleanup(func() {
		sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: &name, ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return name
}

// TestEmulatorBootstrap runs the bootstrap function: with the template's own environment it says it is not
// configured; configured for the local ClickHouse, the console's {} creates the schema in the configured
// database and reports it, a second {} keeps it, the documented {"database": …} option bootstraps another
// database, and malformed payloads fail with an error that says what is wrong.
func TestEmulatorBootstrap(t *testing.T) {
	fn := loadDeployed(t, cdkOut(t))["Bootstrap"]
	st := stacktest.Load(t)

	t.Run("template environment", func(t *testing.T) {
		if fn.Env[clickhouse.EnvURL] != "" {
			t.Skipf("the synthesized stack names a ClickHouse (%s); nothing to check here", fn.Env[clickhouse.EnvURL])
		}
		e := startEmulator(t, fn, nil)
		body, _ := e.invoke(t, `{}`)
		if le, ok := asError(body); !ok || !strings.Contains(le.ErrorMessage, "not configured") || !strings.Contains(le.ErrorMessage, clickhouse.EnvURL) {
			t.Errorf("unconfigured bootstrap answered %s, want an error naming %s", body, clickhouse.EnvURL)
		}
	})

	c, err := clickhouse.NewClient(st.Get(t, "CLICKHOUSE_URL"), clickhouse.WithCredentials(st.Get(t, "CLICKHOUSE_USER"), st.Get(t, "CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	suffix := strconv.FormatInt(time.Now().UnixNano(), 36)
	db, other := "rie_bootstrap_"+suffix, "rie_console_"+suffix
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, d := range []string{db, other} {
			if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(d)+" SYNC"); err != nil {
				t.Errorf("dropping %s: %v", d, err)
			}
			if err := c.Exec(ctx, "DROP NAMED COLLECTION IF EXISTS "+clickhouse.QuoteIdent(d+"_kafka")); err != nil {
				t.Errorf("dropping the named collection of %s: %v", d, err)
			}
		}
	})
	topic := kafkatest.UniqueTopic("rie_bootstrap")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 1)
	env := awsEnv(t, st)
	env[clickhouse.EnvURL] = st.Get(t, "CLICKHOUSE_URL")
	env[clickhouse.EnvUser] = st.Get(t, "CLICKHOUSE_USER")
	env[clickhouse.EnvPasswordSecret] = putSecret(t, st, "rie-clickhouse", `{"CLICKHOUSE_PASSWORD":"`+st.Get(t, "CLICKHOUSE_PASSWORD")+`"}`)
	env[clickhouse.EnvBrokers] = st.Get(t, "CLICKHOUSE_KAFKA_BROKERS")
	env[clickhouse.EnvDatabase] = db
	env[clickhouse.EnvTopic] = topic
	env[clickhouse.EnvGroup] = topic
	e := startEmulator(t, fn, env)

	decode := func(body []byte) clickhouse.BootstrapResponse {
		t.Helper()
		var r clickhouse.BootstrapResponse
		if le, isErr := asError(body); isErr {
			t.Fatalf("bootstrap failed: %s: %s", le.ErrorType, le.ErrorMessage)
		}
		if err := json.Unmarshal(body, &r); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		return r
	}
	first := decode(must(e.invoke(t, `{}`)))
	if !first.OK || first.Database != db || len(first.Created) == 0 || len(first.Kept) != 0 {
		t.Errorf("first {} = %+v, want ok, everything created in %s", first, db)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rows, err := clickhouse.QueryRows[struct {
		Name string `json:"name"`
	}](ctx, c, clickhouse.Query{SQL: "SELECT name FROM system.tables WHERE database = " + clickhouse.QuoteString(db) + " ORDER BY name"})
	if err != nil {
		t.Fatalf("listing the tables of %s: %v", db, err)
	}
	var tables []string
	for _, r := range rows {
		tables = append(tables, r.Name)
	}
	t.Logf("ClickHouse now has in %s: %v", db, tables)
	if len(tables) < 3 {
		t.Errorf("tables in %s = %v, want the schema's tables and view", db, tables)
	}
	second := decode(must(e.invoke(t, `{}`)))
	if !second.OK || len(second.Created) != 0 || len(second.Kept) != len(first.Created) {
		t.Errorf("second {} = %+v, want ok with everything kept", second)
	}
	opt := decode(must(e.invoke(t, `{"database":"`+other+`"}`)))
	if !opt.OK || opt.Database != other || len(opt.Created) != len(first.Created) {
		t.Errorf(`{"database":%q} = %+v, want everything created there`, other, opt)
	}

	// Drift fails the invocation, so the console shows a failed run: errorType BootstrapError, the summary as
	// its message.
	if err := c.Exec(ctx, "ALTER TABLE "+clickhouse.QuoteIdent(other)+".logs ADD COLUMN note String DEFAULT ''"); err != nil {
		t.Fatal(err)
	}
	drifted, _ := e.invoke(t, `{"database":"`+other+`"}`)
	if le, ok := asError(drifted); !ok || le.ErrorType != "BootstrapError" || !strings.Contains(le.ErrorMessage, other+".logs: the stored definition differs from the DDL") {
		t.Errorf(`{"database":%q} on a drifted logs answered %s; want errorType BootstrapError and the summary naming %s.logs`, other, drifted, other)
	}

	for payload, want := range map[string]string{
		`{"database":`:    "unexpected EOF",
		`{"database":42}`: "cannot unmarshal number",
		`["KafkaEngine"]`: "cannot unmarshal array",
	} {
		body, _ := e.invoke(t, payload)
		if le, ok := asError(body); !ok || !strings.Contains(le.ErrorMessage, want) {
			t.Errorf("payload %s answered %s, want an error containing %q", payload, body, want)
		}
	}
}

func must(body []byte, _ time.Duration) []byte { return body }

// healthVerdict is the health function's response.
type healthVerdict struct {
	OK     bool `json:"ok"`
	Checks []struct {
		Name      string `json:"name"`
		OK        bool   `json:"ok"`
		Error     string `json:"error"`
		LatencyMS int64  `json:"latency_ms"`
	} `json:"checks"`
}

// TestEmulatorHealth runs the health function with the template's environment against the local broker:
// green for the console's {} and for the scheduled event; and each failure (a wrong password, a missing
// topic, an unreachable broker) named in the verdict, within the function's timeout.
func TestEmulatorHealth(t *testing.T) {
	fn := loadDeployed(t, cdkOut(t))["Health"]
	st := stacktest.Load(t)
	perCheck, err := time.ParseDuration(fn.Env["HEALTH_TIMEOUT"])
	if err != nil {
		t.Fatalf("the template's HEALTH_TIMEOUT %q: %v", fn.Env["HEALTH_TIMEOUT"], err)
	}
	plain := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlq := kafkatest.TopicPair(t, plain, "rie_health", 1)
	good := map[string]string{
		secrets.KeyBootstrapServer: st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		secrets.KeySASLUsername:    st.Get(t, "KAFKA_SASL_USERNAME"),
		secrets.KeySASLPassword:    st.Get(t, "KAFKA_SASL_PASSWORD"),
	}
	secretOf := func(t *testing.T, over map[string]string) string {
		v := map[string]string{}
		for k, s := range good {
			v[k] = s
		}
		for k, s := range over {
			v[k] = s
		}
		b, _ := json.Marshal(v)
		return putSecret(t, st, "rie-health", string(b))
	}
	// In AWS the function verifies the brokers with the system's CAs; the local broker's CA is the stack's.
	env := func(secret string) map[string]string {
		e := awsEnv(t, st)
		e["HEALTH_SECRET_NAME"] = secret
		e["HEALTH_TOPIC"], e["HEALTH_DLQ_TOPIC"] = topic, dlq
		e["HEALTH_CA_FILE"] = st.Get(t, "KAFKA_CA_FILE")
		// The template checks the reader through ECS and CloudWatch in the deployed cluster, which the
		// template names by reference only; that check is proven against the AWS emulator's ECS and
		// CloudWatch in internal/health's integration tests. Here the Kafka checks are under test.
		e["HEALTH_READER_CHECK"] = "off"
		return e
	}
	verdict := func(t *testing.T, body []byte, took time.Duration) healthVerdict {
		t.Helper()
		if le, isErr := asError(body); isErr {
			t.Fatalf("the health function failed instead of reporting: %s: %s", le.ErrorType, le.ErrorMessage)
		}
		var v healthVerdict
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("decoding %s: %v", body, err)
		}
		if limit := time.Duration(fn.Timeout) * time.Second; took >= limit {
			t.Errorf("the invocation took %s, the function's timeout is %s", took, limit)
		}
		return v
	}

	t.Run("green", func(t *testing.T) {
		e := startEmulator(t, fn, env(secretOf(t, nil)))
		for _, payload := range []string{`{}`, scheduledEvent(t)} {
			body, took := e.invoke(t, payload)
			v := verdict(t, body, took)
			if !v.OK || len(v.Checks) < 3 {
				t.Errorf("verdict for %.40s… = %+v, want ok with every check", payload, v)
			}
		}
	})

	for _, tt := range []struct {
		name   string
		secret map[string]string
		topic  string
		check  string // the check that must fail
		want   string // in its error
	}{
		{"wrong password", map[string]string{secrets.KeySASLPassword: "not-the-password"}, "", "brokers", "authentication"},
		{"missing topic", nil, "rie_missing_" + strconv.FormatInt(time.Now().UnixNano(), 36), "topic", "does not exist"},
		{"unreachable broker", map[string]string{secrets.KeyBootstrapServer: unreachableAddr}, "", "brokers", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ev := env(secretOf(t, tt.secret))
			if tt.topic != "" {
				ev["HEALTH_TOPIC"] = tt.topic
			}
			e := startEmulator(t, fn, ev)
			body, took := e.invoke(t, scheduledEvent(t))
			v := verdict(t, body, took)
			if v.OK {
				t.Fatalf("verdict ok with %s", tt.name)
			}
			found := false
			for _, c := range v.Checks {
				if c.Name == tt.check {
					found = true
					if c.OK || !strings.Contains(strings.ToLower(c.Error), tt.want) {
						t.Errorf("check %s = ok %v, error %q; want failed with %q", c.Name, c.OK, c.Error, tt.want)
					}
					if time.Duration(c.LatencyMS)*time.Millisecond > perCheck+2*time.Second {
						t.Errorf("check %s took %dms, its limit is %s", c.Name, c.LatencyMS, perCheck)
					}
				}
				if strings.Contains(c.Error, "not-the-password") || strings.Contains(c.Error, good[secrets.KeySASLPassword]) {
					t.Errorf("check %s error carries a password: %q", c.Name, c.Error)
				}
			}
			if !found {
				t.Errorf("verdict %+v has no %s check", v, tt.check)
			}
		})
	}
}
