package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	cw "github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// The health Lambda's CloudWatch metrics (internal/health writes them as Embedded Metric Format lines).
const (
	MetricsNamespace         = cwmetric.DefaultNamespace
	MetricHealthOK           = "HealthOK"
	MetricDeadLetterMessages = "DeadLetterMessages"
)

// metric is one of the deployment's own metrics, written by the reader or the health Lambda, under the
// stack's identity: MetricsNamespace and the environment's Service dimension (p.MetricsService), plus dims.
func (p *Pipeline) metric(name, statistic string, period awscdk.Duration, dims map[string]string) cw.Metric {
	dm := map[string]*string{cwmetric.DimService: jsii.String(p.MetricsService)}
	for k, v := range dims {
		dm[k] = jsii.String(v)
	}
	return cw.NewMetric(&cw.MetricProps{
		Namespace:     jsii.String(MetricsNamespace),
		MetricName:    jsii.String(name),
		DimensionsMap: &dm,
		Statistic:     jsii.String(statistic),
		Period:        period,
	})
}

// healthMetric is one of the health Lambda's metrics, written every 5 minutes.
func (p *Pipeline) healthMetric(name, statistic string) cw.Metric {
	return p.metric(name, statistic, awscdk.Duration_Minutes(jsii.Number(5)), nil)
}

// newAlarms watches the health verdict and the dead-letter topic. Both read the health Lambda's metrics:
// it sees the dead-letter topic whichever way the reader runs (service or scheduled), where a log filter
// on the reader's summary line would only see bounded runs, which print it when they exit.
func newAlarms(s awscdk.Stack, p *Pipeline) {
	cw.NewAlarm(s, jsii.String("HealthFailing"), &cw.AlarmProps{
		AlarmDescription:   jsii.String("A pipeline health check failed in 2 of the last 3 runs, or the checks stopped reporting"),
		Metric:             p.healthMetric(MetricHealthOK, "Minimum"),
		Threshold:          jsii.Number(1),
		ComparisonOperator: cw.ComparisonOperator_LESS_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(3),
		DatapointsToAlarm:  jsii.Number(2),
		// No data means the health Lambda did not run or crashed: that is a failing check too.
		TreatMissingData: cw.TreatMissingData_BREACHING,
	})

	growth := cw.NewMathExpression(&cw.MathExpressionProps{
		Expression: jsii.String("DIFF(dlq)"),
		UsingMetrics: &map[string]cw.IMetric{
			"dlq": p.healthMetric(MetricDeadLetterMessages, "Maximum"),
		},
		Label:  jsii.String("Dead letters added in 5 minutes"),
		Period: awscdk.Duration_Minutes(jsii.Number(5)),
	})
	cw.NewAlarm(s, jsii.String("DeadLettersGrowing"), &cw.AlarmProps{
		AlarmDescription:   jsii.String("Lines were dead-lettered since the previous health check"),
		Metric:             growth,
		Threshold:          jsii.Number(0),
		ComparisonOperator: cw.ComparisonOperator_GREATER_THAN_THRESHOLD,
		EvaluationPeriods:  jsii.Number(1),
		TreatMissingData:   cw.TreatMissingData_NOT_BREACHING,
	})
}
