package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// alarmsByID returns the template's alarms keyed by the construct id their logical id starts with.
func alarmsByID(t *testing.T, tmpl assertions.Template, ids ...string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for logical, r := range resources(tmpl, "AWS::CloudWatch::Alarm") {
		for _, id := range ids {
			if strings.HasPrefix(logical, id) && !strings.HasPrefix(logical, id+"Errors") {
				out[id] = props(r)
			}
		}
	}
	return out
}

func topicRef(t *testing.T, tmpl assertions.Template) string {
	t.Helper()
	topics := resources(tmpl, "AWS::SNS::Topic")
	if len(topics) != 1 {
		t.Fatalf("%d SNS topics, want 1", len(topics))
	}
	for id := range topics {
		return id
	}
	return ""
}

// metricStat finds the metric with id in an alarm's Metrics (a math expression's inputs).
func metricStat(alarm map[string]any, id string) map[string]any {
	for _, m := range alarm["Metrics"].([]any) {
		m := m.(map[string]any)
		if m["Id"] == id {
			return m["MetricStat"].(map[string]any)
		}
	}
	return nil
}

func expression(alarm map[string]any) string {
	for _, m := range alarm["Metrics"].([]any) {
		if e, ok := m.(map[string]any)["Expression"].(string); ok {
			return e
		}
	}
	return ""
}

