package stack

import (
	"slices"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// CheckWithNag runs cdk-nag's AwsSolutions pack over every stack of app. Findings become error and warning
// annotations; CheckNagFindings turns any unsuppressed one, of either level, into a failed synth.
func CheckWithNag(app awscdk.App) {
	awscdk.Aspects_Of(app).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{Verbose: jsii.Bool(true)}), nil)
}

// Suppression is one accepted cdk-nag finding on one construct, and why it is accepted.
type Suppression struct {
	// Path is the construct's path under the stack, e.g. "ReaderTask/ExecutionRole".
	Path string
	// ID is the rule, e.g. "AwsSolutions-IAM5".
	ID string
	// AppliesTo narrows a granular rule to these findings (exact, as cdk-nag prints them).
	AppliesTo []string
	Reason    string
}

const (
	lambdaBasicPolicy = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"
	lambdaVPCPolicy   = "Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"
)

// Suppressions lists every cdk-nag finding the stack accepts, given its props. Each names the construct,
// the rule and, for granular rules, the exact finding, so a new finding of the same rule still fails.
func (p *Pipeline) Suppressions(props Props) []Suppression {
	props = props.WithDefaults()
	out := []Suppression{
		{
			Path: "ReaderTask", ID: "AwsSolutions-ECS2",
			Reason: "The environment holds configuration only (source address, topics, secret name, region); " +
				"the Kafka credentials are read from Secrets Manager by the reader at run time, never injected.",
		},
		{
			Path: "ReaderTask/ExecutionRole", ID: "AwsSolutions-IAM5", AppliesTo: []string{"Resource::*"},
			Reason: "CDK's execution-role policy: ecr:GetAuthorizationToken supports no resource-level " +
				"permissions; image pulls and log writes are scoped to the image repository and the log group.",
		},
	}
	// A stack pinned to a region has its partition as a literal (@aws-cdk/core:enablePartitionLiterals).
	partition := nagToken(p.Stack.Partition(), "<AWS::Partition>")
	where := nagToken(p.Stack.Region(), "<AWS::Region>") + ":" + nagToken(p.Stack.Account(), "<AWS::AccountId>")
	out = append(out, Suppression{
		Path: MwaaPolicyID, ID: "AwsSolutions-IAM5",
		AppliesTo: []string{
			"Resource::arn:" + partition + ":ecs:" + where + ":task-definition/" + *p.TaskDefinition.Family() + ":*",
			"Resource::arn:" + partition + ":ecs:" + where + ":task/<" + p.clusterLogicalID() + ">/*",
			"Resource::*",
			"Resource::arn:" + partition + ":logs:" + where + ":log-group:<" + p.logicalID(p.ReaderLogs) +
				">:log-stream:" + ContainerName + "/*",
		},
		Reason: "The MWAA policy runs any revision of the reader's task definition family (each deploy adds one), " +
			"in this cluster only; watches and stops tasks whose ids are not known in advance, in this cluster " +
			"only; lists tasks with the cluster as condition (ListTasks has no task-level resource); and reads " +
			"only the reader's log streams, whose names end in the task id.",
	})
	for _, fn := range []string{"Health", "Bootstrap"} {
		out = append(out, Suppression{
			Path: fn + "/ServiceRole", ID: "AwsSolutions-IAM4", AppliesTo: []string{lambdaBasicPolicy, lambdaVPCPolicy},
			Reason: "AWS-maintained minimal policies for a Lambda in a VPC: writing its own logs and managing " +
				"its network interfaces (ec2:CreateNetworkInterface has no resource-level scoping).",
		})
	}
	out = append(out, Suppression{
		Path: "ScheduleDeadLetterQueue", ID: "AwsSolutions-SQS3",
		Reason: "This queue is the dead-letter queue of the schedules' EventBridge targets; nothing consumes it " +
			"automatically, so no message can fail a receive and need a dead-letter queue of its own.",
	})
	if props.ReaderHealthURL == "" {
		out = append(out, Suppression{
			Path: "Health/ServiceRole/DefaultPolicy", ID: "AwsSolutions-IAM5", AppliesTo: []string{"Resource::*"},
			Reason: "cloudwatch:GetMetricData supports no resource-level permissions; the health Lambda reads the " +
				"reader's metrics with it and has no other use of CloudWatch.",
		})
	}
	if props.ScheduledReader {
		out = append(out, Suppression{
			Path: "ReaderTask/EventsRole", ID: "AwsSolutions-IAM5",
			AppliesTo: []string{"Resource::arn:<AWS::Partition>:ecs:<AWS::Region>:*:task/<" + p.clusterLogicalID() + ">/*"},
			Reason: "CDK's EventBridge role for the scheduled run tags the tasks it starts: task ids are not " +
				"known in advance, and the pattern is limited to this stack's cluster.",
		})
	}
	if props.LoadBalancer {
		reason := "Network Load Balancer access logs only record TLS listeners; this one passes TCP through " +
			"(the reader terminates TLS), and the reader logs each connection itself with the client's address."
		if props.SourceTLS == SourceTLSLoadBalancer {
			reason = "The reader logs each connection itself with the client's address (client IP preservation " +
				"is on), so the balancer's TLS access logs would only repeat it, in a bucket of their own."
		}
		out = append(out, Suppression{Path: "ReaderLoadBalancer", ID: "AwsSolutions-ELB2", Reason: reason})
	}
	if props.SourceMode == SourceListen && props.VpcID == "" && len(props.AllowedSourceCIDRs) == 0 {
		path := "ReaderSecurityGroup"
		if props.LoadBalancer && props.ReaderDesiredCount > 0 {
			path = "ReaderLoadBalancerSecurityGroup"
		}
		out = append(out, Suppression{
			Path: path, ID: "CdkNagValidationFailure", AppliesTo: []string{"AwsSolutions-EC23"},
			Reason: "The listen port is open to the new VPC's own CIDR, a token cdk-nag cannot resolve at synth " +
				"time; no rule of this stack opens it to 0.0.0.0/0.",
		})
	}
	if props.SourceMode == SourceListen && slices.Contains(props.AllowedSourceCIDRs, "0.0.0.0/0") {
		path := "ReaderSecurityGroup"
		if props.LoadBalancer && props.ReaderDesiredCount > 0 {
			path = "ReaderLoadBalancerSecurityGroup"
		}
		out = append(out, Suppression{
			Path: path, ID: "AwsSolutions-EC23",
			Reason: "allowedSourceCidr=0.0.0.0/0 was set explicitly: log sources connect from anywhere to the " +
				"listen port, and only to it; an internet-facing balancer requires mutual TLS (sourceTlsMutual).",
		})
	}
	return out
}

