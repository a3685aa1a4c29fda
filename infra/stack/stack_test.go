package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// synthesized memoizes synth by its context: a synthesis costs seconds of the jsii runtime, most tests read
// the default stack, and none changes what it gets (templates and annotations are read-only).
var synthesized = struct {
	sync.Mutex
	dir  string
	byCx map[string]synthResult
}{byCx: map[string]synthResult{}}

type synthResult struct {
	p    *stack.Pipeline
	tmpl assertions.Template
}

func TestMain(m *testing.M) {
	code := m.Run()
	if synthesized.dir != "" {
		os.RemoveAll(synthesized.dir)
	}
	os.Exit(code)
}

// synth builds the stack from context values as `cdk synth -c` would, over cdk.json's context (feature
// flags, Lambda architecture, environments), with cdk-nag attached. Equal contexts share one synthesis.
func synth(t *testing.T, context map[string]any) (*stack.Pipeline, assertions.Template) {
	t.Helper()
	key, err := json.Marshal(context) // map keys are sorted: equal contexts give equal keys
	if err != nil {
		t.Fatal(err)
	}
	synthesized.Lock()
	defer synthesized.Unlock()
	if r, ok := synthesized.byCx[string(key)]; ok {
		return r.p, r.tmpl
	}
	if synthesized.dir == "" {
		if synthesized.dir, err = os.MkdirTemp("", "stack-test-"); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp(synthesized.dir, "synth-")
	if err != nil {
		t.Fatal(err)
	}
	ctx := cdkJSONContext(t)
	for k, v := range map[string]any{
		"sourceAddr": "logs.example.internal:5170",
		"lambdaDir":  fakeLambdas(t, dir),
		"repoRoot":   stacktest.RepoRoot(t),
	} {
		ctx[k] = v
	}
	for k, v := range context {
		ctx[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(filepath.Join(dir, "out"))})
	props, err := stack.FromContext(app.Node())
	if err != nil {
		t.Fatalf("FromContext(%v) = %v", ctx, err)
	}
	if _, ok := context["vpcId"]; ok {
		props.Env = &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")}
	}
	p := stack.NewPipelineStack(app, "LogPipeline", props)
	stack.CheckWithNag(app)
	r := synthResult{p, assertions.Template_FromStack(p.Stack, nil)}
	synthesized.byCx[string(key)] = r
	return r.p, r.tmpl
}

// cdkJSONContext is the repository's cdk.json context, as the CDK CLI passes it to the app.
func cdkJSONContext(t *testing.T) map[string]any {
	t.Helper()
	ctx, err := stack.CDKJSONContext(filepath.Join(stacktest.RepoRoot(t), "cdk.json"))
	if err != nil {
		t.Fatal(err)
	}
	return ctx
}

// fakeLambdas stands in for the Lambdas' build (lambdaDir): the template only records the assets' hashes.
// TestLambdasBuiltAtSynth and the emulator tests cover the real build.
func fakeLambdas(t *testing.T, parent string) string {
	t.Helper()
	dir := filepath.Join(parent, "lambdas")
	for _, name := range []string{"health", "bootstrap"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nagFindings lists the cdk-nag annotations of the given level ("Error" or "Warning") as "id: message".
func nagFindings(p *stack.Pipeline, level string) []string {
	a := assertions.Annotations_FromStack(p.Stack)
	find := a.FindError
	if level == "Warning" {
		find = a.FindWarning
	}
	var out []string
	for _, m := range *find(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		out = append(out, *m.Id+": "+fmt.Sprint(m.Entry.Data))
	}
	return out
}

// resources returns the template's resources of type typ, by logical id.
func resources(tmpl assertions.Template, typ string) map[string]map[string]any {
	out := map[string]map[string]any{}
	for id, r := range *tmpl.FindResources(jsii.String(typ), nil) {
		out[id] = *r
	}
	return out
}

func props(r map[string]any) map[string]any {
	p, _ := r["Properties"].(map[string]any)
	return p
}

func templateJSON(t *testing.T, tmpl assertions.Template) string {
	t.Helper()
	b, err := json.Marshal(tmpl.ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func assertNoNagFindings(t *testing.T, p *stack.Pipeline) {
	t.Helper()
	for _, level := range []string{"Error", "Warning"} {
		if f := nagFindings(p, level); len(f) > 0 {
			t.Errorf("cdk-nag AwsSolutions: %d unsuppressed %s findings:\n%s", len(f), level, strings.Join(f, "\n"))
		}
	}
}

// TestDefaultStack checks the connect-mode stack in a new VPC: the shape, the schedules, the secret's
// least-privilege access, log retention, the outputs, and cdk-nag.
func TestDefaultStack(t *testing.T) {
	p, tmpl := synth(t, nil)

	for typ, n := range map[string]int{
		"AWS::EC2::VPC":                             1,
		"AWS::EC2::NatGateway":                      1,
		"AWS::EC2::FlowLog":                         1,
		"AWS::ECS::Cluster":                         1,
		"AWS::ECS::TaskDefinition":                  1,
		"AWS::ECS::Service":                         1,
		"AWS::Lambda::Function":                     2,
		"AWS::Events::Rule":                         1,
		"AWS::CloudWatch::Alarm":                    10,
		"AWS::SecretsManager::Secret":               0,
		"AWS::Logs::LogGroup":                       4,
		"AWS::ElasticLoadBalancingV2::LoadBalancer": 0,
	} {
		tmpl.ResourceCountIs(jsii.String(typ), jsii.Number(float64(n)))
	}

	tmpl.HasResourceProperties(jsii.String("AWS::ECS::Cluster"), map[string]any{
		"ClusterSettings": []any{map[string]any{"Name": "containerInsights", "Value": "enabled"}},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"RequiresCompatibilities": []any{"FARGATE"},
		"ContainerDefinitions": []any{assertions.Match_ObjectLike(&map[string]any{
			"Name": stack.ContainerName,
			"Environment": assertions.Match_ArrayWith(&[]any{
				map[string]any{"Name": "READER_METRICS_ADDR", "Value": "0.0.0.0:9108"},
				map[string]any{"Name": "READER_SECRET_NAME", "Value": "MWAA_Secrets"},
				map[string]any{"Name": "READER_SOURCE_ADDR", "Value": "logs.example.internal:5170"},
				map[string]any{"Name": "READER_SOURCE_MODE", "Value": "connect"},
				map[string]any{"Name": "READER_TOPIC", "Value": "logs_4"},
			}),
			"HealthCheck": assertions.Match_ObjectLike(&map[string]any{
				"Command": assertions.Match_ArrayWith(&[]any{"http://127.0.0.1:9108/healthz"}),
			}),
			"LogConfiguration": assertions.Match_ObjectLike(&map[string]any{"LogDriver": "awslogs"}),
		})},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
		"LaunchType":   "FARGATE",
		"DesiredCount": 1,
		"NetworkConfiguration": map[string]any{"AwsvpcConfiguration": assertions.Match_ObjectLike(&map[string]any{
			"AssignPublicIp": "DISABLED",
		})},
	})

	for id, fn := range resources(tmpl, "AWS::Lambda::Function") {
		pr := props(fn)
		// cdk.json pins the architecture (TestLambdaArchitecturePinned).
		if want := fmt.Sprintf("[%s]", lambdabuild.X86_64); pr["Runtime"] != "provided.al2023" || pr["Handler"] != "bootstrap" || fmt.Sprint(pr["Architectures"]) != want {
			t.Errorf("Lambda %s: runtime %v, handler %v, architectures %v; want provided.al2023, bootstrap, %s",
				id, pr["Runtime"], pr["Handler"], pr["Architectures"], want)
		}
		if pr["VpcConfig"] == nil || pr["LoggingConfig"] == nil {
			t.Errorf("Lambda %s: VpcConfig %v, LoggingConfig %v; want both set", id, pr["VpcConfig"], pr["LoggingConfig"])
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{
			"HEALTH_SECRET_NAME": "MWAA_Secrets", "HEALTH_TOPIC": "logs_4", "HEALTH_DLQ_TOPIC": "logs_4_dlq",
			"HEALTH_TIMEOUT": "10s",
		}},
	})

	assertSchedules(t, tmpl, 1)
	assertSecretAccess(t, tmpl, map[string]int{"MWAA_Secrets": 3})
	assertRetention(t, tmpl, 30)
	assertNoPlaintextSecret(t, tmpl)

	for _, name := range []string{"ClusterName", "ClusterArn", "TaskDefinitionArn", "TaskRoleArn", "ExecutionRoleArn",
		"Subnets", "SecurityGroup", "ContainerName", "ReaderLogGroup", "HealthFunctionName", "BootstrapFunctionName", "ServiceName"} {
		tmpl.HasOutput(jsii.String(name), map[string]any{})
	}
	tmpl.HasOutput(jsii.String("ContainerName"), map[string]any{"Value": stack.ContainerName})
	// The NAT gateway's public IP, for the allow-lists of ClickHouse Cloud and Confluent Cloud: the Elastic IP
	// the NAT gateway uses.
	eips := resources(tmpl, "AWS::EC2::EIP")
	if len(eips) != 1 {
		t.Fatalf("%d Elastic IPs, want 1 (the NAT gateway's)", len(eips))
	}
	for id := range eips {
		tmpl.HasOutput(jsii.String("NatGatewayPublicIps"), map[string]any{
			// One address: CDK folds the join into the attribute itself.
			"Value": map[string]any{"Fn::GetAtt": []any{id, "PublicIp"}},
		})
	}

	tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
		"Namespace": stack.MetricsNamespace, "MetricName": stack.MetricHealthOK, "Statistic": "Minimum",
		"ComparisonOperator": "LessThanThreshold", "Threshold": 1, "TreatMissingData": "breaching",
		"Dimensions": []any{map[string]any{"Name": "Service", "Value": cwmetric.ServiceName}},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::CloudWatch::Alarm"), map[string]any{
		"ComparisonOperator": "GreaterThanThreshold", "Threshold": 0,
		"Metrics": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ObjectLike(&map[string]any{"Expression": "DIFF(dlq)"}),
			assertions.Match_ObjectLike(&map[string]any{"Id": "dlq", "MetricStat": assertions.Match_ObjectLike(&map[string]any{
				"Metric": assertions.Match_ObjectLike(&map[string]any{
					"Namespace": stack.MetricsNamespace, "MetricName": stack.MetricDeadLetterMessages,
				}),
			})}),
		}),
	})

	assertNoNagFindings(t, p)
}