// TestAlarms checks each alarm's metric, threshold, comparison and missing-data treatment, and that every
// alarm of the stack notifies the one SNS topic when it fires and when it clears.
func TestAlarms(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"alarmEmail": "oncall@example.com"})
	topic := topicRef(t, tmpl)
	for id, a := range resources(tmpl, "AWS::CloudWatch::Alarm") {
		pr := props(a)
		for _, key := range []string{"AlarmActions", "OKActions"} {
			if got := fmt.Sprint(pr[key]); got != fmt.Sprintf("[map[Ref:%s]]", topic) {
				t.Errorf("alarm %s %s = %s, want the topic %s", id, key, got, topic)
			}
		}
	}
	tmpl.HasResourceProperties(jsii.String("AWS::SNS::Subscription"), map[string]any{
		"Protocol": "email", "Endpoint": "oncall@example.com", "TopicArn": map[string]any{"Ref": topic},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::SNS::Topic"), map[string]any{
		"KmsMasterKeyId": assertions.Match_AnyValue(),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::KMS::Key"), map[string]any{
		"EnableKeyRotation": true,
		"KeyPolicy": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{assertions.Match_ObjectLike(&map[string]any{
			"Principal": map[string]any{"Service": "cloudwatch.amazonaws.com"},
			"Action":    []any{"kms:Decrypt", "kms:GenerateDataKey*"},
		})})},
	})
	tmpl.HasOutput(jsii.String("AlarmTopicArn"), map[string]any{})

	a := alarmsByID(t, tmpl, stack.AlarmHealthFailing, stack.AlarmDeadLettersGrowing, stack.AlarmReaderTasksBelowDesired,
		stack.AlarmReaderNotDelivering, stack.AlarmReaderLinesFailed, stack.AlarmHealthFunctionErrors, stack.AlarmBootstrapFunctionErrors,
		stack.AlarmReaderCredentialsUnavailable)
	if len(a) != 8 {
		t.Fatalf("found alarms %v, want all 8", keys(a))
	}
	type want struct {
		threshold  float64
		comparison string
		missing    string
		evals      float64
	}
	for id, w := range map[string]want{
		stack.AlarmHealthFailing:                {1, "LessThanThreshold", "breaching", 3},
		stack.AlarmDeadLettersGrowing:           {0, "GreaterThanThreshold", "notBreaching", 1},
		stack.AlarmReaderTasksBelowDesired:      {0, "GreaterThanThreshold", "notBreaching", 5},
		stack.AlarmReaderNotDelivering:          {1, "GreaterThanOrEqualToThreshold", "notBreaching", 1},
		stack.AlarmReaderLinesFailed:            {0, "GreaterThanThreshold", "notBreaching", 1},
		stack.AlarmHealthFunctionErrors:         {0, "GreaterThanThreshold", "notBreaching", 1},
		stack.AlarmBootstrapFunctionErrors:      {0, "GreaterThanThreshold", "notBreaching", 1},
		stack.AlarmReaderCredentialsUnavailable: {1, "GreaterThanOrEqualToThreshold", "notBreaching", 2},
	} {
		pr := a[id]
		if pr["Threshold"] != w.threshold || pr["ComparisonOperator"] != w.comparison || pr["TreatMissingData"] != w.missing ||
			pr["EvaluationPeriods"] != w.evals {
			t.Errorf("alarm %s: threshold %v %v, missing %v, periods %v; want %s %v, %s, %v", id, pr["ComparisonOperator"],
				pr["Threshold"], pr["TreatMissingData"], pr["EvaluationPeriods"], w.comparison, w.threshold, w.missing, w.evals)
		}
	}

	// The metrics each alarm watches.
	failed := a[stack.AlarmReaderLinesFailed]
	if failed["Namespace"] != cwmetric.DefaultNamespace || failed["MetricName"] != cwmetric.LinesFailed || failed["Statistic"] != "Sum" ||
		failed["Period"] != 300.0 || fmt.Sprint(failed["Dimensions"]) != "[map[Name:Service Value:log-pipeline]]" {
		t.Errorf("ReaderLinesFailed watches %v %v %v per %v %v", failed["Namespace"], failed["MetricName"], failed["Statistic"],
			failed["Period"], failed["Dimensions"])
	}
	creds := a[stack.AlarmReaderCredentialsUnavailable]
	if creds["Namespace"] != cwmetric.DefaultNamespace || creds["MetricName"] != cwmetric.CredentialsUnavailable ||
		creds["Statistic"] != "Maximum" || creds["Period"] != 300.0 || creds["DatapointsToAlarm"] != 2.0 ||
		fmt.Sprint(creds["Dimensions"]) != "[map[Name:Service Value:log-pipeline]]" {
		t.Errorf("ReaderCredentialsUnavailable watches %v %v %v per %v, %v of 2, %v", creds["Namespace"], creds["MetricName"],
			creds["Statistic"], creds["Period"], creds["DatapointsToAlarm"], creds["Dimensions"])
	}
	nd := a[stack.AlarmReaderNotDelivering]
	if e := expression(nd); e != "IF(FILL(delivered, 0) == 0 AND (FILL(received, 0) > 0 OR FILL(inflight, 0) > 0), 1, 0)" {
		t.Errorf("ReaderNotDelivering expression = %q", e)
	}
	for id, w := range map[string][2]string{"delivered": {cwmetric.EventsDelivered, "Sum"}, "received": {cwmetric.LinesReceived, "Sum"},
		"inflight": {cwmetric.LinesInFlight, "Maximum"}} {
		ms := metricStat(nd, id)
		if ms == nil || ms["Metric"].(map[string]any)["MetricName"] != w[0] || ms["Stat"] != w[1] || ms["Period"] != 600.0 ||
			ms["Metric"].(map[string]any)["Namespace"] != cwmetric.DefaultNamespace {
			t.Errorf("ReaderNotDelivering input %s = %v, want %s %s over 600 s", id, ms, w[0], w[1])
		}
	}
	tasks := a[stack.AlarmReaderTasksBelowDesired]
	if e := expression(tasks); e != "desired - running" {
		t.Errorf("ReaderTasksBelowDesired expression = %q", e)
	}
	for id, name := range map[string]string{"running": "RunningTaskCount", "desired": "DesiredTaskCount"} {
		ms := metricStat(tasks, id)
		m := ms["Metric"].(map[string]any)
		if m["Namespace"] != "ECS/ContainerInsights" || m["MetricName"] != name || !strings.Contains(fmt.Sprint(m["Dimensions"]), "ServiceName") {
			t.Errorf("ReaderTasksBelowDesired input %s = %v, want ECS/ContainerInsights %s of the service", id, m, name)
		}
	}
	if a[stack.AlarmDeadLettersGrowing] == nil || expression(a[stack.AlarmDeadLettersGrowing]) != "DIFF(dlq)" {
		t.Errorf("DeadLettersGrowing expression = %q", expression(a[stack.AlarmDeadLettersGrowing]))
	}
	if h := a[stack.AlarmHealthFailing]; h["MetricName"] != stack.MetricHealthOK || h["Statistic"] != "Minimum" {
		t.Errorf("HealthFailing watches %v %v", h["MetricName"], h["Statistic"])
	}
	for _, id := range []string{stack.AlarmHealthFunctionErrors, stack.AlarmBootstrapFunctionErrors} {
		pr := a[id]
		if pr["Namespace"] != "AWS/Lambda" || pr["MetricName"] != "Errors" || pr["Statistic"] != "Sum" ||
			!strings.Contains(fmt.Sprint(pr["Dimensions"]), "FunctionName") {
			t.Errorf("%s watches %v %v %v %v", id, pr["Namespace"], pr["MetricName"], pr["Statistic"], pr["Dimensions"])
		}
	}

	// The reader writes its EMF counters in the stack, which the reader alarms read.
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::TaskDefinition"), map[string]any{
		"ContainerDefinitions": []any{assertions.Match_ObjectLike(&map[string]any{
			"Environment": assertions.Match_ArrayWith(&[]any{map[string]any{"Name": "READER_EMF_INTERVAL", "Value": stack.EMFInterval}}),
		})},
	})
	assertDashboard(t, tmpl)
	assertNoNagFindings(t, p)
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// assertDashboard checks that the dashboard graphs the flow, the lag and the errors.
func assertDashboard(t *testing.T, tmpl assertions.Template) {
	t.Helper()
	dashes := resources(tmpl, "AWS::CloudWatch::Dashboard")
	if len(dashes) != 1 {
		t.Fatalf("%d dashboards, want 1", len(dashes))
	}
	for _, d := range dashes {
		// The runbook names it: the stack's name.
		if name := props(d)["DashboardName"]; name != "LogPipeline" {
			t.Errorf("DashboardName = %v, want the stack's name LogPipeline", name)
		}
		tmpl.HasOutput(jsii.String("DashboardName"), map[string]any{"Value": "LogPipeline"})
		b, _ := json.Marshal(props(d)["DashboardBody"])
		body := string(b)
		for _, want := range []string{"1. TCP: lines received", "2. Kafka: events delivered", "3. ClickHouse: messages consumed",
			cwmetric.LinesReceived, cwmetric.EventsDelivered, cwmetric.ClickHouseMessagesRead, cwmetric.ClickHouseErrorRows,
			cwmetric.LinesInFlight, cwmetric.KafkaQueueBytes, cwmetric.LinesFailed, cwmetric.LinesDeadLettered, "Errors"} {
			if !strings.Contains(body, want) {
				t.Errorf("dashboard does not mention %q", want)
			}
		}
	}
}

