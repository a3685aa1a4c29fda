package stack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// ref is how the template refers to a resource by logical id, as fmt prints it.
func ref(id string) string { return fmt.Sprintf("map[Ref:%s]", id) }

// TestNatGatewayPerZone checks the production profile's network: one NAT gateway per availability zone, each
// private subnet routing through the one in its own zone, and every NAT address in the output. The default
// profile keeps one.
func TestNatGatewayPerZone(t *testing.T) {
	_, dev := synth(t, nil)
	dev.ResourceCountIs(jsii.String("AWS::EC2::NatGateway"), jsii.Number(1))

	p, tmpl := synth(t, map[string]any{"env": "production", "sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "loadBalancer": "true"})
	nats := resources(tmpl, "AWS::EC2::NatGateway")
	subnets := resources(tmpl, "AWS::EC2::Subnet")
	if len(nats) != 2 || len(subnets) != 4 {
		t.Fatalf("%d NAT gateways and %d subnets, want one NAT gateway in each of the 2 zones", len(nats), len(subnets))
	}
	zone := func(subnet string) string { return fmt.Sprint(props(subnets[subnet])["AvailabilityZone"]) }
	natZone := map[string]string{} // NAT gateway → its zone
	for id, n := range nats {
		natZone[ref(id)] = zone(strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(props(n)["SubnetId"]), "map[Ref:"), "]"))
	}
	zones := map[string]bool{}
	for _, z := range natZone {
		zones[z] = true
	}
	if len(zones) != 2 {
		t.Errorf("the NAT gateways are in zones %v, want one in each", natZone)
	}
	tableSubnet := map[string]string{} // route table → subnet
	for _, a := range resources(tmpl, "AWS::EC2::SubnetRouteTableAssociation") {
		pr := props(a)
		tableSubnet[fmt.Sprint(pr["RouteTableId"])] = strings.TrimSuffix(strings.TrimPrefix(fmt.Sprint(pr["SubnetId"]), "map[Ref:"), "]")
	}
	routed := 0
	for id, r := range resources(tmpl, "AWS::EC2::Route") {
		pr := props(r)
		nat, ok := pr["NatGatewayId"]
		if !ok {
			continue
		}
		routed++
		subnet := tableSubnet[fmt.Sprint(pr["RouteTableId"])]
		if got, want := natZone[fmt.Sprint(nat)], zone(subnet); got != want {
			t.Errorf("route %s: subnet %s in zone %s goes through a NAT gateway in zone %s", id, subnet, want, got)
		}
	}
	if routed != 2 {
		t.Errorf("%d routes through a NAT gateway, want one per private subnet (2)", routed)
	}
	out := templateJSON(t, tmpl)
	out = out[strings.Index(out, `"NatGatewayPublicIps"`):]
	for id := range resources(tmpl, "AWS::EC2::EIP") {
		if !strings.Contains(out, id) {
			t.Errorf("NatGatewayPublicIps does not list the Elastic IP %s: %s", id, out)
		}
	}
	assertNoNagFindings(t, p)
}