// TestScheduledReader checks the bounded runs that replace the MWAA cadence: a second rate(5 minutes)
// rule starts the task with READER_DURATION=4m, and no always-on service competes with it for the source.
func TestScheduledReader(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"scheduledReader": "true"})
	tmpl.ResourceCountIs(jsii.String("AWS::ECS::Service"), jsii.Number(0))
	assertSchedules(t, tmpl, 2)
	tmpl.HasResourceProperties(jsii.String("AWS::Events::Rule"), map[string]any{
		"ScheduleExpression": "rate(5 minutes)",
		"Targets": []any{assertions.Match_ObjectLike(&map[string]any{
			"EcsParameters": assertions.Match_ObjectLike(&map[string]any{
				"LaunchType": "FARGATE", "TaskCount": 1,
				"NetworkConfiguration": map[string]any{"AwsVpcConfiguration": assertions.Match_ObjectLike(&map[string]any{
					"AssignPublicIp": "DISABLED",
				})},
			}),
			"Input": assertions.Match_SerializedJson(assertions.Match_ObjectLike(&map[string]any{
				"containerOverrides": []any{map[string]any{
					"name":        stack.ContainerName,
					"environment": []any{map[string]any{"name": "READER_DURATION", "value": "4m"}},
				}},
			})),
		})},
	})
	assertNoNagFindings(t, p)
}