// TestAlarmsConfigured checks the context keys: a source expected to send all the time makes silence (or a
// reader reporting nothing) an alarm, the window is configurable, and the scheduled reader (no service) has
// no task-count alarm.
func TestAlarmsConfigured(t *testing.T) {
	_, tmpl := synth(t, map[string]any{"sourceAlwaysSends": "true", "noDeliveryMinutes": "15", "scheduledReader": "true"})
	a := alarmsByID(t, tmpl, stack.AlarmReaderNotDelivering, stack.AlarmReaderTasksBelowDesired)
	if _, ok := a[stack.AlarmReaderTasksBelowDesired]; ok {
		t.Error("a task-count alarm without a service")
	}
	nd := a[stack.AlarmReaderNotDelivering]
	if e := expression(nd); e != "IF(FILL(delivered, 0) == 0, 1, 0)" || nd["TreatMissingData"] != "breaching" {
		t.Errorf("ReaderNotDelivering = %q, missing %v; want no deliveries alone, missing data breaching", e, nd["TreatMissingData"])
	}
	if ms := metricStat(nd, "delivered"); ms["Period"] != 900.0 {
		t.Errorf("window = %v s, want 900", ms["Period"])
	}
	tmpl.ResourceCountIs(jsii.String("AWS::SNS::Subscription"), jsii.Number(0))
}

