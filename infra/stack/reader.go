package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// imageContext lists what the reader image's build needs from the repository; everything else (the
// download cache, build output, the DAG, docs) stays out of the asset and out of its hash.
var imageContext = []string{"*", "!go.mod", "!go.sum", "!internal/", "!tasks/"}

func newReader(s awscdk.Stack, p *Pipeline, props Props, readSecret awsiam.PolicyStatement) {
	p.Cluster = awsecs.NewCluster(s, jsii.String("Cluster"), &awsecs.ClusterProps{
		Vpc:                 p.Vpc,
		ContainerInsightsV2: awsecs.ContainerInsights_ENABLED,
	})

	p.TaskDefinition = awsecs.NewFargateTaskDefinition(s, jsii.String("ReaderTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(512),
		MemoryLimitMiB: jsii.Number(1024),
		RuntimePlatform: &awsecs.RuntimePlatform{
			CpuArchitecture:       awsecs.CpuArchitecture_X86_64(),
			OperatingSystemFamily: awsecs.OperatingSystemFamily_LINUX(),
		},
	})
	p.TaskDefinition.AddToTaskRolePolicy(readSecret)

	listenPort, _ := props.ListenPort()
	ports := []*awsecs.PortMapping{{ContainerPort: jsii.Number(MetricsPort), Protocol: awsecs.Protocol_TCP}}
	if listenPort != 0 {
		ports = append(ports, &awsecs.PortMapping{ContainerPort: jsii.Number(float64(listenPort)), Protocol: awsecs.Protocol_TCP})
	}
	p.ReaderLogs = logGroup(s, "ReaderLogs", props)
	p.TaskDefinition.AddContainer(jsii.String(ContainerName), &awsecs.ContainerDefinitionOptions{
		ContainerName: jsii.String(ContainerName),
		Image: awsecs.ContainerImage_FromAsset(jsii.String(props.RepoRoot), &awsecs.AssetImageProps{
			File:       jsii.String("tasks/reader/Dockerfile"),
			Exclude:    jsii.Strings(imageContext...),
			IgnoreMode: awscdk.IgnoreMode_DOCKER,
			Platform:   awsecrassets.Platform_LINUX_AMD64(),
		}),
		Essential: jsii.Bool(true),
		// Configuration only: the Kafka credentials are read from the secret at run time by the reader.
		Environment: &map[string]*string{
			"READER_SOURCE_MODE":  jsii.String(props.SourceMode),
			"READER_SOURCE_ADDR":  sourceAddr(s, props),
			"READER_TOPIC":        jsii.String(props.Topic),
			"READER_DLQ_TOPIC":    jsii.String(props.DLQTopic),
			"READER_CREDENTIALS":  jsii.String("secretsmanager"),
			"READER_SECRET_NAME":  jsii.String(props.SecretName),
			"READER_REGION":       s.Region(),
			"READER_METRICS_ADDR": jsii.String(readerspec.MetricsAddr("0.0.0.0")),
			// The counters reach CloudWatch as EMF records on stdout, through the awslogs driver.
			"READER_EMF_INTERVAL": jsii.String(EMFInterval),
		},
		Logging: awsecs.LogDrivers_AwsLogs(&awsecs.AwsLogDriverProps{
			StreamPrefix: jsii.String(ContainerName),
			LogGroup:     p.ReaderLogs,
		}),
		// The image is distroless; its busybox answers the probe without a shell.
		HealthCheck: &awsecs.HealthCheck{
			Command: jsii.Strings("CMD", "/usr/local/bin/busybox", "wget", "-q", "-O", "/dev/null",
				"http://"+readerspec.MetricsAddr("127.0.0.1")+readerspec.HealthPath),
			Interval:    awscdk.Duration_Seconds(jsii.Number(30)),
			Timeout:     awscdk.Duration_Seconds(jsii.Number(5)),
			Retries:     jsii.Number(3),
			StartPeriod: awscdk.Duration_Seconds(jsii.Number(60)),
		},
		PortMappings: &ports,
		// SIGTERM starts the drain; ECS waits this long before SIGKILL (Fargate's maximum is 120s).
		StopTimeout: awscdk.Duration_Seconds(jsii.Number(60)),
	})

	p.TaskSecurityGroup = awsec2.NewSecurityGroup(s, jsii.String("ReaderSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              p.Vpc,
		Description:      jsii.String("Reader tasks: outbound to Kafka, Secrets Manager and the log source"),
		AllowAllOutbound: jsii.Bool(true),
	})
	if listenPort != 0 {
		from := awsec2.Peer_Ipv4(p.Vpc.VpcCidrBlock())
		if props.AllowedSourceCIDR != "" {
			from = awsec2.Peer_Ipv4(jsii.String(props.AllowedSourceCIDR))
		}
		p.TaskSecurityGroup.AddIngressRule(from, awsec2.Port_Tcp(jsii.Number(float64(listenPort))),
			jsii.String("log sources"), nil)
		if props.LoadBalancer {
			// The load balancer's health checks come from its own addresses inside the VPC.
			p.TaskSecurityGroup.AddIngressRule(awsec2.Peer_Ipv4(p.Vpc.VpcCidrBlock()),
				awsec2.Port_Tcp(jsii.Number(MetricsPort)), jsii.String("load balancer health checks"), nil)
		}
	}

	if props.ReaderDesiredCount == 0 {
		return
	}
	minHealthy, maxHealthy := deploymentPercents(props)
	p.Service = awsecs.NewFargateService(s, jsii.String("ReaderService"), &awsecs.FargateServiceProps{
		Cluster:           p.Cluster,
		TaskDefinition:    p.TaskDefinition,
		DesiredCount:      jsii.Number(float64(props.ReaderDesiredCount)),
		MinHealthyPercent: jsii.Number(minHealthy),
		MaxHealthyPercent: jsii.Number(maxHealthy),
		CircuitBreaker:    &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
		VpcSubnets:        privateSubnets(),
		SecurityGroups:    &[]awsec2.ISecurityGroup{p.TaskSecurityGroup},
		AssignPublicIp:    jsii.Bool(false),
	})
	addReaderScaling(p, props)
	if props.LoadBalancer {
		newLoadBalancer(s, p, props, listenPort)
	}
}

