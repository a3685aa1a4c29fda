// Package stack defines the AWS side of the log pipeline as one CDK stack: the reader as a Fargate service
// (and, optionally, as a bounded task on a schedule), the health and bootstrap Lambdas, their schedules and
// alarms, least-privilege access to the Kafka secret, and the VPC they run in.
package stack

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// ErrInvalidProps reports a context value that cannot work; the message names the context key.
var ErrInvalidProps = errors.New("invalid stack props")

// Source modes of the reader (its --source-mode flag).
const (
	SourceConnect = "connect"
	SourceListen  = "listen"
)

// Who terminates TLS on the source connection (sourceTls).
const (
	SourceTLSOff          = "off"
	SourceTLSReader       = "reader"
	SourceTLSLoadBalancer = "loadBalancer"
)

// Props configures the stack. Every field has a context key (in parentheses) so that `cdk deploy -c key=value`
// and cdk.json set it; FromContext reads them and fills the defaults.
type Props struct {
	awscdk.StackProps

	// EnvName is the environment (env): the stack is LogPipeline-<env>, with cdk.json's
	// "environments"/<env> settings laid over the context. Empty is the plain LogPipeline.
	EnvName string
	// RetainLogs keeps the log groups when the stack is destroyed (retainLogs; default false: removed).
	RetainLogs bool
	// DeletionProtection turns on the stack's termination protection and the load balancer's deletion
	// protection (deletionProtection; default false).
	DeletionProtection bool

	// VpcID names an existing VPC to deploy into (vpcId). Empty creates a small VPC: two AZs, public and
	// private subnets, one NAT gateway.
	VpcID string
	// NatGatewayPerAZ gives the VPC the stack creates one NAT gateway per availability zone instead of one
	// for both (natGatewayPerAz; default false; the production environment sets it): outbound traffic then
	// survives the loss of a zone and crosses no zone boundary. An existing VPC (vpcId) keeps its own NAT.
	NatGatewayPerAZ bool
	// VpcEndpoints adds interface endpoints for Secrets Manager, ECR (API and Docker), CloudWatch Logs and
	// CloudWatch metrics, and an S3 gateway endpoint (ECR's image layers), in the private subnets
	// (vpcEndpoints; default false): the reader and the Lambdas then reach those AWS APIs without the NAT
	// gateway. In an existing VPC it needs that the VPC has no such endpoints with private DNS yet.
	VpcEndpoints bool
	// CreateEcsServiceLinkedRole creates ECS's service-linked role AWSServiceRoleForECS, which a first ECS
	// deploy in an account otherwise races against (createEcsServiceLinkedRole; default false). Only for an
	// account that has none yet: CloudFormation refuses to create it twice. The stack keeps it on destroy.
	CreateEcsServiceLinkedRole bool
	// SourceMode is connect (default: the reader dials SourceAddr) or listen (sources dial the reader).
	SourceMode string
	// SourceAddr is the log source to dial in connect mode, or the address to listen on in listen mode
	// (sourceAddr; required in listen mode). Empty in connect mode, the stack takes it as the CloudFormation
	// parameter SourceAddress at deploy time.
	SourceAddr string
	// LoadBalancer puts a Network Load Balancer in front of the reader in listen mode (loadBalancer).
	LoadBalancer bool
	// PublicLoadBalancer makes that load balancer internet-facing (publicLoadBalancer; default internal).
	PublicLoadBalancer bool
	// AllowedSourceCIDRs may connect to the listen port (allowedSourceCidr: one CIDR or a comma-separated
	// list; default the VPC's CIDR). With a load balancer they are admitted by its security group, and the
	// tasks admit only the load balancer.
	AllowedSourceCIDRs []string
	// SourceTLS says who terminates TLS on the source connection (sourceTls): SourceTLSOff (default),
	// SourceTLSReader (the reader itself, end to end through a TCP listener, so client certificates reach
	// it; in connect mode, the reader verifies the source) or SourceTLSLoadBalancer (a TLS listener on the
	// load balancer with LoadBalancerCertificateArn; no client certificates).
	SourceTLS string
	// SourceTLSSecret names an existing Secrets Manager secret holding the reader's PEM material as JSON keys
	// cert, key and (for mutual TLS, or to verify a source in connect mode) ca (sourceTlsSecret).
	SourceTLSSecret string
	// SourceTLSMutual makes the reader require client certificates issued by the secret's ca
	// (sourceTlsMutual); SourceTLSAllowedClients narrows them to these names (sourceTlsAllowedClients,
	// comma-separated subject CNs or SANs).
	SourceTLSMutual         bool
	SourceTLSAllowedClients string
	// LoadBalancerCertificateArn is the ACM certificate of a TLS listener (loadBalancerCertificateArn).
	LoadBalancerCertificateArn string
	// Topic and DLQTopic are the Kafka topics (topic, dlqTopic; defaults readerspec.Topic and readerspec.DLQTopic).
	Topic, DLQTopic string
	// SecretName is the existing Secrets Manager secret with the Kafka credentials (secretName; default
	// MWAA_Secrets). The stack only references it by name; it never creates or reads it.
	SecretName string
	// ReaderDesiredCount is the number of always-on reader tasks (readerDesiredCount; default 1, or 0 when
	// ScheduledReader is on). 0 creates no service.
	ReaderDesiredCount int
	// ReaderMaxCount is listen mode's autoscaling ceiling (readerMaxCount; default 4 in listen mode): the
	// service scales on CPU between ReaderDesiredCount and it. Equal to ReaderDesiredCount turns scaling off.
	ReaderMaxCount int
	// ScheduledReader runs the reader in bounded mode (READER_DURATION=4m) every 5 minutes, the cadence the
	// MWAA DAG had (scheduledReader).
	ScheduledReader bool
	// ReaderHealthURL is the reader /healthz the health Lambda checks (readerHealthUrl; empty skips it).
	ReaderHealthURL string
	// LambdaDir holds a prebuilt <name>/bootstrap for each Lambda (lambdaDir). Empty, the default, builds
	// them while the app synthesizes.
	LambdaDir string
	// LambdaArchitecture is the Lambdas' architecture (lambdaArchitecture: x86_64 or arm64; default the
	// architecture of the machine that synthesizes, which can then build the cgo health function itself).
	LambdaArchitecture lambdabuild.Arch
	// RepoRoot is the Docker build context of the reader image (repoRoot; default ".").
	RepoRoot string
	// LogRetentionDays is the retention of every log group the stack creates (logRetentionDays; default 30).
	LogRetentionDays int
	// ClickHouseURL is the ClickHouse HTTP(S) endpoint the bootstrap Lambda applies the DDL to
	// (clickhouseUrl). Without it the function is deployed but reports that it is not configured.
	ClickHouseURL string
	// ClickHouseUser and ClickHouseDatabase are the bootstrap's ClickHouse user and database
	// (clickhouseUser, clickhouseDatabase; empty keeps the function's defaults).
	ClickHouseUser, ClickHouseDatabase string
	// ClickHousePasswordSecret names an existing secret holding the ClickHouse password
	// (clickhousePasswordSecret); only the bootstrap Lambda may read it.
	ClickHousePasswordSecret string
	// KafkaBrokers is the bootstrap server list ClickHouse's Kafka engine consumes from (kafkaBrokers). It is an
	// address, not a credential; required with clickhouseUrl.
	KafkaBrokers string
	// Monitoring configures the alarm topic's subscription and the delivery alarm (monitoring.go).
	Monitoring MonitoringProps
}