// TestHealthReaderCheckWiring checks that the health Lambda's reader check is on by default, through ECS
// (no address needed, so connect mode works), with just the permissions it needs; and through the URL when
// one is given.
func TestHealthReaderCheckWiring(t *testing.T) {
	_, tmpl := synth(t, nil)
	tmpl.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{
			"HEALTH_READER_CHECK": "ecs", "HEALTH_READER_WINDOW": "10m",
			"HEALTH_ECS_CLUSTER": map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^Cluster"))},
			"HEALTH_ECS_SERVICE": map[string]any{"Fn::GetAtt": []any{assertions.Match_StringLikeRegexp(jsii.String("^ReaderService")), "Name"}},
		})},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
		"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{
			assertions.Match_ObjectLike(&map[string]any{"Sid": "DescribeReaderService", "Action": "ecs:DescribeServices",
				"Resource": map[string]any{"Ref": assertions.Match_StringLikeRegexp(jsii.String("^ReaderService"))}}),
			assertions.Match_ObjectLike(&map[string]any{"Sid": "ReadReaderMetrics", "Action": "cloudwatch:GetMetricData", "Resource": "*"}),
		})},
	})
	_, withURL := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170",
		"readerHealthUrl": "http://reader.internal:9108/healthz"})
	withURL.HasResourceProperties(jsii.String("AWS::Lambda::Function"), map[string]any{
		"Environment": map[string]any{"Variables": assertions.Match_ObjectLike(&map[string]any{"HEALTH_READER_CHECK": "url"})},
	})
}

// TestRunbookCoversEveryAlarm checks that infra/RUNBOOK.md has a section per alarm of the stack, each saying
// what it means, how to confirm it and what to do.
func TestRunbookCoversEveryAlarm(t *testing.T) {
	p, _ := synth(t, nil)
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "infra", "RUNBOOK.md"))
	if err != nil {
		t.Fatal(err)
	}
	sections := map[string]string{}
	for _, part := range strings.Split(string(b), "\n## ")[1:] {
		title, body, _ := strings.Cut(part, "\n")
		sections[title] = body
	}
	ids := p.AlarmIDs()
	if len(ids) < 7 {
		t.Fatalf("AlarmIDs() = %v, want the 7 alarms", ids)
	}
	for _, id := range ids {
		body, ok := sections[id]
		if !ok {
			t.Errorf("RUNBOOK.md has no section %q", id)
			continue
		}
		for _, part := range []string{"**Meaning.**", "**Confirm.**", "**Do.**"} {
			if !strings.Contains(body, part) {
				t.Errorf("RUNBOOK.md section %s lacks %s", id, part)
			}
		}
	}
}