// newLoadBalancer puts a TCP Network Load Balancer in front of the listening readers. It passes client
// addresses through, so the tasks' security group is what admits sources.
func newLoadBalancer(s awscdk.Stack, p *Pipeline, props Props, port int) {
	nlb := elb.NewNetworkLoadBalancer(s, jsii.String("ReaderLoadBalancer"), &elb.NetworkLoadBalancerProps{
		Vpc:                p.Vpc,
		InternetFacing:     jsii.Bool(props.PublicLoadBalancer),
		CrossZoneEnabled:   jsii.Bool(true),
		DeletionProtection: jsii.Bool(props.DeletionProtection),
	})
	listener := nlb.AddListener(jsii.String("Logs"), &elb.BaseNetworkListenerProps{
		Port:     jsii.Number(float64(port)),
		Protocol: elb.Protocol_TCP,
	})
	listener.AddTargets(jsii.String("Readers"), &elb.AddNetworkTargetsProps{
		Port:     jsii.Number(float64(port)),
		Protocol: elb.Protocol_TCP,
		Targets: &[]elb.INetworkLoadBalancerTarget{p.Service.LoadBalancerTarget(&awsecs.LoadBalancerTargetOptions{
			ContainerName: jsii.String(ContainerName),
			ContainerPort: jsii.Number(float64(port)),
		})},
		HealthCheck: &elb.HealthCheck{
			Protocol: elb.Protocol_HTTP,
			Port:     itoa(MetricsPort),
			Path:     jsii.String("/healthz"),
		},
		// Readers drain on SIGTERM; give open connections that long before the target is dropped.
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(60)),
	})
	awscdk.NewCfnOutput(s, jsii.String("LoadBalancerDns"), &awscdk.CfnOutputProps{
		Value:       nlb.LoadBalancerDnsName(),
		Description: jsii.String("Where log sources connect (listen mode)"),
	})
}
