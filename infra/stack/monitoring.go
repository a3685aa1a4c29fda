package stack

import (
	"fmt"
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	cwactions "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	subs "github.com/aws/aws-cdk-go/awscdk/v2/awssnssubscriptions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// Alarm names (construct ids): the runbook (infra/RUNBOOK.md) has one section per alarm under these names.
const (
	AlarmHealthFailing           = "HealthFailing"
	AlarmDeadLettersGrowing      = "DeadLettersGrowing"
	AlarmReaderTasksBelowDesired = "ReaderTasksBelowDesired"
	AlarmReaderNotDelivering     = "ReaderNotDelivering"
	AlarmReaderLinesFailed       = "ReaderLinesFailed"
	AlarmHealthFunctionErrors    = "HealthFunctionErrors"
	AlarmBootstrapFunctionErrors = "BootstrapFunctionErrors"
	// AlarmReaderCredentialsUnavailable: a reader service cannot read its Kafka credentials from the secret.
	AlarmReaderCredentialsUnavailable = "ReaderCredentialsUnavailable"
)

// EMFInterval is how often the reader writes its EMF record in the stack (READER_EMF_INTERVAL).
const EMFInterval = "60s"

// MonitoringProps configures the alarms' reach and the delivery alarm.
type MonitoringProps struct {
	// AlarmEmail subscribes this address to the alarm topic (alarmEmail; empty: no subscription, add one
	// to the AlarmTopic output's topic yourself).
	AlarmEmail string
	// NoDeliveryMinutes is how long the reader may deliver nothing before ReaderNotDelivering fires
	// (noDeliveryMinutes; default 10).
	NoDeliveryMinutes int
	// SourceAlwaysSends makes ReaderNotDelivering fire on no deliveries alone, also when no line was
	// received (a silent source is then a fault), and when the reader reports nothing
	// (sourceAlwaysSends; default false: it fires only while lines are received or wait).
	SourceAlwaysSends bool
}

func monitoringFromContext(str func(string) string) (MonitoringProps, error) {
	m := MonitoringProps{AlarmEmail: str("alarmEmail")}
	if s := str("noDeliveryMinutes"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return m, fmt.Errorf("%w: noDeliveryMinutes %q is not a number of minutes", ErrInvalidProps, s)
		}
		m.NoDeliveryMinutes = n
	}
	var err error
	m.SourceAlwaysSends, err = parseBool("sourceAlwaysSends", str("sourceAlwaysSends"))
	return m, err
}

func (m MonitoringProps) withDefaults() MonitoringProps {
	if m.NoDeliveryMinutes == 0 {
		m.NoDeliveryMinutes = 10
	}
	return m
}

func (m MonitoringProps) validate() error {
	// CloudWatch alarms evaluate at most one day; the period is the whole window.
	if m.NoDeliveryMinutes < 1 || m.NoDeliveryMinutes > 1440 {
		return fmt.Errorf("%w: noDeliveryMinutes %d (want 1 to 1440)", ErrInvalidProps, m.NoDeliveryMinutes)
	}
	return nil
}

// readerMetric is one of the reader's EMF metrics, summed over all tasks.
func (p *Pipeline) readerMetric(name, statistic string, period awscdk.Duration) cw.Metric {
	return p.metric(name, statistic, period, nil)
}

