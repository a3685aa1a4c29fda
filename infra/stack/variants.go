package stack

// Variant is one shape of the stack, as context values, that the checks of the synthesized template
// (cfn-lint, cdk-nag) cover.
type Variant struct {
	Name    string
	Context map[string]any
}

// ExampleVpcID is the existing VPC of the existing-VPC variant. Its lookup is answered from the context, as
// the CDK CLI caches it in cdk.context.json, so the variant synthesizes offline.
const ExampleVpcID = "vpc-0123456789abcdef0"

// ExampleVpcLookup is that cached lookup, for the example account and region the variant pins.
func ExampleVpcLookup() (key string, value map[string]any) {
	return "vpc-provider:account=123456789012:filter.vpc-id=" + ExampleVpcID + ":region=us-east-1:returnAsymmetricSubnets=true",
		map[string]any{
			"vpcId":             ExampleVpcID,
			"vpcCidrBlock":      "10.20.0.0/16",
			"availabilityZones": []any{},
			"subnetGroups": []any{map[string]any{
				"name": "private", "type": "Private",
				"subnets": []any{
					map[string]any{"subnetId": "subnet-0123456789abcdef1", "cidr": "10.20.1.0/24", "availabilityZone": "us-east-1a", "routeTableId": "rtb-0123456789abcdef1"},
					map[string]any{"subnetId": "subnet-0123456789abcdef2", "cidr": "10.20.2.0/24", "availabilityZone": "us-east-1b", "routeTableId": "rtb-0123456789abcdef2"},
				},
			}},
		}
}

// Variants lists the stack's shapes that make test synthesizes and lints: connect mode (the default), listen
// mode behind a load balancer (also with TLS on the balancer, and with the production profile: a NAT gateway per zone, VPC endpoints),
// scheduled bounded runs (creating ECS's service-linked role), and an existing VPC (with VPC endpoints).
func Variants() []Variant {
	key, lookup := ExampleVpcLookup()
	return []Variant{
		{Name: "connect", Context: map[string]any{"sourceAddr": "logs.example.internal:5170"}},
		{Name: "listen-nlb", Context: map[string]any{"sourceMode": SourceListen, "sourceAddr": "0.0.0.0:5170",
			"loadBalancer": "true", "readerHealthUrl": "http://reader.internal:9108/healthz"}},
		{Name: "listen-nlb-tls", Context: map[string]any{"sourceMode": SourceListen, "sourceAddr": "0.0.0.0:5170",
			"loadBalancer": "true", "sourceTls": SourceTLSLoadBalancer,
			"loadBalancerCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9"}},
		{Name: "production-listen-nlb", Context: map[string]any{"sourceMode": SourceListen, "sourceAddr": "0.0.0.0:5170",
			"loadBalancer": "true", "retainLogs": "true", "deletionProtection": "true", "logRetentionDays": "365",
			"natGatewayPerAz": "true", "vpcEndpoints": "true"}},
		{Name: "scheduled", Context: map[string]any{"sourceAddr": "logs.example.internal:5170", "scheduledReader": "true",
			"createEcsServiceLinkedRole": "true"}},
		{Name: "existing-vpc", Context: map[string]any{"sourceAddr": "logs.example.internal:5170", "vpcId": ExampleVpcID, key: lookup,
			"vpcEndpoints":  "true",
			"clickhouseUrl": "https://ch.example.com:8443", "kafkaBrokers": "b1.example.com:9092", "clickhousePasswordSecret": "clickhouse/ingest"}},
	}
}