// Context is the part of a construct's node the props are read from; awscdk.App's Node() satisfies it.
type Context interface {
	TryGetContext(key *string) any
}

// FromContext reads Props from the app's context (cdk.json and -c flags) and validates them.
func FromContext(ctx Context) (Props, error) {
	env, ctx, err := withEnvironment(ctx)
	if err != nil {
		return Props{}, err
	}
	str := func(key string) string {
		v := ctx.TryGetContext(&key)
		if v == nil {
			return ""
		}
		return strings.TrimSpace(fmt.Sprint(v))
	}
	var p Props
	p.EnvName = env
	p.VpcID = str("vpcId")
	p.SourceMode = str("sourceMode")
	p.SourceAddr = str("sourceAddr")
	p.AllowedSourceCIDRs = list(ctx, "allowedSourceCidr")
	p.SourceTLS = str("sourceTls")
	p.SourceTLSSecret = str("sourceTlsSecret")
	p.SourceTLSAllowedClients = str("sourceTlsAllowedClients")
	p.LoadBalancerCertificateArn = str("loadBalancerCertificateArn")
	p.Topic = str("topic")
	p.DLQTopic = str("dlqTopic")
	p.SecretName = str("secretName")
	p.ReaderHealthURL = str("readerHealthUrl")
	p.LambdaDir = str("lambdaDir")
	if p.LambdaArchitecture, err = lambdabuild.ParseArch(str("lambdaArchitecture")); err != nil {
		return p, fmt.Errorf("%w: lambdaArchitecture: %w", ErrInvalidProps, err)
	}
	p.RepoRoot = str("repoRoot")
	p.ClickHouseURL = str("clickhouseUrl")
	p.ClickHouseUser = str("clickhouseUser")
	p.ClickHouseDatabase = str("clickhouseDatabase")
	p.ClickHousePasswordSecret = str("clickhousePasswordSecret")
	p.KafkaBrokers = str("kafkaBrokers")
	if p.LoadBalancer, err = parseBool("loadBalancer", str("loadBalancer")); err != nil {
		return p, err
	}
	if p.PublicLoadBalancer, err = parseBool("publicLoadBalancer", str("publicLoadBalancer")); err != nil {
		return p, err
	}
	if p.ScheduledReader, err = parseBool("scheduledReader", str("scheduledReader")); err != nil {
		return p, err
	}
	if p.RetainLogs, err = parseBool("retainLogs", str("retainLogs")); err != nil {
		return p, err
	}
	if p.DeletionProtection, err = parseBool("deletionProtection", str("deletionProtection")); err != nil {
		return p, err
	}
	if p.Monitoring, err = monitoringFromContext(str); err != nil {
		return p, err
	}
	if p.SourceTLSMutual, err = parseBool("sourceTlsMutual", str("sourceTlsMutual")); err != nil {
		return p, err
	}
	if p.NatGatewayPerAZ, err = parseBool("natGatewayPerAz", str("natGatewayPerAz")); err != nil {
		return p, err
	}
	if p.VpcEndpoints, err = parseBool("vpcEndpoints", str("vpcEndpoints")); err != nil {
		return p, err
	}
	if p.CreateEcsServiceLinkedRole, err = parseBool("createEcsServiceLinkedRole", str("createEcsServiceLinkedRole")); err != nil {
		return p, err
	}
	p.ReaderDesiredCount = -1
	if s := str("readerDesiredCount"); s != "" {
		if p.ReaderDesiredCount, err = strconv.Atoi(s); err != nil || p.ReaderDesiredCount < 0 {
			return p, fmt.Errorf("%w: readerDesiredCount %q is not a count", ErrInvalidProps, s)
		}
	}
	if s := str("readerMaxCount"); s != "" {
		if p.ReaderMaxCount, err = strconv.Atoi(s); err != nil || p.ReaderMaxCount < 1 {
			return p, fmt.Errorf("%w: readerMaxCount %q is not a positive count", ErrInvalidProps, s)
		}
	}
	if s := str("logRetentionDays"); s != "" {
		if p.LogRetentionDays, err = strconv.Atoi(s); err != nil {
			return p, fmt.Errorf("%w: logRetentionDays %q is not a number", ErrInvalidProps, s)
		}
	}
	p = p.WithDefaults()
	return p, p.Validate()
}