// TestListenModeWithLoadBalancer checks listen mode behind a Network Load Balancer: TCP listener on the
// listen port, the balancer's health check on the reader's /acceptingz (new sources only to readers that take
// them) with a grace period for a reader waiting for its secret, the container's still on /healthz
// (liveness), and the port open to the VPC only.
func TestListenModeWithLoadBalancer(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "loadBalancer": "true",
		"readerHealthUrl": "http://reader.internal:9108/healthz"})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
		"Type": "network", "Scheme": "internal",
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
		"Port": 5170, "Protocol": "TCP",
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::TargetGroup"), map[string]any{
		"Port": 5170, "Protocol": "TCP", "TargetType": "ip",
		"HealthCheckProtocol": "HTTP", "HealthCheckPath": "/acceptingz", "HealthCheckPort": "9108",
		"HealthCheckIntervalSeconds": 10, "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2,
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
		"HealthCheckGracePeriodSeconds": stack.ReaderAcceptGraceMinutes * 60,
		"LoadBalancers":                 assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{"ContainerPort": 5170})}),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"HealthCheck": assertions.Match_ObjectLike(&map[string]any{
				"Command": assertions.Match_ArrayWith(&[]any{"http://127.0.0.1:9108/healthz"}),
			}),
		})}),
	})
	for _, tg := range resources(tmpl, "AWS::ElasticLoadBalancingV2::TargetGroup") {
		if path := props(tg)["HealthCheckPath"]; path == "/healthz" || path == "/readyz" {
			t.Errorf("target group health check on %v: it must read /acceptingz (see newLoadBalancer)", path)
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::EC2::SecurityGroup"), map[string]any{
		"SecurityGroupIngress": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"FromPort": 5170, "ToPort": 5170, "IpProtocol": "tcp",
			"CidrIp": map[string]any{"Fn::GetAtt": []any{assertions.Match_AnyValue(), "CidrBlock"}},
		})}),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
			"HEALTH_READER_URL": "http://reader.internal:9108/healthz",
		})},
	})
	tmpl.HasOutput(jsii.String("LoadBalancerDns"), map[string]any{})
	for _, sg := range resources(tmpl, "AWS::EC2::SecurityGroup") {
		if strings.Contains(fmt.Sprint(props(sg)["SecurityGroupIngress"]), "0.0.0.0/0") {
			t.Errorf("security group open to 0.0.0.0/0: %v", props(sg)["SecurityGroupIngress"])
		}
	}
	assertNoNagFindings(t, p)
}

