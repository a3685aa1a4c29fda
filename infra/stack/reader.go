package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecrassets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	elb "github.com/aws/aws-cdk-go/awscdk/v2/awselasticloadbalancingv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// ReaderUser is the numeric uid:gid the reader's container runs as: tasks/reader/Dockerfile's USER (the
// distroless image's "nonroot"). The task definition names it too, so ECS enforces it whatever the image says.
const ReaderUser = "65532:65532"

// imageContext lists what the reader image's build needs from the repository; everything else (the
// download cache, build output, the DAG, docs) stays out of the asset and out of its hash.
var imageContext = []string{"*", "!go.mod", "!go.sum", "!internal/", "!tasks/"}

func newReader(s awscdk.Stack, p *Pipeline, props Props, readSecret awsiam.PolicyStatement) {
	p.Cluster = awsecs.NewCluster(s, jsii.String("Cluster"), &awsecs.ClusterProps{
		Vpc:                 p.Vpc,
		ContainerInsightsV2: awsecs.ContainerInsights_ENABLED,
	})
	newEcsServiceLinkedRole(s, p, props)

	p.TaskDefinition = awsecs.NewFargateTaskDefinition(s, jsii.String("ReaderTask"), &awsecs.FargateTaskDefinitionProps{
		Cpu:            jsii.Number(512),
		MemoryLimitMiB: jsii.Number(readerspec.TaskMemoryMiB),
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
	env := map[string]*string{
		"READER_SOURCE_MODE":  jsii.String(props.SourceMode),
		"READER_SOURCE_ADDR":  sourceAddr(s, props),
		"READER_TOPIC":        jsii.String(props.Topic),
		"READER_DLQ_TOPIC":    jsii.String(props.DLQTopic),
		"READER_CREDENTIALS":  jsii.String("secretsmanager"),
		"READER_SECRET_NAME":  jsii.String(props.SecretName),
		"READER_REGION":       s.Region(),
		"READER_METRICS_ADDR": jsii.String(readerspec.MetricsAddr("0.0.0.0")),
		// The Go heap's soft limit, below the task's memory by what Go does not count (librdkafka's C heap,
		// socket buffers): the garbage collector works harder before the task is OOM-killed.
		"GOMEMLIMIT": jsii.String(readerspec.GoMemLimitEnv(readerspec.TaskMemoryMiB)),
		// The counters reach CloudWatch as EMF records on stdout, through the awslogs driver, under the
		// deployment's metric identity, which the alarms, the dashboard and the health Lambda read.
		"READER_EMF_INTERVAL":  jsii.String(EMFInterval),
		"READER_EMF_NAMESPACE": jsii.String(MetricsNamespace),
		"READER_EMF_SERVICE":   jsii.String(p.MetricsService),
	}
	for k, v := range sourceTLSEnv(props) {
		env[k] = jsii.String(v)
	}
	p.TaskDefinition.AddContainer(jsii.String(ContainerName), &awsecs.ContainerDefinitionOptions{
		ContainerName: jsii.String(ContainerName),
		Image: awsecs.ContainerImage_FromAsset(jsii.String(props.RepoRoot), &awsecs.AssetImageProps{
			File:       jsii.String("tasks/reader/Dockerfile"),
			Exclude:    jsii.Strings(imageContext...),
			IgnoreMode: awscdk.IgnoreMode_DOCKER,
			Platform:   awsecrassets.Platform_LINUX_AMD64(),
		}),
		Essential: jsii.Bool(true),
		// The reader writes no file (dead letters go to a topic, the summary to stdout), so nothing in the
		// image is writable, and it runs as the image's unprivileged user.
		ReadonlyRootFilesystem: jsii.Bool(true),
		User:                   jsii.String(ReaderUser),
		// Configuration only: the Kafka credentials are read from the secret at run time by the reader.
		Environment: &env,
		// The reader's TLS certificate and key (and the CA that verifies clients) from their own secret, as
		// READER_SOURCE_TLS_*_PEM variables: never in the template, never on a command line.
		Secrets: sourceTLSSecrets(s, props),
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
	if behindBalancer := props.LoadBalancer && props.ReaderDesiredCount > 0; listenPort != 0 && !behindBalancer {
		// No load balancer: the sources reach the tasks directly.
		for _, from := range sourcePeers(p, props) {
			p.TaskSecurityGroup.AddIngressRule(from, awsec2.Port_Tcp(jsii.Number(float64(listenPort))),
				jsii.String("log sources"), nil)
		}
	}

	if props.ReaderDesiredCount == 0 {
		return
	}
	minHealthy, maxHealthy := deploymentPercents(props)
	p.Service = awsecs.NewFargateService(s, jsii.String("ReaderService"), &awsecs.FargateServiceProps{
		Cluster:                p.Cluster,
		TaskDefinition:         p.TaskDefinition,
		DesiredCount:           jsii.Number(float64(props.ReaderDesiredCount)),
		MinHealthyPercent:      jsii.Number(minHealthy),
		MaxHealthyPercent:      jsii.Number(maxHealthy),
		CircuitBreaker:         &awsecs.DeploymentCircuitBreaker{Rollback: jsii.Bool(true)},
		HealthCheckGracePeriod: healthCheckGrace(props),
		VpcSubnets:             privateSubnets(),
		SecurityGroups:         &[]awsec2.ISecurityGroup{p.TaskSecurityGroup},
		AssignPublicIp:         jsii.Bool(false),
	})
	addReaderScaling(p, props)
	if props.LoadBalancer {
		newLoadBalancer(s, p, props, listenPort)
	}
}

// ReaderAcceptGraceMinutes is how long ECS ignores a failing load balancer health check of a new reader
// (listen mode behind the balancer): the time a reader may take to read its secret and find its topics
// before it is replaced. A reader waiting for a missing secret stays up that long; fixing the secret within
// it lets the deployment complete.
const ReaderAcceptGraceMinutes = 10

// healthCheckGrace is the service's grace period for load balancer health checks; nil (none) without one.
func healthCheckGrace(props Props) awscdk.Duration {
	if !props.LoadBalancer {
		return nil
	}
	return awscdk.Duration_Minutes(jsii.Number(ReaderAcceptGraceMinutes))
}

// sourcePeers are the networks allowed to reach the listen port: allowedSourceCidr, or the VPC's CIDR.
func sourcePeers(p *Pipeline, props Props) []awsec2.IPeer {
	if len(props.AllowedSourceCIDRs) == 0 {
		return []awsec2.IPeer{awsec2.Peer_Ipv4(p.Vpc.VpcCidrBlock())}
	}
	var out []awsec2.IPeer
	for _, c := range props.AllowedSourceCIDRs {
		out = append(out, awsec2.Peer_Ipv4(jsii.String(c)))
	}
	return out
}

// sourceTLSEnv is the reader's TLS configuration as READER_* variables (the files' contents come as
// secrets, see sourceTLSSecrets).
func sourceTLSEnv(props Props) map[string]string {
	if props.SourceTLS != SourceTLSReader {
		return nil
	}
	env := map[string]string{"READER_SOURCE_TLS": "true"}
	if props.SourceTLSAllowedClients != "" {
		env["READER_SOURCE_TLS_ALLOWED_CLIENTS"] = props.SourceTLSAllowedClients
	}
	return env
}

// sourceTLSSecrets maps the TLS secret's JSON keys onto the reader's READER_SOURCE_TLS_*_PEM variables.
func sourceTLSSecrets(s awscdk.Stack, props Props) *map[string]awsecs.Secret {
	if props.SourceTLS != SourceTLSReader || props.SourceTLSSecret == "" {
		return nil
	}
	secret := awssecretsmanager.Secret_FromSecretNameV2(s, jsii.String("SourceTlsSecret"), jsii.String(props.SourceTLSSecret))
	out := map[string]awsecs.Secret{}
	if props.SourceMode == SourceListen {
		out["READER_SOURCE_TLS_CERT_PEM"] = awsecs.Secret_FromSecretsManager(secret, jsii.String("cert"))
		out["READER_SOURCE_TLS_KEY_PEM"] = awsecs.Secret_FromSecretsManager(secret, jsii.String("key"))
	}
	if props.SourceTLSMutual || props.SourceMode == SourceConnect {
		out["READER_SOURCE_TLS_CA_PEM"] = awsecs.Secret_FromSecretsManager(secret, jsii.String("ca"))
	}
	return &out
}

// newLoadBalancer puts a Network Load Balancer in front of the listening readers. Its listener is TCP
// when the reader terminates TLS (end to end: client certificates reach the reader) and TLS with an ACM
// certificate when the balancer does. Client IP preservation is on, so the reader's logs and metrics name
// the real source. Its security group admits the source CIDRs on the listen port and reaches the tasks on
// the listen and health-check ports; the tasks admit only it.
func newLoadBalancer(s awscdk.Stack, p *Pipeline, props Props, port int) {
	p.LoadBalancerSecurityGroup = awsec2.NewSecurityGroup(s, jsii.String("ReaderLoadBalancerSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              p.Vpc,
		Description:      jsii.String("Reader load balancer: log sources in, readers and their health checks out"),
		AllowAllOutbound: jsii.Bool(false),
	})
	for _, from := range sourcePeers(p, props) {
		p.LoadBalancerSecurityGroup.AddIngressRule(from, awsec2.Port_Tcp(jsii.Number(float64(port))), jsii.String("log sources"), nil)
	}
	for _, rule := range []struct {
		port int
		what string
	}{{port, "log lines to the readers"}, {MetricsPort, "health checks of the readers"}} {
		p.LoadBalancerSecurityGroup.AddEgressRule(p.TaskSecurityGroup, awsec2.Port_Tcp(jsii.Number(float64(rule.port))), jsii.String(rule.what), nil)
		p.TaskSecurityGroup.AddIngressRule(p.LoadBalancerSecurityGroup, awsec2.Port_Tcp(jsii.Number(float64(rule.port))),
			jsii.String("from the load balancer: "+rule.what), nil)
	}
	nlb := elb.NewNetworkLoadBalancer(s, jsii.String("ReaderLoadBalancer"), &elb.NetworkLoadBalancerProps{
		Vpc:                p.Vpc,
		InternetFacing:     jsii.Bool(props.PublicLoadBalancer),
		CrossZoneEnabled:   jsii.Bool(true),
		DeletionProtection: jsii.Bool(props.DeletionProtection),
		SecurityGroups:     &[]awsec2.ISecurityGroup{p.LoadBalancerSecurityGroup},
	})
	lp := &elb.BaseNetworkListenerProps{Port: jsii.Number(float64(port)), Protocol: elb.Protocol_TCP}
	if props.SourceTLS == SourceTLSLoadBalancer {
		lp.Protocol = elb.Protocol_TLS
		lp.SslPolicy = elb.SslPolicy_RECOMMENDED_TLS
		lp.Certificates = &[]elb.IListenerCertificate{elb.ListenerCertificate_FromArn(jsii.String(props.LoadBalancerCertificateArn))}
	}
	listener := nlb.AddListener(jsii.String("Logs"), lp)
	listener.AddTargets(jsii.String("Readers"), &elb.AddNetworkTargetsProps{
		Port:     jsii.Number(float64(port)),
		Protocol: elb.Protocol_TCP,
		Targets: &[]elb.INetworkLoadBalancerTarget{p.Service.LoadBalancerTarget(&awsecs.LoadBalancerTargetOptions{
			ContainerName: jsii.String(ContainerName),
			ContainerPort: jsii.Number(float64(port)),
		})},
		// Off by default for ip targets: without it the readers would see the balancer's addresses.
		PreserveClientIp: jsii.Bool(true),
		// New sources go only to readers that accept them: credentials read, topics found, listen port
		// open, not stopping (/acceptingz). Not /healthz, which answers while the reader waits for its
		// secret or its brokers; not /readyz, which follows every Kafka probe, because ECS replaces a task
		// whose target is unhealthy, so a Kafka outage would replace every reader and fail the lines TCP
		// holds back at each drain. Not the listen port itself: with TLS at the reader each check would be
		// a refused handshake in its logs and metrics.
		HealthCheck: &elb.HealthCheck{
			Protocol:                elb.Protocol_HTTP,
			Port:                    itoa(MetricsPort),
			Path:                    jsii.String(readerspec.AcceptingPath),
			Interval:                awscdk.Duration_Seconds(jsii.Number(10)),
			HealthyThresholdCount:   jsii.Number(2),
			UnhealthyThresholdCount: jsii.Number(2),
		},
		// Readers drain on SIGTERM; give open connections that long before the target is dropped.
		DeregistrationDelay: awscdk.Duration_Seconds(jsii.Number(60)),
	})
	awscdk.NewCfnOutput(s, jsii.String("LoadBalancerDns"), &awscdk.CfnOutputProps{
		Value:       nlb.LoadBalancerDnsName(),
		Description: jsii.String("Where log sources connect (listen mode)"),
	})
}