// TestVpcEndpoints checks vpcEndpoints: interface endpoints for the AWS APIs the reader and the Lambdas
// call, with private DNS, in the private subnets, open on HTTPS to their security groups alone; and an S3
// gateway endpoint on the private route tables. In the stack's VPC and in an existing one; none by default.
func TestVpcEndpoints(t *testing.T) {
	_, dev := synth(t, nil)
	dev.ResourceCountIs(jsii.String("AWS::EC2::VPCEndpoint"), jsii.Number(0))

	lookup, cached := stack.ExampleVpcLookup()
	for _, ctx := range []map[string]any{
		{"vpcEndpoints": "true"},
		{"vpcEndpoints": "true", "vpcId": stack.ExampleVpcID, lookup: cached},
	} {
		p, tmpl := synth(t, ctx)
		var readerSG, functionsSG string
		for id := range resources(tmpl, "AWS::EC2::SecurityGroup") {
			switch {
			case strings.HasPrefix(id, "ReaderSecurityGroup"):
				readerSG = id
			case strings.HasPrefix(id, "FunctionsSecurityGroup"):
				functionsSG = id
			}
		}
		interfaces := map[string]bool{}
		for id, e := range resources(tmpl, "AWS::EC2::VPCEndpoint") {
			pr := props(e)
			// com.amazonaws.<region>.<service>, or its Fn::Join with the region's Ref
			name := strings.TrimRight(fmt.Sprint(pr["ServiceName"]), "]")
			if pr["VpcEndpointType"] == "Gateway" {
				if !strings.HasSuffix(name, ".s3") {
					t.Errorf("gateway endpoint %s for %s, want S3", id, name)
				}
				if tables, _ := pr["RouteTableIds"].([]any); len(tables) != 2 {
					t.Errorf("S3 endpoint on route tables %v, want the 2 private subnets'", pr["RouteTableIds"])
				}
				continue
			}
			for _, svc := range []string{"secretsmanager", "ecr.api", "ecr.dkr", "logs", "monitoring"} {
				if strings.HasSuffix(name, "."+svc) {
					interfaces[svc] = true
				}
			}
			if pr["PrivateDnsEnabled"] != true {
				t.Errorf("interface endpoint %s (%s) has no private DNS: the SDKs would still go through NAT", id, name)
			}
			if subnets, _ := pr["SubnetIds"].([]any); len(subnets) != 2 {
				t.Errorf("interface endpoint %s in subnets %v, want the 2 private subnets", id, pr["SubnetIds"])
			}
		}
		var found []string
		for svc := range interfaces {
			found = append(found, svc)
		}
		sort.Strings(found)
		if fmt.Sprint(found) != "[ecr.api ecr.dkr logs monitoring secretsmanager]" {
			t.Errorf("interface endpoints for %v, want ECR API and Docker, CloudWatch Logs and metrics, Secrets Manager", found)
		}
		// The endpoints' security groups admit HTTPS from the reader and the Lambdas, nothing else.
		ingress := map[string]int{}
		for _, r := range resources(tmpl, "AWS::EC2::SecurityGroupIngress") {
			pr := props(r)
			if !strings.Contains(fmt.Sprint(pr["GroupId"]), "Endpoint") {
				continue
			}
			if pr["FromPort"] != 443.0 || pr["ToPort"] != 443.0 || pr["CidrIp"] != nil {
				t.Errorf("endpoint ingress %v, want HTTPS from a security group", pr)
			}
			ingress[fmt.Sprint(pr["SourceSecurityGroupId"])]++
		}
		for _, sg := range []string{readerSG, functionsSG} {
			if n := ingress[fmt.Sprintf("map[Fn::GetAtt:[%s GroupId]]", sg)]; n != 5 {
				t.Errorf("%d endpoints admit %s, want all 5 interface endpoints", n, sg)
			}
		}
		if len(ingress) != 2 {
			t.Errorf("the endpoints admit %v, want the reader's and the Lambdas' security groups alone", ingress)
		}
		assertNoNagFindings(t, p)
	}
}

// TestEcsServiceLinkedRole checks createEcsServiceLinkedRole: the stack creates ECS's service-linked role
// before the cluster and keeps it on destroy (it is the account's); without the option it creates none,
// and infra/README.md names the one-line prerequisite instead.
func TestEcsServiceLinkedRole(t *testing.T) {
	_, dev := synth(t, nil)
	dev.ResourceCountIs(jsii.String("AWS::IAM::ServiceLinkedRole"), jsii.Number(0))

	p, tmpl := synth(t, map[string]any{"createEcsServiceLinkedRole": "true"})
	roles := *tmpl.FindResources(jsii.String("AWS::IAM::ServiceLinkedRole"), map[string]any{
		"Properties":     map[string]any{"AWSServiceName": "ecs.amazonaws.com"},
		"DeletionPolicy": "Retain",
	})
	if len(roles) != 1 {
		t.Fatalf("%d retained ECS service-linked roles, want 1", len(roles))
	}
	for id := range roles {
		tmpl.HasResource(jsii.String("AWS::ECS::Cluster"), map[string]any{
			"DependsOn": assertions.Match_ArrayWith(&[]any{id}),
		})
	}
	assertNoNagFindings(t, p)

	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "infra", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"aws iam create-service-linked-role --aws-service-name ecs.amazonaws.com", "`createEcsServiceLinkedRole`"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("infra/README.md does not name %q", want)
		}
	}
}