// newMonitoring adds the reader's alarms, the alarm topic as the action of every alarm in the stack (the
// health alarms of alarms.go included), and the dashboard.
func newMonitoring(s awscdk.Stack, p *Pipeline, props Props) {
	m := props.Monitoring.withDefaults()
	// CloudWatch cannot publish to a topic encrypted with the AWS-managed SNS key: the key is the stack's,
	// and its policy lets CloudWatch use it.
	key := awskms.NewKey(s, jsii.String("AlarmTopicKey"), &awskms.KeyProps{
		Description:       jsii.String("Encrypts the pipeline's alarm notifications"),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     awscdk.RemovalPolicy_DESTROY,
	})
	key.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("kms:Decrypt", "kms:GenerateDataKey*"),
		Resources:  jsii.Strings("*"),
	}), jsii.Bool(true))
	p.AlarmTopic = awssns.NewTopic(s, jsii.String("AlarmTopic"), &awssns.TopicProps{
		DisplayName: jsii.String("Log pipeline alarms"),
		MasterKey:   key,
		EnforceSSL:  jsii.Bool(true),
	})
	if m.AlarmEmail != "" {
		p.AlarmTopic.AddSubscription(subs.NewEmailSubscription(jsii.String(m.AlarmEmail), nil))
	}

	if p.Service != nil {
		running := containerInsights("RunningTaskCount", p)
		desired := containerInsights("DesiredTaskCount", p)
		cw.NewAlarm(s, jsii.String(AlarmReaderTasksBelowDesired), &cw.AlarmProps{
			AlarmDescription: jsii.String("Fewer reader tasks run than the service wants, for 5 minutes (tasks crash, fail their health check or cannot start)"),
			Metric: cw.NewMathExpression(&cw.MathExpressionProps{
				Expression:   jsii.String("desired - running"),
				UsingMetrics: &map[string]cw.IMetric{"running": running, "desired": desired},
				Label:        jsii.String("Reader tasks missing"),
				Period:       awscdk.Duration_Minutes(jsii.Number(1)),
			}),
			Threshold:          jsii.Number(0),
			ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(5),
			DatapointsToAlarm:  jsii.Number(5),
			// Container Insights reports every minute while the service exists; ReaderNotDelivering and
			// HealthFailing cover a reader that reports nothing.
			TreatMissingData: cw.TreatMissingData_NOT_BREACHING,
		})
		// A reader service without usable credentials stays up (so a first deploy is not rolled back) and
		// says so in this metric every EMF interval; two 5-minute periods in a row leave out a read that
		// fails once at start and then succeeds.
		cw.NewAlarm(s, jsii.String(AlarmReaderCredentialsUnavailable), &cw.AlarmProps{
			AlarmDescription: jsii.String("A reader task cannot read its Kafka credentials from the secret (missing, in another region, " +
				"not readable by its role or KMS key, malformed) in two 5-minute periods in a row: it stays up, not ready, reads no source, and retries"),
			Metric:             p.readerMetric(cwmetric.CredentialsUnavailable, "Maximum", awscdk.Duration_Minutes(jsii.Number(5))),
			Threshold:          jsii.Number(1),
			ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
			EvaluationPeriods:  jsii.Number(2),
			DatapointsToAlarm:  jsii.Number(2),
			// Only a waiting reader writes 1; scheduled runs fail with the reason instead, and a reader that
			// reports nothing is covered by ReaderTasksBelowDesired and HealthFailing.
			TreatMissingData: cw.TreatMissingData_NOT_BREACHING,
		})
	}

	window := awscdk.Duration_Minutes(jsii.Number(float64(m.NoDeliveryMinutes)))
	expr := "IF(FILL(delivered, 0) == 0 AND (FILL(received, 0) > 0 OR FILL(inflight, 0) > 0), 1, 0)"
	desc := fmt.Sprintf("The reader delivered nothing to Kafka for %d minutes while lines were received or waiting", m.NoDeliveryMinutes)
	missing := cw.TreatMissingData_NOT_BREACHING
	if m.SourceAlwaysSends {
		expr = "IF(FILL(delivered, 0) == 0, 1, 0)"
		desc = fmt.Sprintf("The reader delivered nothing to Kafka for %d minutes (the source is expected to send all the time)", m.NoDeliveryMinutes)
		missing = cw.TreatMissingData_BREACHING
	}
	cw.NewAlarm(s, jsii.String(AlarmReaderNotDelivering), &cw.AlarmProps{
		AlarmDescription: jsii.String(desc),
		Metric: cw.NewMathExpression(&cw.MathExpressionProps{
			Expression: jsii.String(expr),
			UsingMetrics: &map[string]cw.IMetric{
				"delivered": p.readerMetric(cwmetric.EventsDelivered, "Sum", window),
				"received":  p.readerMetric(cwmetric.LinesReceived, "Sum", window),
				"inflight":  p.readerMetric(cwmetric.LinesInFlight, "Maximum", window),
			},
			Label:  jsii.String("Not delivering (1)"),
			Period: window,
		}),
		Threshold:          jsii.Number(1),
		ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   missing,
	})
	cw.NewAlarm(s, jsii.String(AlarmReaderLinesFailed), &cw.AlarmProps{
		AlarmDescription:   jsii.String("The reader lost lines: neither delivered nor dead-lettered (LinesFailed > 0 in 5 minutes)"),
		Metric:             p.readerMetric(cwmetric.LinesFailed, "Sum", awscdk.Duration_Minutes(jsii.Number(5))),
		Threshold:          jsii.Number(0),
		ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
	})
	// In a fixed order (not a map's): the construct order is the template's, and a synth that shuffled it
	// would show the topic policy as changed in every diff.
	for _, f := range []struct {
		id string
		fn awslambda.Function
	}{{AlarmHealthFunctionErrors, p.Health}, {AlarmBootstrapFunctionErrors, p.Bootstrap}} {
		id, fn := f.id, f.fn
		cw.NewAlarm(s, jsii.String(id), &cw.AlarmProps{
			AlarmDescription: jsii.String("The function's invocations failed (Errors > 0 in 5 minutes)"),
			Metric: fn.MetricErrors(&cw.MetricOptions{
				Statistic: jsii.String("Sum"), Period: awscdk.Duration_Minutes(jsii.Number(5)),
			}),
			Threshold:          jsii.Number(0),
			ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
			EvaluationPeriods:  jsii.Number(1),
			TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
		})
	}

	// Every alarm of the stack notifies the topic when it fires and when it clears.
	action := cwactions.NewSnsAction(p.AlarmTopic)
	var alarms []*string
	for _, c := range *s.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if a, ok := c.(cw.Alarm); ok {
			a.AddAlarmAction(action)
			a.AddOkAction(action)
			alarms = append(alarms, a.AlarmArn())
		}
	}
	allowAlarmsToPublish(s, p.AlarmTopic, alarms)
	newDashboard(s, p)
	wireReaderCheck(s, p, props)
	awscdk.NewCfnOutput(s, jsii.String("AlarmTopicArn"), &awscdk.CfnOutputProps{
		Value: p.AlarmTopic.TopicArn(), Description: jsii.String("SNS topic every alarm notifies (subscribe to it)"),
	})
}