// nagToken is how cdk-nag writes a value in a finding: a deploy-time token as its placeholder, a value the
// stack was given (an explicit region or account) as itself.
func nagToken(v *string, placeholder string) string {
	if *awscdk.Token_IsUnresolved(v) {
		return placeholder
	}
	return *v
}

func (p *Pipeline) clusterLogicalID() string {
	return p.logicalID(p.Cluster)
}

func (p *Pipeline) logicalID(c constructs.IConstruct) string {
	return *p.Stack.GetLogicalId(c.Node().DefaultChild().(awscdk.CfnElement))
}

func addNagSuppressions(s awscdk.Stack, p *Pipeline, props Props) {
	for _, sup := range p.Suppressions(props) {
		ns := &cdknag.NagPackSuppression{Id: jsii.String(sup.ID), Reason: jsii.String(sup.Reason)}
		if len(sup.AppliesTo) > 0 {
			applies := make([]any, len(sup.AppliesTo))
			for i, a := range sup.AppliesTo {
				applies[i] = a
			}
			ns.AppliesTo = &applies
		}
		var target constructs.IConstruct = s
		for _, seg := range strings.Split(sup.Path, "/") {
			target = target.Node().FindChild(jsii.String(seg))
		}
		cdknag.NagSuppressions_AddResourceSuppressions(target, &[]*cdknag.NagPackSuppression{ns}, jsii.Bool(true))
	}
}