// TestExistingVpc checks that a vpcId is used instead of creating a VPC. The lookup is answered from the
// context as the CLI would have cached it, so the test runs offline.
func TestExistingVpc(t *testing.T) {
	lookup, cached := stack.ExampleVpcLookup()
	p, tmpl := synth(t, map[string]any{"vpcId": stack.ExampleVpcID, lookup: cached})
	tmpl.ResourceCountIs(jsii.String("AWS::EC2::VPC"), jsii.Number(0))
	tmpl.ResourceCountIs(jsii.String("AWS::EC2::NatGateway"), jsii.Number(0))
	if outs := tmpl.FindOutputs(jsii.String("NatGatewayPublicIps"), nil); len(*outs) != 0 {
		t.Errorf("an existing VPC's NAT addresses are not the stack's to output: %v", *outs)
	}
	tmpl.HasResourceProperties(jsii.String("AWS::EC2::SecurityGroup"), map[string]any{"VpcId": stack.ExampleVpcID})
	tmpl.HasOutput(jsii.String("Subnets"), map[string]any{"Value": "subnet-0123456789abcdef1,subnet-0123456789abcdef2"})
	assertSecretAccess(t, tmpl, map[string]int{"MWAA_Secrets": 3})
	assertNoNagFindings(t, p)
}