// TestAlarmTopicPolicy checks that the alarms can notify at all: a topic policy replaces SNS's default
// one, so it must allow CloudWatch to publish, and only for this stack's alarms in this account, while
// still denying publishes that do not use TLS.
func TestAlarmTopicPolicy(t *testing.T) {
	for _, ctx := range []map[string]any{nil, {"scheduledReader": "true"}} {
		_, tmpl := synth(t, ctx)
		topic := topicRef(t, tmpl)
		policies := resources(tmpl, "AWS::SNS::TopicPolicy")
		if len(policies) != 1 {
			t.Fatalf("%d topic policies, want 1", len(policies))
		}
		var wantArns []string
		for id := range resources(tmpl, "AWS::CloudWatch::Alarm") {
			wantArns = append(wantArns, fmt.Sprintf("map[Fn::GetAtt:[%s Arn]]", id))
		}
		sort.Strings(wantArns)
		for _, pol := range policies {
			pr := props(pol)
			if fmt.Sprint(pr["Topics"]) != fmt.Sprintf("[map[Ref:%s]]", topic) {
				t.Errorf("topic policy on %v, want the alarm topic %s", pr["Topics"], topic)
			}
			var allow, deny map[string]any
			for _, st := range pr["PolicyDocument"].(map[string]any)["Statement"].([]any) {
				st := st.(map[string]any)
				switch st["Effect"] {
				case "Allow":
					if allow != nil {
						t.Errorf("a second Allow statement: %v", st)
					}
					allow = st
				case "Deny":
					deny = st
				}
			}
			if deny == nil || fmt.Sprint(deny["Condition"]) != "map[Bool:map[aws:SecureTransport:false]]" {
				t.Errorf("no SSL-only Deny in the topic policy (got %v)", deny)
			}
			if allow == nil {
				t.Fatal("the topic policy allows nobody to publish: no alarm can notify")
			}
			if fmt.Sprint(allow["Principal"]) != "map[Service:cloudwatch.amazonaws.com]" || allow["Action"] != "sns:Publish" ||
				fmt.Sprint(allow["Resource"]) != fmt.Sprintf("map[Ref:%s]", topic) {
				t.Errorf("Allow = %v, want cloudwatch.amazonaws.com to sns:Publish on the topic", allow)
			}
			cond, _ := allow["Condition"].(map[string]any)
			if got := fmt.Sprint(cond["StringEquals"]); got != "map[aws:SourceAccount:map[Ref:AWS::AccountId]]" {
				t.Errorf("Allow's StringEquals = %s, want aws:SourceAccount of this account", got)
			}
			arnCond, _ := cond["ArnEquals"].(map[string]any)
			var gotArns []string
			for _, a := range arnCond["aws:SourceArn"].([]any) {
				gotArns = append(gotArns, fmt.Sprint(a))
			}
			sort.Strings(gotArns)
			if !slices.Equal(gotArns, wantArns) {
				t.Errorf("Allow's aws:SourceArn = %v, want exactly this stack's alarms %v", gotArns, wantArns)
			}
		}
	}
}

// alarmCost matches the cost table's alarm line of infra/README.md: "| CloudWatch alarms (N, over M metrics".
var alarmCost = regexp.MustCompile(`\| CloudWatch alarms \((\d+), over (\d+) metrics`)

// TestReadmeCostCountsAlarms checks that the cost section of infra/README.md counts the alarms the default
// stack has, and the metrics they are billed by (each metric of a metric-math alarm counts).
func TestReadmeCostCountsAlarms(t *testing.T) {
	_, tmpl := synth(t, nil)
	alarms := resources(tmpl, "AWS::CloudWatch::Alarm")
	metrics := 0
	for _, a := range alarms {
		pr := props(a)
		if pr["MetricName"] != nil {
			metrics++
		}
		ms, _ := pr["Metrics"].([]any)
		for _, m := range ms {
			if _, ok := m.(map[string]any)["MetricStat"]; ok {
				metrics++
			}
		}
	}
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "infra", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := alarmCost.FindStringSubmatch(string(b))
	if m == nil {
		t.Fatal("infra/README.md's cost section has no line \"| CloudWatch alarms (N, over M metrics\"")
	}
	if m[1] != fmt.Sprint(len(alarms)) || m[2] != fmt.Sprint(metrics) {
		t.Errorf("infra/README.md prices %s alarms over %s metrics; the default stack has %d over %d", m[1], m[2], len(alarms), metrics)
	}
}