// allowAlarmsToPublish lets CloudWatch publish this stack's alarms to the topic. A topic policy replaces
// SNS's default one, and the stack's (EnforceSSL: a Deny of plain HTTP) allows nothing, so without this
// statement every notification fails with "no resource-based policy allows the SNS:Publish action". It
// admits CloudWatch for these alarms of this account only (aws:SourceAccount, aws:SourceArn), so that no
// other account's or stack's alarm can publish here through the service principal.
func allowAlarmsToPublish(s awscdk.Stack, topic awssns.Topic, alarms []*string) {
	arns := make([]any, len(alarms))
	for i, a := range alarms {
		arns[i] = a
	}
	topic.AddToResourcePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:        jsii.String("CloudWatchAlarmsPublish"),
		Principals: &[]awsiam.IPrincipal{awsiam.NewServicePrincipal(jsii.String("cloudwatch.amazonaws.com"), nil)},
		Actions:    jsii.Strings("sns:Publish"),
		Resources:  jsii.Strings(*topic.TopicArn()),
		Conditions: &map[string]any{
			"StringEquals": map[string]any{"aws:SourceAccount": s.Account()},
			"ArnEquals":    map[string]any{"aws:SourceArn": arns},
		},
	}))
}

func containerInsights(name string, p *Pipeline) cw.Metric {
	return cw.NewMetric(&cw.MetricProps{
		Namespace:  jsii.String("ECS/ContainerInsights"),
		MetricName: jsii.String(name),
		DimensionsMap: &map[string]*string{
			"ClusterName": p.Cluster.ClusterName(), "ServiceName": p.Service.ServiceName(),
		},
		Statistic: jsii.String("Average"),
		Period:    awscdk.Duration_Minutes(jsii.Number(1)),
	})
}