// TestBootstrapFunction checks the ClickHouse bootstrap Lambda's configuration and that it may read the
// ClickHouse password's secret and the Kafka one (GetSecretValue, nothing more), and that the health Lambda
// then checks the Kafka table's consumers with the same password.
func TestBootstrapFunction(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"clickhouseUrl": "https://ch.example.com:8443", "kafkaBrokers": "b1.example.com:9092",
		"clickhouseUser": "ingest", "clickhousePasswordSecret": "clickhouse/ingest"})
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{
			"CLICKHOUSE_URL": "https://ch.example.com:8443", "CLICKHOUSE_USER": "ingest",
			"CLICKHOUSE_PASSWORD_SECRET": "clickhouse/ingest", "KAFKA_BROKERS": "b1.example.com:9092", "KAFKA_TOPIC": "logs_4",
			"KAFKA_SECRET_NAME": "MWAA_Secrets",
		}},
	})
	// The health Lambda reports the Kafka table's consumers in that ClickHouse.
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": map[string]any{
			"HEALTH_CLICKHOUSE_URL": "https://ch.example.com:8443", "HEALTH_CLICKHOUSE_USER": "ingest",
			"HEALTH_CLICKHOUSE_PASSWORD_SECRET": "clickhouse/ingest",
		}},
	})
	assertSecretAccess(t, tmpl, map[string]int{"MWAA_Secrets": 3, "clickhouse/ingest": 2})
	assertNoNagFindings(t, p)
}

// assertSchedules checks that there are n rules and that every one runs every 5 minutes.
func assertSchedules(t *testing.T, tmpl assertions.Template, n int) {
	t.Helper()
	rules := resources(tmpl, "AWS::Events::Rule")
	if len(rules) != n {
		t.Errorf("%d EventBridge rules, want %d", len(rules), n)
	}
	for id, r := range rules {
		if got := props(r)["ScheduleExpression"]; got != "rate(5 minutes)" {
			t.Errorf("rule %s: ScheduleExpression = %v, want rate(5 minutes)", id, got)
		}
	}
}

// assertSecretAccess checks the policy statements that mention Secrets Manager: each allows only
// secretsmanager:GetSecretValue, on one secret's ARN pattern and never "*", and want counts the statements
// per secret name (MWAA_Secrets: the task role, the health Lambda and the bootstrap Lambda).
func assertSecretAccess(t *testing.T, tmpl assertions.Template, want map[string]int) {
	t.Helper()
	got := map[string]int{}
	for id, pol := range resources(tmpl, "AWS::IAM::Policy") {
		doc := props(pol)["PolicyDocument"].(map[string]any)
		for _, st := range doc["Statement"].([]any) {
			st := st.(map[string]any)
			actions := fmt.Sprint(st["Action"])
			if !strings.Contains(actions, "secretsmanager") {
				continue
			}
			if actions != "secretsmanager:GetSecretValue" {
				t.Errorf("policy %s: actions %s, want secretsmanager:GetSecretValue alone", id, actions)
			}
			res, _ := json.Marshal(st["Resource"])
			m := secretArn.FindStringSubmatch(string(res))
			if m == nil || strings.Contains(string(res), `"*"`) {
				t.Errorf("policy %s: secretsmanager resource %s, want one secret's ARN pattern", id, res)
				continue
			}
			got[m[1]+m[2]]++ // one of the two forms matched
		}
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("GetSecretValue statements per secret = %v, want %v", got, want)
	}
	for id, role := range resources(tmpl, "AWS::IAM::Role") {
		if b, _ := json.Marshal(props(role)["Policies"]); strings.Contains(string(b), "secretsmanager") {
			t.Errorf("role %s has an inline Secrets Manager policy: %s", id, b)
		}
	}
}

// secretArn matches the resource of a Secrets Manager grant: an ARN ending in ":secret:<name>-??????", with
// nothing after it: the Fn::Join of an environment-agnostic stack's, or the literal of a stack pinned to an
// account and region (@aws-cdk/core:enablePartitionLiterals).
var secretArn = regexp.MustCompile(`^(?:\{"Fn::Join":\["",\["arn:",\{"Ref":"AWS::Partition"\},":secretsmanager:` +
	`(?:",\{"Ref":"AWS::Region"\},":",\{"Ref":"AWS::AccountId"\},"|[a-z0-9-]+:[0-9]{12})` +
	`:secret:([A-Za-z0-9_/+=.@-]+)-\?{6}"\]\]\}` +
	`|"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:([A-Za-z0-9_/+=.@-]+)-\?{6}")$`)

