package stack

import (
	"strconv"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// Names other parts of the project rely on: the DAG overrides the container by name, and the health
// Lambda's metrics are what the alarms watch.
const (
	ContainerName  = "reader"
	MetricsPort    = readerspec.MetricsPort
	BoundedRunTime = "4m"
)

// Pipeline is the stack and the constructs its tests and outputs refer to.
type Pipeline struct {
	awscdk.Stack

	Vpc               awsec2.IVpc
	Cluster           awsecs.Cluster
	TaskDefinition    awsecs.FargateTaskDefinition
	TaskSecurityGroup awsec2.SecurityGroup
	// FunctionsSecurityGroup is both Lambdas'.
	FunctionsSecurityGroup awsec2.SecurityGroup
	// LoadBalancerSecurityGroup is the Network Load Balancer's (nil without one).
	LoadBalancerSecurityGroup awsec2.SecurityGroup
	ReaderLogs                awslogs.LogGroup
	Service                   awsecs.FargateService // nil when ReaderDesiredCount is 0
	Health                    awslambda.Function
	Bootstrap                 awslambda.Function
	AlarmTopic                awssns.Topic
	// ScheduleDeadLetters holds the scheduled invocations EventBridge could not deliver.
	ScheduleDeadLetters awssqs.Queue
	// MetricsService is the Service dimension of every metric the reader and the health Lambda write in
	// this deployment, and of every alarm and graph that reads them: cwmetric.ServiceFor the environment.
	MetricsService string
}

// NewPipelineStack defines the whole AWS side of the pipeline. props must have passed Validate.
func NewPipelineStack(scope constructs.Construct, id string, props Props) *Pipeline {
	props = props.WithDefaults()
	if props.DeletionProtection {
		props.StackProps.TerminationProtection = jsii.Bool(true)
	}
	s := awscdk.NewStack(scope, &id, &props.StackProps)
	p := &Pipeline{Stack: s, MetricsService: cwmetric.ServiceFor(props.EnvName)}

	p.Vpc = newVpc(s, props)
	secretArn := secretArnPattern(s, props.SecretName)
	readSecret := awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadKafkaSecret"),
		Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
		Resources: jsii.Strings(secretArn),
	})

	newReader(s, p, props, readSecret)
	newLambdas(s, p, props, readSecret)
	newVpcEndpoints(s, p, props)
	newSchedules(s, p, props)
	newAlarms(s, p)
	newMonitoring(s, p, props)
	newOutputs(s, p)
	addNagSuppressions(s, p, props)
	return p
}

// secretArnPattern is the ARN of the named secret in this stack's account and region. Secrets Manager
// appends six random characters to a secret's name in its ARN, so the pattern ends in "-??????": it matches
// that one secret and not another whose name merely starts the same way.
func secretArnPattern(s awscdk.Stack, name string) string {
	return *s.FormatArn(&awscdk.ArnComponents{
		Service:      jsii.String("secretsmanager"),
		Resource:     jsii.String("secret"),
		ResourceName: jsii.String(name + "-??????"),
		ArnFormat:    awscdk.ArnFormat_COLON_RESOURCE_NAME,
	})
}

// vpcZones is how many availability zones the VPC the stack creates spans.
const vpcZones = 2

func newVpc(s awscdk.Stack, props Props) awsec2.IVpc {
	if props.VpcID != "" {
		return awsec2.Vpc_FromLookup(s, jsii.String("Vpc"), &awsec2.VpcLookupOptions{VpcId: jsii.String(props.VpcID)})
	}
	flowLogs := logGroup(s, "VpcFlowLogs", props)
	nats := 1
	if props.NatGatewayPerAZ {
		nats = vpcZones
	}
	return awsec2.NewVpc(s, jsii.String("Vpc"), &awsec2.VpcProps{
		MaxAzs:      jsii.Number(vpcZones),
		NatGateways: jsii.Number(float64(nats)),
		SubnetConfiguration: &[]*awsec2.SubnetConfiguration{
			{Name: jsii.String("public"), SubnetType: awsec2.SubnetType_PUBLIC, CidrMask: jsii.Number(24)},
			{Name: jsii.String("private"), SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS, CidrMask: jsii.Number(24)},
		},
		// Nothing in the stack uses the default security group; restricting it would take a custom
		// resource Lambda of CDK's own that the stack otherwise does without.
		RestrictDefaultSecurityGroup: jsii.Bool(false),
		FlowLogs: &map[string]*awsec2.FlowLogOptions{
			"rejected": {
				Destination: awsec2.FlowLogDestination_ToCloudWatchLogs(flowLogs, nil),
				TrafficType: awsec2.FlowLogTrafficType_REJECT,
			},
		},
	})
}

// logGroup creates a log group with the configured retention, removed with the stack unless RetainLogs.
func logGroup(scope constructs.Construct, id string, props Props) awslogs.LogGroup {
	removal := awscdk.RemovalPolicy_DESTROY
	if props.RetainLogs {
		removal = awscdk.RemovalPolicy_RETAIN
	}
	return awslogs.NewLogGroup(scope, jsii.String(id), &awslogs.LogGroupProps{
		Retention:     retentions[props.LogRetentionDays],
		RemovalPolicy: removal,
	})
}

func privateSubnets() *awsec2.SubnetSelection {
	return &awsec2.SubnetSelection{SubnetType: awsec2.SubnetType_PRIVATE_WITH_EGRESS}
}

func itoa(n int) *string { return jsii.String(strconv.Itoa(n)) }
