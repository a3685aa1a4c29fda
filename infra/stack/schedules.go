package stack

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	targets "github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// Alarm names (construct ids) of the schedules; the runbook has a section for each.
const (
	AlarmScheduleInvocationsFailed = "ScheduleInvocationsFailed"
	AlarmScheduleDeadLetters       = "ScheduleDeadLetters"
)

// Retries of a scheduled invocation that EventBridge could not deliver (throttling, a service error, a
// RunTask failure such as no Fargate capacity), and how long it keeps trying: a health check is worth
// running until the next one is due, a bounded reader run only shortly after its time, since a late run
// would overlap the next one on the same source.
const (
	ScheduleRetryAttempts = 2
	healthMaxEventAge     = 4  // minutes
	readerMaxEventAge     = 60 // seconds: EventBridge's minimum
)

// every5Minutes is the cadence of both schedules: the health check, and the bounded reader runs that take
// over the MWAA DAG's schedule.
func every5Minutes() awsevents.Schedule {
	return awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(5)))
}

// newSchedules defines the schedules, their dead-letter queue (what EventBridge could not deliver after its
// retries lands there with the error, instead of vanishing) and their alarms.
func newSchedules(s awscdk.Stack, p *Pipeline, props Props) {
	// SQS-managed encryption: EventBridge can write to it with no key policy to keep in step, and nothing
	// but the stack reads it. The queue policy CDK adds lets only this stack's rules send to it.
	p.ScheduleDeadLetters = awssqs.NewQueue(s, jsii.String("ScheduleDeadLetterQueue"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)),
	})
	rules := []awsevents.Rule{awsevents.NewRule(s, jsii.String("HealthSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the health checks every 5 minutes"),
		Schedule:    every5Minutes(),
		Targets: &[]awsevents.IRuleTarget{targets.NewLambdaFunction(p.Health, &targets.LambdaFunctionProps{
			RetryAttempts:   jsii.Number(ScheduleRetryAttempts),
			MaxEventAge:     awscdk.Duration_Minutes(jsii.Number(healthMaxEventAge)),
			DeadLetterQueue: p.ScheduleDeadLetters,
		})},
	})}

	if props.ScheduledReader {
		rules = append(rules, awsevents.NewRule(s, jsii.String("ReaderSchedule"), &awsevents.RuleProps{
			Description: jsii.String("Runs the reader for " + BoundedRunTime + " every 5 minutes (bounded mode)"),
			Schedule:    every5Minutes(),
			Targets: &[]awsevents.IRuleTarget{targets.NewEcsTask(&targets.EcsTaskProps{
				Cluster:         p.Cluster,
				TaskDefinition:  p.TaskDefinition,
				LaunchType:      awsecs.LaunchType_FARGATE,
				PlatformVersion: awsecs.FargatePlatformVersion_LATEST,
				SubnetSelection: privateSubnets(),
				SecurityGroups:  &[]awsec2.ISecurityGroup{p.TaskSecurityGroup},
				AssignPublicIp:  jsii.Bool(false),
				ContainerOverrides: &[]*targets.ContainerOverride{{
					ContainerName: jsii.String(ContainerName),
					Environment: &[]*targets.TaskEnvironmentVariable{{
						Name: jsii.String("READER_DURATION"), Value: jsii.String(BoundedRunTime),
					}},
				}},
				RetryAttempts:   jsii.Number(ScheduleRetryAttempts),
				MaxEventAge:     awscdk.Duration_Seconds(jsii.Number(readerMaxEventAge)),
				DeadLetterQueue: p.ScheduleDeadLetters,
			})},
		}))
	}
	newScheduleAlarms(s, p, rules)
}

// newScheduleAlarms watches the schedules: an invocation that failed after its retries (or could not even
// be put on the dead-letter queue), and events waiting on the dead-letter queue, which stay there until
// someone reads them.
func newScheduleAlarms(s awscdk.Stack, p *Pipeline, rules []awsevents.Rule) {
	five := awscdk.Duration_Minutes(jsii.Number(5))
	failures := map[string]cw.IMetric{}
	for i, r := range rules {
		for j, name := range []string{"FailedInvocations", "InvocationsFailedToBeSentToDlq"} {
			failures[fmt.Sprintf("m%d", 2*i+j)] = cw.NewMetric(&cw.MetricProps{
				Namespace:     jsii.String("AWS/Events"),
				MetricName:    jsii.String(name),
				DimensionsMap: &map[string]*string{"RuleName": r.RuleName()},
				Statistic:     jsii.String("Sum"),
				Period:        five,
			})
		}
	}
	cw.NewAlarm(s, jsii.String(AlarmScheduleInvocationsFailed), &cw.AlarmProps{
		AlarmDescription: jsii.String("A scheduled invocation (health check or bounded reader run) failed after EventBridge's retries"),
		Metric: cw.NewMathExpression(&cw.MathExpressionProps{
			Expression:   jsii.String("SUM(FILL(METRICS(), 0))"),
			UsingMetrics: &failures,
			Label:        jsii.String("Scheduled invocations failed"),
			Period:       five,
		}),
		Threshold:          jsii.Number(0),
		ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
	})
	cw.NewAlarm(s, jsii.String(AlarmScheduleDeadLetters), &cw.AlarmProps{
		AlarmDescription: jsii.String("Scheduled invocations EventBridge could not deliver wait on the schedules' dead-letter queue"),
		Metric: p.ScheduleDeadLetters.MetricApproximateNumberOfMessagesVisible(&cw.MetricOptions{
			Statistic: jsii.String("Maximum"), Period: five,
		}),
		Threshold:          jsii.Number(0),
		ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
	})
}