func assertRetention(t *testing.T, tmpl assertions.Template, days int) {
	t.Helper()
	for id, lg := range resources(tmpl, "AWS::Logs::LogGroup") {
		if got := props(lg)["RetentionInDays"]; fmt.Sprint(got) != fmt.Sprint(days) {
			t.Errorf("log group %s: RetentionInDays = %v, want %d", id, got, days)
		}
	}
}

func assertNoPlaintextSecret(t *testing.T, tmpl assertions.Template) {
	t.Helper()
	js := templateJSON(t, tmpl)
	for _, bad := range []string{"SecretString", "GenerateSecretString", "KAFKA_SASL_PASSWORD", "KAFKA_SASL_USERNAME", "sasl.password"} {
		if strings.Contains(js, bad) {
			t.Errorf("template contains %q: secrets must stay in Secrets Manager", bad)
		}
	}
	for id, td := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		if b, _ := json.Marshal(props(td)["ContainerDefinitions"]); strings.Contains(strings.ToUpper(string(b)), "PASSWORD") {
			t.Errorf("task definition %s mentions a password: %s", id, b)
		}
	}
}

// TestSuppressionsCarryReasons checks that every accepted cdk-nag finding, in every variant of the stack,
// says why, and that granular rules are suppressed finding by finding.
func TestSuppressionsCarryReasons(t *testing.T) {
	for _, ctx := range []map[string]any{
		nil,
		{"scheduledReader": "true"},
		{"sourceMode": "listen", "sourceAddr": ":5170", "loadBalancer": "true", "publicLoadBalancer": "true", "allowedSourceCidr": "0.0.0.0/0",
			"sourceTls": "reader", "sourceTlsSecret": "reader/tls", "sourceTlsMutual": "true"},
		{"sourceMode": "listen", "sourceAddr": ":5170", "loadBalancer": "true", "sourceTls": "loadBalancer",
			"loadBalancerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c"},
		{"sourceMode": "listen", "sourceAddr": ":5170", "allowedSourceCidr": "10.9.0.0/16"},
	} {
		p, _ := synth(t, ctx)
		pr, err := stack.FromContext(p.Node())
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range p.Suppressions(pr) {
			if len(s.Reason) < 60 {
				t.Errorf("suppression %s on %s: reason %q is too thin to explain itself", s.ID, s.Path, s.Reason)
			}
			if (s.ID == "AwsSolutions-IAM5" || s.ID == "AwsSolutions-IAM4") && len(s.AppliesTo) == 0 {
				t.Errorf("suppression %s on %s has no appliesTo: it would hide new findings too", s.ID, s.Path)
			}
		}
		assertNoNagFindings(t, p)
	}
}

// TestSourceAddressParameter checks that the connect-mode stack synthesizes without sourceAddr, as a plain
// `cdk synth` does: the reader's source becomes a required CloudFormation parameter, validated as host:port.
func TestSourceAddressParameter(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"sourceAddr": ""})
	tmpl.HasParameter(jsii.String(stack.SourceAddressParameter), map[string]any{"Type": "String"})
	params := *tmpl.FindParameters(jsii.String(stack.SourceAddressParameter), nil)
	if _, hasDefault := (*params[stack.SourceAddressParameter])["Default"]; hasDefault {
		t.Errorf("parameter %s has a default; a deploy must name the source", stack.SourceAddressParameter)
	}
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": []any{assertions.Match_ObjectLike(&map[string]any{
			"Environment": assertions.Match_ArrayWith(&[]any{
				map[string]any{"Name": "READER_SOURCE_ADDR", "Value": map[string]any{"Ref": stack.SourceAddressParameter}},
			}),
		})},
	})
	assertNoNagFindings(t, p)

	_, withAddr := synth(t, nil)
	if got := *withAddr.FindParameters(jsii.String(stack.SourceAddressParameter), nil); len(got) != 0 {
		t.Errorf("with sourceAddr in the context the template still has parameter %s", stack.SourceAddressParameter)
	}
}

