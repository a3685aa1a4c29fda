package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	targets "github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/jsii-runtime-go"
)

// every5Minutes is the cadence of both schedules: the health check, and the bounded reader runs that take
// over the MWAA DAG's schedule.
func every5Minutes() awsevents.Schedule {
	return awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(5)))
}

func newSchedules(s awscdk.Stack, p *Pipeline, props Props) {
	awsevents.NewRule(s, jsii.String("HealthSchedule"), &awsevents.RuleProps{
		Description: jsii.String("Runs the health checks every 5 minutes"),
		Schedule:    every5Minutes(),
		Targets: &[]awsevents.IRuleTarget{targets.NewLambdaFunction(p.Health, &targets.LambdaFunctionProps{
			// A late check is worth nothing: the next one is 5 minutes away.
			RetryAttempts: jsii.Number(0),
			MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(4)),
		})},
	})

	if !props.ScheduledReader {
		return
	}
	awsevents.NewRule(s, jsii.String("ReaderSchedule"), &awsevents.RuleProps{
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
			RetryAttempts: jsii.Number(0),
		})},
	})
}