// list reads a context value given as a JSON list (cdk.json) or a comma-separated string (-c key=a,b).
func list(ctx Context, key string) []string {
	var items []string
	switch v := ctx.TryGetContext(&key).(type) {
	case nil:
	case []any:
		for _, x := range v {
			items = append(items, fmt.Sprint(x))
		}
	default:
		items = strings.Split(fmt.Sprint(v), ",")
	}
	var out []string
	for _, it := range items {
		if it = strings.TrimSpace(it); it != "" {
			out = append(out, it)
		}
	}
	return out
}

func parseBool(key, s string) (bool, error) {
	if s == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, fmt.Errorf("%w: %s %q is not true or false", ErrInvalidProps, key, s)
	}
	return b, nil
}

// WithDefaults fills the zero fields with their defaults. A negative ReaderDesiredCount means "unset".
func (p Props) WithDefaults() Props {
	if p.SourceMode == "" {
		p.SourceMode = SourceConnect
	}
	if p.SourceTLS == "" {
		p.SourceTLS = SourceTLSOff
	}
	if p.Topic == "" {
		p.Topic = readerspec.Topic
	}
	if p.DLQTopic == "" {
		p.DLQTopic = readerspec.DLQTopic
	}
	if p.SecretName == "" {
		p.SecretName = readerspec.SecretName
	}
	if p.ReaderDesiredCount < 0 {
		p.ReaderDesiredCount = 1
		if p.ScheduledReader {
			// The scheduled bounded runs replace the always-on reader: two readers would split one source.
			p.ReaderDesiredCount = 0
		}
	}
	if p.ReaderMaxCount == 0 {
		p.ReaderMaxCount = p.ReaderDesiredCount
		if p.SourceMode == SourceListen {
			p.ReaderMaxCount = max(4, p.ReaderDesiredCount)
		}
	}
	if p.LambdaArchitecture == "" {
		p.LambdaArchitecture = lambdabuild.HostArch()
	}
	if p.RepoRoot == "" {
		p.RepoRoot = "."
	}
	if p.LogRetentionDays == 0 {
		p.LogRetentionDays = 30
	}
	return p
}