// TestLambdaArchitecture checks that lambdaArchitecture reaches both functions.
func TestLambdaArchitecture(t *testing.T) {
	_, tmpl := synth(t, map[string]any{"lambdaArchitecture": "arm64"})
	for id, fn := range resources(tmpl, "AWS::Lambda::Function") {
		if got := fmt.Sprint(props(fn)["Architectures"]); got != "[arm64]" {
			t.Errorf("Lambda %s: Architectures = %s, want [arm64]", id, got)
		}
	}
}

// TestProductionProfile checks what the production profile keeps when the stack is destroyed: every log
// group is retained, the stack has termination protection and the load balancer deletion protection.
func TestProductionProfile(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"retainLogs": "true", "deletionProtection": "true",
		"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "loadBalancer": "true"})
	for id, lg := range *tmpl.FindResources(jsii.String("AWS::Logs::LogGroup"), nil) {
		if got := (*lg)["DeletionPolicy"]; got != "Retain" {
			t.Errorf("log group %s: DeletionPolicy %v, want Retain", id, got)
		}
	}
	if !*p.Stack.TerminationProtection() {
		t.Error("stack has no termination protection")
	}
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
		"LoadBalancerAttributes": assertions.Match_ArrayWith(&[]any{
			map[string]any{"Key": "deletion_protection.enabled", "Value": "true"},
		}),
	})
	assertNoNagFindings(t, p)

	_, dev := synth(t, nil)
	for id, lg := range *dev.FindResources(jsii.String("AWS::Logs::LogGroup"), nil) {
		if got := (*lg)["DeletionPolicy"]; got != "Delete" {
			t.Errorf("default profile: log group %s: DeletionPolicy %v, want Delete", id, got)
		}
	}
}

