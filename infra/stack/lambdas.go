package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsec2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
)

// newLambdas defines the health and bootstrap functions: Go binaries for provided.al2023, built while the
// app synthesizes (see lambdaCode). Both run in the private subnets, reaching Kafka, ClickHouse
// and Secrets Manager through the NAT gateway, and the reader's health endpoint directly.
func newLambdas(s awscdk.Stack, p *Pipeline, props Props, readSecret awsiam.PolicyStatement) {
	p.FunctionsSecurityGroup = awsec2.NewSecurityGroup(s, jsii.String("FunctionsSecurityGroup"), &awsec2.SecurityGroupProps{
		Vpc:              p.Vpc,
		Description:      jsii.String("Lambdas: outbound to Kafka, ClickHouse, Secrets Manager and the reader"),
		AllowAllOutbound: jsii.Bool(true),
	})
	sg := p.FunctionsSecurityGroup
	if props.ReaderHealthURL != "" {
		p.TaskSecurityGroup.AddIngressRule(sg, awsec2.Port_Tcp(jsii.Number(MetricsPort)),
			jsii.String("health Lambda reads /healthz"), nil)
	}

	healthEnv := map[string]*string{
		"HEALTH_SECRET_NAME": jsii.String(props.SecretName),
		"HEALTH_TOPIC":       jsii.String(props.Topic),
		"HEALTH_DLQ_TOPIC":   jsii.String(props.DLQTopic),
		"HEALTH_TIMEOUT":     jsii.String("10s"),
		// Its own metrics, and the reader's it reads, under the deployment's identity.
		"HEALTH_METRICS_NAMESPACE": jsii.String(MetricsNamespace),
		"HEALTH_METRICS_SERVICE":   jsii.String(p.MetricsService),
	}
	if props.ReaderHealthURL != "" {
		healthEnv["HEALTH_READER_URL"] = jsii.String(props.ReaderHealthURL)
	}
	// With ClickHouse configured, the health check also reports the Kafka table's consumers.
	if props.ClickHouseURL != "" {
		for k, v := range map[string]string{
			"HEALTH_CLICKHOUSE_URL":             props.ClickHouseURL,
			"HEALTH_CLICKHOUSE_USER":            props.ClickHouseUser,
			"HEALTH_CLICKHOUSE_DATABASE":        props.ClickHouseDatabase,
			"HEALTH_CLICKHOUSE_PASSWORD_SECRET": props.ClickHousePasswordSecret,
		} {
			if v != "" {
				healthEnv[k] = jsii.String(v)
			}
		}
	}
	p.Health = goFunction(s, "Health", props, p.Vpc, sg, &awslambda.FunctionProps{
		Description: jsii.String("Checks the Kafka credentials, brokers, topics and reader; emits metrics"),
		Code:        lambdaCode(props, lambdabuild.Health),
		Environment: &healthEnv,
		// Every check has a 10s limit; five of them fit with room to spare.
		Timeout: awscdk.Duration_Seconds(jsii.Number(90)),
	})
	p.Health.AddToRolePolicy(readSecret)
	if props.ClickHouseURL != "" && props.ClickHousePasswordSecret != "" {
		p.Health.AddToRolePolicy(readClickHousePassword(s, props))
	}

	// The bootstrap reads the Kafka secret (it puts the credentials into ClickHouse's named collection for the
	// Kafka table) and, when configured, the ClickHouse password's own secret: GetSecretValue on those two.
	bootstrapEnv := map[string]*string{"KAFKA_TOPIC": jsii.String(props.Topic), "KAFKA_SECRET_NAME": jsii.String(props.SecretName)}
	for k, v := range map[string]string{
		"CLICKHOUSE_URL":             props.ClickHouseURL,
		"CLICKHOUSE_USER":            props.ClickHouseUser,
		"CLICKHOUSE_DATABASE":        props.ClickHouseDatabase,
		"CLICKHOUSE_PASSWORD_SECRET": props.ClickHousePasswordSecret,
		"KAFKA_BROKERS":              props.KafkaBrokers,
	} {
		if v != "" {
			bootstrapEnv[k] = jsii.String(v)
		}
	}
	p.Bootstrap = goFunction(s, "Bootstrap", props, p.Vpc, sg, &awslambda.FunctionProps{
		Description: jsii.String("Applies the ClickHouse DDL idempotently; invoke it from the console"),
		Code:        lambdaCode(props, lambdabuild.Bootstrap),
		Environment: &bootstrapEnv,
		Timeout:     awscdk.Duration_Minutes(jsii.Number(2)),
	})
	p.Bootstrap.AddToRolePolicy(readSecret)
	if props.ClickHousePasswordSecret != "" {
		p.Bootstrap.AddToRolePolicy(readClickHousePassword(s, props))
	}
}

// readClickHousePassword allows reading the ClickHouse password's secret and nothing else.
func readClickHousePassword(s awscdk.Stack, props Props) awsiam.PolicyStatement {
	return awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Sid:       jsii.String("ReadClickHousePassword"),
		Actions:   jsii.Strings("secretsmanager:GetSecretValue"),
		Resources: jsii.Strings(secretArnPattern(s, props.ClickHousePasswordSecret)),
	})
}

// goFunction fills in what both functions share: runtime, architecture, network and a log group with
// retention.
func goFunction(s awscdk.Stack, id string, props Props, vpc awsec2.IVpc, sg awsec2.ISecurityGroup, fp *awslambda.FunctionProps) awslambda.Function {
	fp.Runtime = awslambda.Runtime_PROVIDED_AL2023()
	fp.Architecture = lambdaArchitecture(props)
	fp.Handler = jsii.String("bootstrap")
	fp.MemorySize = jsii.Number(256)
	fp.Vpc = vpc
	fp.VpcSubnets = privateSubnets()
	fp.SecurityGroups = &[]awsec2.ISecurityGroup{sg}
	fp.LogGroup = logGroup(s, id+"Logs", props)
	return awslambda.NewFunction(s, jsii.String(id), fp)
}
