package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/jsii-runtime-go"
)

// newOutputs publishes what the MWAA DAG needs to launch the task definition (EcsRunTaskOperator) and what
// a user needs to find things.
func newOutputs(s awscdk.Stack, p *Pipeline) {
	out := func(id, desc string, value *string) {
		awscdk.NewCfnOutput(s, jsii.String(id), &awscdk.CfnOutputProps{Value: value, Description: jsii.String(desc)})
	}
	out("ClusterName", "ECS cluster of the reader", p.Cluster.ClusterName())
	out("ClusterArn", "ECS cluster ARN", p.Cluster.ClusterArn())
	out("TaskDefinitionArn", "Reader task definition (run it in bounded mode with READER_DURATION)", p.TaskDefinition.TaskDefinitionArn())
	out("TaskRoleArn", "Reader task role (whoever runs the task needs iam:PassRole on it)", p.TaskDefinition.TaskRole().RoleArn())
	out("ExecutionRoleArn", "Reader execution role (iam:PassRole too)", p.TaskDefinition.ExecutionRole().RoleArn())
	out("ReaderLogGroup", "Log group of the reader (stream prefix \"reader\"): JSON logs and the run summary", p.ReaderLogs.LogGroupName())
	out("ContainerName", "Container to override when running the task", jsii.String(ContainerName))
	out("MwaaPolicyArn", "Managed policy to attach to the MWAA execution role: runs the reader's task from the DAG",
		newMwaaPolicy(s, p).ManagedPolicyArn())

	var subnets []string
	for _, sn := range *p.Vpc.SelectSubnets(privateSubnets()).SubnetIds {
		subnets = append(subnets, *sn)
	}
	out("Subnets", "Private subnets for the task (comma-separated)", awscdk.Fn_Join(jsii.String(","), jsii.Strings(subnets...)))
	out("SecurityGroup", "Security group for the task", p.TaskSecurityGroup.SecurityGroupId())
	out("HealthFunctionName", "Scheduled health-check Lambda", p.Health.FunctionName())
	out("BootstrapFunctionName", "ClickHouse bootstrap Lambda (invoke from the console)", p.Bootstrap.FunctionName())
	// The NAT gateway's public address, which every outbound connection (reader, Lambdas) comes from: what
	// ClickHouse Cloud's and Confluent Cloud's IP allow-lists need. Only a VPC the stack creates has it here.
	var natIPs []string
	for _, sn := range *p.Vpc.PublicSubnets() {
		if eip, ok := sn.Node().TryFindChild(jsii.String("EIP")).(awsec2.CfnEIP); ok {
			natIPs = append(natIPs, *eip.AttrPublicIp())
		}
	}
	if len(natIPs) > 0 {
		out("NatGatewayPublicIps", "Public IP(s) of the NAT gateway (comma-separated): allow them on ClickHouse Cloud and Confluent Cloud",
			awscdk.Fn_Join(jsii.String(","), jsii.Strings(natIPs...)))
	}
	out("ScheduleDeadLetterQueueUrl", "SQS queue of the scheduled invocations EventBridge could not deliver (read it as the runbook says)",
		p.ScheduleDeadLetters.QueueUrl())
	if p.Service != nil {
		out("ServiceName", "Always-on reader service", p.Service.ServiceName())
	}
}