// Validate reports the first field that cannot work, naming its context key.
func (p Props) Validate() error {
	switch p.SourceMode {
	case SourceConnect, SourceListen:
	default:
		return fmt.Errorf("%w: sourceMode %q (want connect or listen)", ErrInvalidProps, p.SourceMode)
	}
	if p.SourceAddr == "" && p.SourceMode == SourceListen {
		return fmt.Errorf("%w: sourceAddr is required in listen mode (the address to listen on, host:port)", ErrInvalidProps)
	}
	if _, err := p.ListenPort(); err != nil {
		return err
	}
	if p.ReaderMaxCount < p.ReaderDesiredCount {
		return fmt.Errorf("%w: readerMaxCount %d is below readerDesiredCount %d", ErrInvalidProps, p.ReaderMaxCount, p.ReaderDesiredCount)
	}
	if p.LoadBalancer && p.SourceMode != SourceListen {
		return fmt.Errorf("%w: loadBalancer needs sourceMode listen (in connect mode the reader dials out)", ErrInvalidProps)
	}
	if p.ScheduledReader && p.SourceMode != SourceConnect {
		return fmt.Errorf("%w: scheduledReader needs sourceMode connect (a bounded run dials the source)", ErrInvalidProps)
	}
	for _, c := range p.AllowedSourceCIDRs {
		ip, n, err := net.ParseCIDR(c)
		if err != nil {
			return fmt.Errorf("%w: allowedSourceCidr %q: %w", ErrInvalidProps, c, err)
		}
		if ip.To4() == nil || !ip.Equal(n.IP) {
			return fmt.Errorf("%w: allowedSourceCidr %q: want an IPv4 network address such as %s", ErrInvalidProps, c, n)
		}
	}
	if err := p.validateTLS(); err != nil {
		return err
	}
	if p.ClickHouseURL != "" && p.KafkaBrokers == "" {
		return fmt.Errorf("%w: clickhouseUrl needs kafkaBrokers (the brokers ClickHouse consumes from)", ErrInvalidProps)
	}
	if err := p.Monitoring.withDefaults().validate(); err != nil {
		return err
	}
	if _, ok := retentions[p.LogRetentionDays]; !ok {
		return fmt.Errorf("%w: logRetentionDays %d is not a CloudWatch Logs retention (1, 3, 5, 7, 14, 30, 60, 90, 180, 365, ...)", ErrInvalidProps, p.LogRetentionDays)
	}
	return nil
}