// newDashboard draws the pipeline's flow left to right (TCP -> Kafka -> ClickHouse), then what waits and
// what went wrong.
func newDashboard(s awscdk.Stack, p *Pipeline) {
	minute := awscdk.Duration_Minutes(jsii.Number(1))
	graph := func(title string, left ...cw.IMetric) cw.GraphWidget {
		return cw.NewGraphWidget(&cw.GraphWidgetProps{Title: jsii.String(title), Left: &left, Width: jsii.Number(8), Height: jsii.Number(6)})
	}
	healthCheck := func(name, check string) cw.Metric {
		return p.metric(name, "Maximum", awscdk.Duration_Minutes(jsii.Number(5)), map[string]string{"Check": check})
	}
	// Named like the stack (LogPipeline, LogPipeline-<env>), so that the runbook can name it and two
	// environments' dashboards stand apart in the console.
	dash := cw.NewDashboard(s, jsii.String("Dashboard"), &cw.DashboardProps{
		DashboardName:   s.StackName(),
		DefaultInterval: awscdk.Duration_Hours(jsii.Number(3)),
	})
	awscdk.NewCfnOutput(s, jsii.String("DashboardName"), &awscdk.CfnOutputProps{
		Value: s.StackName(), Description: jsii.String("CloudWatch dashboard of the pipeline: flow, lag and errors"),
	})
	dash.AddWidgets(cw.NewTextWidget(&cw.TextWidgetProps{
		Markdown: jsii.String("## Log pipeline: TCP → reader → Kafka → ClickHouse\n" +
			"Reader counters are the tasks' EMF records (per minute); ClickHouse and the dead-letter topic come from " +
			"the health Lambda (every 5 minutes). Each alarm has a section in infra/RUNBOOK.md."),
		Width: jsii.Number(24), Height: jsii.Number(2),
	}))
	dash.AddWidgets(
		graph("1. TCP: lines received", p.readerMetric(cwmetric.LinesReceived, "Sum", minute)),
		graph("2. Kafka: events delivered", p.readerMetric(cwmetric.EventsDelivered, "Sum", minute)),
		graph("3. ClickHouse: messages consumed (growth per 5 minutes)", cw.NewMathExpression(&cw.MathExpressionProps{
			Expression:   jsii.String("DIFF(read)"),
			UsingMetrics: &map[string]cw.IMetric{"read": p.healthMetric(cwmetric.ClickHouseMessagesRead, "Maximum")},
			Label:        jsii.String("Messages consumed"),
			Period:       awscdk.Duration_Minutes(jsii.Number(5)),
		})),
	)
	dash.AddWidgets(
		graph("Lag: lines waiting in the reader", p.readerMetric(cwmetric.LinesInFlight, "Maximum", minute),
			p.readerMetric(cwmetric.DeliveryStalled, "Maximum", minute)),
		graph("Lag: Kafka client queue (bytes)", p.readerMetric(cwmetric.KafkaQueueBytes, "Maximum", minute)),
		graph("Lag: Kafka to ClickHouse (delivered minus consumed, per 5 minutes)", cw.NewMathExpression(&cw.MathExpressionProps{
			Expression: jsii.String("delivered - DIFF(read)"),
			UsingMetrics: &map[string]cw.IMetric{
				"delivered": p.readerMetric(cwmetric.EventsDelivered, "Sum", awscdk.Duration_Minutes(jsii.Number(5))),
				"read":      p.healthMetric(cwmetric.ClickHouseMessagesRead, "Maximum"),
			},
			Label:  jsii.String("Delivered, not yet consumed"),
			Period: awscdk.Duration_Minutes(jsii.Number(5)),
		})),
	)
	dash.AddWidgets(
		graph("Errors: dead-lettered and failed lines", p.readerMetric(cwmetric.LinesDeadLettered, "Sum", minute),
			p.readerMetric(cwmetric.LinesFailed, "Sum", minute), p.healthMetric(MetricDeadLetterMessages, "Maximum"),
			p.healthMetric(cwmetric.ClickHouseErrorRows, "Maximum")),
		graph("Errors: health checks (1 = passing)", p.healthMetric(MetricHealthOK, "Minimum"),
			healthCheck("CheckOK", "reader"), healthCheck("CheckOK", "brokers")),
		graph("Errors: Lambda errors", p.Health.MetricErrors(nil), p.Bootstrap.MetricErrors(nil)),
	)
	if p.Service != nil {
		dash.AddWidgets(graph("Reader tasks: running and desired", containerInsights("RunningTaskCount", p),
			containerInsights("DesiredTaskCount", p)))
	}
}

// wireReaderCheck turns the health Lambda's reader check on: through ECS (the service's running and desired
// tasks, and the reader's EMF metrics), which needs no address of the reader and so works in connect mode,
// or through readerHealthUrl when one is given.
func wireReaderCheck(s awscdk.Stack, p *Pipeline, props Props) {
	if props.ReaderHealthURL != "" {
		p.Health.AddEnvironment(jsii.String("HEALTH_READER_CHECK"), jsii.String("url"), nil)
		return
	}
	p.Health.AddEnvironment(jsii.String("HEALTH_READER_CHECK"), jsii.String("ecs"), nil)
	p.Health.AddEnvironment(jsii.String("HEALTH_ECS_CLUSTER"), p.Cluster.ClusterName(), nil)
	p.Health.AddEnvironment(jsii.String("HEALTH_READER_WINDOW"), jsii.String("10m"), nil)
	if p.Service != nil {
		p.Health.AddEnvironment(jsii.String("HEALTH_ECS_SERVICE"), p.Service.ServiceName(), nil)
		p.Health.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Sid:       jsii.String("DescribeReaderService"),
			Actions:   jsii.Strings("ecs:DescribeServices"),
			Resources: jsii.Strings(*p.Service.ServiceArn()),
		}))
	}
	p.Health.AddToRolePolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadReaderMetrics"),
		Actions:   jsii.Strings("cloudwatch:GetMetricData"),
		Resources: jsii.Strings("*"),
	}))
}

// AlarmIDs lists the construct ids of every alarm in the stack: each has a section in infra/RUNBOOK.md.
func (p *Pipeline) AlarmIDs() []string {
	var ids []string
	for _, c := range *p.Stack.Node().FindAll(constructs.ConstructOrder_PREORDER) {
		if _, ok := c.(cw.Alarm); ok {
			ids = append(ids, *c.Node().Id())
		}
	}
	return ids
}