// TestScheduleRetriesAndDeadLetters checks that no scheduled invocation can fail silently: every EventBridge
// target retries and then dead-letters into one encrypted, SSL-only SQS queue that only this stack's rules
// may write to, and alarms watch failed invocations and the queue.
func TestScheduleRetriesAndDeadLetters(t *testing.T) {
	for _, tt := range []struct {
		name        string
		context     map[string]any
		rules       int
		maxEventAge map[string]float64 // by the rule's logical id prefix
	}{
		{"health schedule", nil, 1, map[string]float64{"HealthSchedule": 240}},
		{"health and bounded reader runs", map[string]any{"scheduledReader": "true"}, 2,
			map[string]float64{"HealthSchedule": 240, "ReaderSchedule": 60}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, tmpl := synth(t, tt.context)
			queues := resources(tmpl, "AWS::SQS::Queue")
			if len(queues) != 1 {
				t.Fatalf("%d SQS queues, want 1 (the schedules' dead-letter queue)", len(queues))
			}
			var queue string
			for id, q := range queues {
				queue = id
				if pr := props(q); pr["SqsManagedSseEnabled"] != true && pr["KmsMasterKeyId"] == nil {
					t.Errorf("dead-letter queue %s is not encrypted: %v", id, pr)
				}
			}
			rules := resources(tmpl, "AWS::Events::Rule")
			if len(rules) != tt.rules {
				t.Fatalf("%d rules, want %d", len(rules), tt.rules)
			}
			var ruleArns []string
			for id, r := range rules {
				ruleArns = append(ruleArns, fmt.Sprintf("map[Fn::GetAtt:[%s Arn]]", id))
				for _, tg := range props(r)["Targets"].([]any) {
					tg := tg.(map[string]any)
					if got := fmt.Sprint(tg["DeadLetterConfig"]); got != fmt.Sprintf("map[Arn:map[Fn::GetAtt:[%s Arn]]]", queue) {
						t.Errorf("rule %s: target %v has DeadLetterConfig %s, want the queue %s", id, tg["Id"], got, queue)
					}
					rp, _ := tg["RetryPolicy"].(map[string]any)
					var age float64
					for prefix, a := range tt.maxEventAge {
						if strings.HasPrefix(id, prefix) {
							age = a
						}
					}
					if rp["MaximumRetryAttempts"] != float64(stack.ScheduleRetryAttempts) || rp["MaximumEventAgeInSeconds"] != age {
						t.Errorf("rule %s: RetryPolicy %v, want %d attempts within %v s", id, rp, stack.ScheduleRetryAttempts, age)
					}
				}
			}
			sort.Strings(ruleArns)

			pols := resources(tmpl, "AWS::SQS::QueuePolicy")
			if len(pols) != 1 {
				t.Fatalf("%d queue policies, want 1", len(pols))
			}
			for _, pol := range pols {
				var sslDeny bool
				var senders []string
				for _, st := range props(pol)["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					st := st.(map[string]any)
					switch {
					case st["Effect"] == "Deny" && fmt.Sprint(st["Condition"]) == "map[Bool:map[aws:SecureTransport:false]]":
						sslDeny = true
					case st["Effect"] == "Allow":
						if fmt.Sprint(st["Principal"]) != "map[Service:events.amazonaws.com]" || st["Action"] != "sqs:SendMessage" {
							t.Errorf("queue policy allows %v", st)
						}
						cond := st["Condition"].(map[string]any)["ArnEquals"].(map[string]any)
						senders = append(senders, fmt.Sprint(cond["aws:SourceArn"]))
					}
				}
				sort.Strings(senders)
				if !sslDeny {
					t.Error("the dead-letter queue's policy does not deny requests without TLS")
				}
				if fmt.Sprint(senders) != fmt.Sprint(ruleArns) {
					t.Errorf("the dead-letter queue admits senders %v, want exactly the rules %v", senders, ruleArns)
				}
			}

			a := alarmsByID(t, tmpl, stack.AlarmScheduleInvocationsFailed, stack.AlarmScheduleDeadLetters)
			failed := a[stack.AlarmScheduleInvocationsFailed]
			if failed == nil || expression(failed) != "SUM(FILL(METRICS(), 0))" {
				t.Fatalf("no %s alarm summing the rules' failed invocations (got %v)", stack.AlarmScheduleInvocationsFailed, failed)
			}
			var watched []string
			for _, m := range failed["Metrics"].([]any) {
				if ms, ok := m.(map[string]any)["MetricStat"].(map[string]any); ok {
					metric := ms["Metric"].(map[string]any)
					watched = append(watched, fmt.Sprint(metric["Namespace"], " ", metric["MetricName"], " ", metric["Dimensions"]))
				}
			}
			if len(watched) != 2*tt.rules || !strings.Contains(strings.Join(watched, "\n"), "AWS/Events FailedInvocations") ||
				!strings.Contains(strings.Join(watched, "\n"), "AWS/Events InvocationsFailedToBeSentToDlq") {
				t.Errorf("%s watches %v, want FailedInvocations and InvocationsFailedToBeSentToDlq of each rule", stack.AlarmScheduleInvocationsFailed, watched)
			}
			dl := a[stack.AlarmScheduleDeadLetters]
			if dl == nil || dl["Namespace"] != "AWS/SQS" || dl["MetricName"] != "ApproximateNumberOfMessagesVisible" ||
				dl["ComparisonOperator"] != "GreaterThanThreshold" || dl["Threshold"] != 0.0 ||
				fmt.Sprint(dl["Dimensions"]) != fmt.Sprintf("[map[Name:QueueName Value:map[Fn::GetAtt:[%s QueueName]]]]", queue) {
				t.Errorf("%s = %v, want messages visible on the dead-letter queue above 0", stack.AlarmScheduleDeadLetters, dl)
			}
			tmpl.HasOutput(jsii.String("ScheduleDeadLetterQueueUrl"), map[string]any{"Value": map[string]any{"Ref": queue}})
			assertNoNagFindings(t, p)
		})
	}
}
