package stack_test

import (
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/internal/pipeline"
)

// ingress and egress return a security group's inline rules plus its separate rule resources, by logical id.
func sgRules(tmpl assertions.Template, sgID, kind string) []map[string]any {
	var out []map[string]any
	for id, sg := range resources(tmpl, "AWS::EC2::SecurityGroup") {
		if id != sgID {
			continue
		}
		rules, _ := props(sg)["SecurityGroup"+kind].([]any)
		for _, r := range rules {
			out = append(out, r.(map[string]any))
		}
	}
	for _, r := range resources(tmpl, "AWS::EC2::SecurityGroup"+kind) {
		pr := props(r)
		if fmt.Sprint(pr["GroupId"]) == fmt.Sprint(map[string]any{"Fn::GetAtt": []any{sgID, "GroupId"}}) {
			out = append(out, pr)
		}
	}
	return out
}

// logicalID finds the one resource of typ whose logical id starts with prefix.
func logicalID(t *testing.T, tmpl assertions.Template, typ, prefix string) string {
	t.Helper()
	var found []string
	for id := range resources(tmpl, typ) {
		if strings.HasPrefix(id, prefix) {
			found = append(found, id)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%s %s*: found %q, want one", typ, prefix, found)
	}
	return found[0]
}

// rule renders a rule as "protocol from-to source" for comparison.
func rule(r map[string]any) string {
	src := r["CidrIp"]
	if src == nil {
		src = r["SourceSecurityGroupId"]
	}
	if src == nil {
		src = r["DestinationSecurityGroupId"]
	}
	if m, ok := src.(map[string]any); ok {
		if ga, ok := m["Fn::GetAtt"].([]any); ok {
			src = "sg:" + fmt.Sprint(ga[0])
		}
	}
	return fmt.Sprintf("%v %v-%v %v", r["IpProtocol"], r["FromPort"], r["ToPort"], src)
}

func rules(rs []map[string]any) []string {
	var out []string
	for _, r := range rs {
		out = append(out, rule(r))
	}
	return out
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[string]int{}
	for _, x := range a {
		seen[x]++
	}
	for _, x := range b {
		seen[x]--
	}
	for _, n := range seen {
		if n != 0 {
			return false
		}
	}
	return true
}

// TestPublicLoadBalancerWithMutualTLS: an internet-facing balancer passes TCP through to readers that
// terminate TLS and verify clients; client IP preservation is on; the balancer's security group admits
// exactly the source CIDRs and reaches the tasks on the listen and health-check ports; the tasks admit only
// the balancer; and the reader gets its TLS settings and material in a form its own parser accepts.
func TestPublicLoadBalancerWithMutualTLS(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:6514", "loadBalancer": "true",
		"publicLoadBalancer": "true", "allowedSourceCidr": "203.0.113.0/24,198.51.100.7/32",
		"sourceTls": "reader", "sourceTlsSecret": "reader/tls", "sourceTlsMutual": "true", "sourceTlsAllowedClients": "app-01,app-02.logs.internal"})
	nlbSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", "ReaderLoadBalancerSecurityGroup")
	taskSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", "ReaderSecurityGroup")

	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{
		"Type": "network", "Scheme": "internet-facing",
		"SecurityGroups": []any{map[string]any{"Fn::GetAtt": []any{nlbSG, "GroupId"}}},
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
		"Port": 6514, "Protocol": "TCP", "Certificates": assertions.Match_Absent(),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::TargetGroup"), map[string]any{
		"Port": 6514, "Protocol": "TCP", "TargetType": "ip", "HealthCheckPort": "9108", "HealthCheckPath": "/acceptingz",
		"TargetGroupAttributes": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": "preserve_client_ip.enabled", "Value": "true"}}),
	})

	if got, want := rules(sgRules(tmpl, nlbSG, "Ingress")), []string{"tcp 6514-6514 203.0.113.0/24", "tcp 6514-6514 198.51.100.7/32"}; !sameSet(got, want) {
		t.Errorf("load balancer ingress = %q, want exactly %q", got, want)
	}
	if got, want := rules(sgRules(tmpl, nlbSG, "Egress")), []string{"tcp 6514-6514 sg:" + taskSG, "tcp 9108-9108 sg:" + taskSG}; !sameSet(got, want) {
		t.Errorf("load balancer egress = %q, want exactly %q", got, want)
	}
	if got, want := rules(sgRules(tmpl, taskSG, "Ingress")), []string{"tcp 6514-6514 sg:" + nlbSG, "tcp 9108-9108 sg:" + nlbSG}; !sameSet(got, want) {
		t.Errorf("task ingress = %q, want exactly %q (the balancer alone)", got, want)
	}

	// The container's environment and secrets, fed to the reader's own parser.
	var env map[string]string
	var secretNames []string
	for _, td := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		for _, c := range props(td)["ContainerDefinitions"].([]any) {
			cd := c.(map[string]any)
			env = map[string]string{}
			for _, kv := range cd["Environment"].([]any) {
				m := kv.(map[string]any)
				env[m["Name"].(string)] = fmt.Sprint(m["Value"])
			}
			for _, sec := range cd["Secrets"].([]any) {
				m := sec.(map[string]any)
				secretNames = append(secretNames, m["Name"].(string))
				if vf := fmt.Sprint(m["ValueFrom"]); !strings.Contains(vf, "secret:reader/tls") {
					t.Errorf("secret %s from %s, want the reader/tls secret", m["Name"], vf)
				}
			}
		}
	}
	if want := []string{"READER_SOURCE_TLS_CERT_PEM", "READER_SOURCE_TLS_KEY_PEM", "READER_SOURCE_TLS_CA_PEM"}; !sameSet(secretNames, want) {
		t.Errorf("container secrets %q, want %q", secretNames, want)
	}
	for _, k := range secretNames {
		env[k] = "-----BEGIN PLACEHOLDER-----"
	}
	env["READER_REGION"] = "us-east-1"
	cfg, err := pipeline.ParseConfig(nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("the reader rejects the environment the stack gives it: %v", err)
	}
	if tc := cfg.Source.TLSConfig; !tc.Enabled || tc.CAPEM == "" || tc.CertPEM == "" || strings.Join(tc.AllowedClients, ",") != "app-01,app-02.logs.internal" {
		t.Errorf("reader TLS config from the stack's environment = %+v", tc)
	}
	assertNoNagFindings(t, p)
}

