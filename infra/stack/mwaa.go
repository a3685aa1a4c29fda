package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// MwaaPolicyID is the construct id of the managed policy an MWAA execution role attaches to run the
// reader's task definition from the DAG (its ARN is the output MwaaPolicyArn).
const MwaaPolicyID = "MwaaRunReaderPolicy"

// MwaaPolicyActions are the actions of that policy: what the DAG's EcsRunTaskOperator calls (run the task,
// poll it until it stops, find it again after a worker restart, stop it when the Airflow task is killed),
// the role hand-over RunTask needs, the tags propagate_tags copies onto the task, and reading the task's log
// stream (the operator follows it; the DAG reads the run summary from it). dags/README.md and
// infra/README.md list the same actions.
var MwaaPolicyActions = []string{
	"ecs:RunTask", "ecs:TagResource", "ecs:DescribeTasks", "ecs:ListTasks", "ecs:StopTask",
	"iam:PassRole", "logs:GetLogEvents",
}

// newMwaaPolicy creates the managed policy, least privilege: RunTask only on the reader's task definition
// family and only into this stack's cluster, the other ECS actions only on this cluster's tasks, PassRole
// only for the task and execution roles and only to ECS tasks, and log reads only on the reader's streams.
func newMwaaPolicy(s awscdk.Stack, p *Pipeline) awsiam.ManagedPolicy {
	clusterArn := p.Cluster.ClusterArn()
	inCluster := &map[string]any{"ArnEquals": map[string]any{"ecs:cluster": clusterArn}}
	taskArns := s.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("ecs"), Resource: jsii.String("task"),
		ResourceName: awscdk.Fn_Join(jsii.String(""), &[]*string{p.Cluster.ClusterName(), jsii.String("/*")}),
	})
	familyArns := s.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("ecs"), Resource: jsii.String("task-definition"),
		ResourceName: awscdk.Fn_Join(jsii.String(""), &[]*string{p.TaskDefinition.Family(), jsii.String(":*")}),
	})
	streamArns := s.FormatArn(&awscdk.ArnComponents{
		Service: jsii.String("logs"), Resource: jsii.String("log-group"), ArnFormat: awscdk.ArnFormat_COLON_RESOURCE_NAME,
		ResourceName: awscdk.Fn_Join(jsii.String(""), &[]*string{
			p.ReaderLogs.LogGroupName(), jsii.String(":log-stream:" + ContainerName + "/*"),
		}),
	})
	return awsiam.NewManagedPolicy(s, jsii.String(MwaaPolicyID), &awsiam.ManagedPolicyProps{
		Description: jsii.String("Attach to an Amazon MWAA execution role: run the log reader's task definition " +
			"from the log_generation_pipeline DAG (runner ecs) and read its log stream"),
		Statements: &[]awsiam.PolicyStatement{
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:        jsii.String("RunReaderTask"),
				Actions:    jsii.Strings("ecs:RunTask"),
				Resources:  &[]*string{familyArns},
				Conditions: inCluster,
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("TagReaderTask"),
				Actions:   jsii.Strings("ecs:TagResource"),
				Resources: &[]*string{taskArns},
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"ecs:CreateAction": "RunTask"},
				},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("WatchReaderTasks"),
				Actions:   jsii.Strings("ecs:DescribeTasks", "ecs:StopTask"),
				Resources: &[]*string{taskArns},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				// ListTasks is authorized on the cluster's container instances, which Fargate has none of:
				// the resource is "*" and the condition limits it to this cluster.
				Sid:        jsii.String("FindReaderTasks"),
				Actions:    jsii.Strings("ecs:ListTasks"),
				Resources:  jsii.Strings("*"),
				Conditions: inCluster,
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:     jsii.String("PassReaderRoles"),
				Actions: jsii.Strings("iam:PassRole"),
				Resources: &[]*string{
					p.TaskDefinition.TaskRole().RoleArn(), p.TaskDefinition.ExecutionRole().RoleArn(),
				},
				Conditions: &map[string]any{
					"StringEquals": map[string]any{"iam:PassedToService": "ecs-tasks.amazonaws.com"},
				},
			}),
			awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
				Sid:       jsii.String("ReadReaderLogs"),
				Actions:   jsii.Strings("logs:GetLogEvents"),
				Resources: &[]*string{streamArns},
			}),
		},
	})
}