// validateTLS checks the source TLS settings and refuses an internet-facing load balancer that would let
// anyone send lines.
func (p Props) validateTLS() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidProps}, a...)...)
	}
	switch p.SourceTLS {
	case SourceTLSOff, SourceTLSReader, SourceTLSLoadBalancer:
	default:
		return bad("sourceTls %q (want off, reader or loadBalancer)", p.SourceTLS)
	}
	if p.SourceTLS == SourceTLSReader && p.SourceMode == SourceListen && p.SourceTLSSecret == "" {
		return bad("sourceTls=reader in listen mode needs sourceTlsSecret (a secret with the reader's PEM cert and key)")
	}
	if p.SourceTLS == SourceTLSLoadBalancer {
		if !p.LoadBalancer {
			return bad("sourceTls=loadBalancer needs loadBalancer=true")
		}
		if p.LoadBalancerCertificateArn == "" {
			return bad("sourceTls=loadBalancer needs loadBalancerCertificateArn (the listener's ACM certificate)")
		}
	}
	if p.LoadBalancerCertificateArn != "" && p.SourceTLS != SourceTLSLoadBalancer {
		return bad("loadBalancerCertificateArn is only used with sourceTls=loadBalancer")
	}
	if p.SourceTLSMutual && (p.SourceTLS != SourceTLSReader || p.SourceMode != SourceListen) {
		return bad("sourceTlsMutual needs sourceTls=reader in listen mode: only the reader sees client certificates " +
			"(a TLS listener on the load balancer cannot verify them)")
	}
	if p.SourceTLSAllowedClients != "" && !p.SourceTLSMutual {
		return bad("sourceTlsAllowedClients needs sourceTlsMutual=true")
	}
	if verified := p.SourceTLS == SourceTLSReader && p.SourceTLSMutual; p.PublicLoadBalancer && !verified {
		return bad("publicLoadBalancer=true without TLS and client verification lets anyone on the internet send log " +
			"lines: set sourceTls=reader, sourceTlsSecret=<secret with cert, key and ca> and sourceTlsMutual=true " +
			"(and sourceTlsAllowedClients to name the clients), or publicLoadBalancer=false")
	}
	return nil
}

// ListenPort is the port of SourceAddr in listen mode (0 in connect mode).
func (p Props) ListenPort() (int, error) {
	if p.SourceAddr == "" && p.SourceMode != SourceListen {
		return 0, nil
	}
	_, port, err := net.SplitHostPort(p.SourceAddr)
	if err != nil {
		return 0, fmt.Errorf("%w: sourceAddr %q is not host:port: %w", ErrInvalidProps, p.SourceAddr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%w: sourceAddr %q has no valid port", ErrInvalidProps, p.SourceAddr)
	}
	if p.SourceMode != SourceListen {
		return 0, nil
	}
	return n, nil
}

// EnvFromCLI pins the stack to the account and region the CDK CLI resolved (CDK_DEFAULT_ACCOUNT,
// CDK_DEFAULT_REGION), which a vpcId lookup needs. Without them the stack stays environment-agnostic, so
// `cdk synth` works offline with no AWS credentials.
func EnvFromCLI(getenv func(string) string) *awscdk.Environment {
	account, region := getenv("CDK_DEFAULT_ACCOUNT"), getenv("CDK_DEFAULT_REGION")
	if account == "" || region == "" {
		return nil
	}
	return &awscdk.Environment{Account: &account, Region: &region}
}