// TestLoadBalancerTerminatesTLS: where mutual TLS is not asked for, the balancer can terminate TLS with an
// ACM certificate; the readers then get plain TCP from it, with the client's address preserved.
func TestLoadBalancerTerminatesTLS(t *testing.T) {
	arn := "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c"
	p, tmpl := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:6514", "loadBalancer": "true",
		"sourceTls": "loadBalancer", "loadBalancerCertificateArn": arn})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), map[string]any{"Scheme": "internal"})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::Listener"), map[string]any{
		"Port": 6514, "Protocol": "TLS", "Certificates": []any{map[string]any{"CertificateArn": arn}},
		"SslPolicy": assertions.Match_StringLikeRegexp(jsii.String("TLS13")),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ElasticLoadBalancingV2::TargetGroup"), map[string]any{
		"Protocol":              "TCP",
		"TargetGroupAttributes": assertions.Match_ArrayWith(&[]any{map[string]any{"Key": "preserve_client_ip.enabled", "Value": "true"}}),
	})
	if s := templateJSON(t, tmpl); strings.Contains(s, "READER_SOURCE_TLS") {
		t.Errorf("the reader got TLS settings though the balancer terminates TLS")
	}
	assertNoNagFindings(t, p)
}

// TestListenWithoutBalancer: the tasks themselves admit exactly the source CIDRs on the listen port.
func TestListenWithoutBalancer(t *testing.T) {
	p, tmpl := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:6514", "allowedSourceCidr": "10.9.0.0/16,10.10.0.0/16"})
	taskSG := logicalID(t, tmpl, "AWS::EC2::SecurityGroup", "ReaderSecurityGroup")
	if got, want := rules(sgRules(tmpl, taskSG, "Ingress")), []string{"tcp 6514-6514 10.9.0.0/16", "tcp 6514-6514 10.10.0.0/16"}; !sameSet(got, want) {
		t.Errorf("task ingress = %q, want exactly %q", got, want)
	}
	tmpl.ResourceCountIs(jsii.String("AWS::ElasticLoadBalancingV2::LoadBalancer"), jsii.Number(0))
	assertNoNagFindings(t, p)
}
