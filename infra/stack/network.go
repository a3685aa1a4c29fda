package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"
)

// interfaceEndpoints are the AWS APIs the reader and the Lambdas call, by construct id: the secrets, the
// reader's image (ECR's API and its Docker registry), the awslogs driver, and the health check's
// GetMetricData. With vpcEndpoints they are reached inside the VPC instead of through the NAT gateway.
var interfaceEndpoints = []struct {
	id      string
	service func() awsec2.InterfaceVpcEndpointAwsService
}{
	{"SecretsManagerEndpoint", awsec2.InterfaceVpcEndpointAwsService_SECRETS_MANAGER},
	{"EcrApiEndpoint", awsec2.InterfaceVpcEndpointAwsService_ECR},
	{"EcrDockerEndpoint", awsec2.InterfaceVpcEndpointAwsService_ECR_DOCKER},
	{"LogsEndpoint", awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_LOGS},
	{"MonitoringEndpoint", awsec2.InterfaceVpcEndpointAwsService_CLOUDWATCH_MONITORING},
}

// newVpcEndpoints adds the VPC endpoints (vpcEndpoints): one interface endpoint per API above in the private
// subnets, with private DNS so that the SDKs' default endpoints resolve to it, admitting HTTPS from the
// reader's and the Lambdas' security groups only; and an S3 gateway endpoint on the private subnets' route
// tables, where ECR keeps the image layers.
func newVpcEndpoints(s awscdk.Stack, p *Pipeline, props Props) {
	if !props.VpcEndpoints {
		return
	}
	p.Vpc.AddGatewayEndpoint(jsii.String("S3Endpoint"), &awsec2.GatewayVpcEndpointOptions{
		Service: awsec2.GatewayVpcEndpointAwsService_S3(),
		Subnets: &[]*awsec2.SubnetSelection{privateSubnets()},
	})
	for _, e := range interfaceEndpoints {
		ep := p.Vpc.AddInterfaceEndpoint(jsii.String(e.id), &awsec2.InterfaceVpcEndpointOptions{
			Service:           e.service(),
			Subnets:           privateSubnets(),
			PrivateDnsEnabled: jsii.Bool(true),
			Open:              jsii.Bool(false),
		})
		for _, sg := range []awsec2.SecurityGroup{p.TaskSecurityGroup, p.FunctionsSecurityGroup} {
			ep.Connections().AllowDefaultPortFrom(sg, jsii.String("HTTPS to the AWS API"))
		}
	}
}

// newEcsServiceLinkedRole creates ECS's service-linked role before the cluster (createEcsServiceLinkedRole).
// In an account that never used ECS, the first cluster and service create it implicitly, and the service
// can fail with "Unable to assume the service linked role" while it propagates. The role is the account's,
// shared by every ECS cluster in it, so the stack leaves it behind on destroy.
func newEcsServiceLinkedRole(s awscdk.Stack, p *Pipeline, props Props) {
	if !props.CreateEcsServiceLinkedRole {
		return
	}
	role := awsiam.NewCfnServiceLinkedRole(s, jsii.String("EcsServiceLinkedRole"), &awsiam.CfnServiceLinkedRoleProps{
		AwsServiceName: jsii.String("ecs.amazonaws.com"),
		Description:    jsii.String("ECS's service-linked role, created before the pipeline's first cluster"),
	})
	role.ApplyRemovalPolicy(awscdk.RemovalPolicy_RETAIN, nil)
	p.Cluster.Node().AddDependency(role)
}
