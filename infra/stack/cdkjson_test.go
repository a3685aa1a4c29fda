package stack_test

import (
	"archive/tar"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/lambdabuild"
	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// recommendedFlags reads the feature flags `cdk init` writes into a new project's cdk.json for the pinned
// CDK: recommended-feature-flags.json of the aws-cdk-lib package that the Go module embeds (jsii/*.tgz).
func recommendedFlags(t *testing.T) map[string]any {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-cdk-go/awscdk/v2").Output()
	if err != nil {
		t.Fatalf("locating the aws-cdk-go module: %v", err)
	}
	tgzs, err := filepath.Glob(filepath.Join(strings.TrimSpace(string(out)), "jsii", "aws-cdk-lib-*.tgz"))
	if err != nil || len(tgzs) != 1 {
		t.Fatalf("aws-cdk-lib package in the module: %v %v", tgzs, err)
	}
	f, err := os.Open(tgzs[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			t.Fatalf("%s has no package/recommended-feature-flags.json", tgzs[0])
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Name != "package/recommended-feature-flags.json" {
			continue
		}
		var flags map[string]any
		if err := json.NewDecoder(tr).Decode(&flags); err != nil {
			t.Fatal(err)
		}
		return flags
	}
}

// TestFeatureFlags checks that cdk.json sets every feature flag `cdk init` writes for the pinned CDK, with
// its recommended value (a CDK upgrade that recommends new ones fails here until they are set and their
// template changes explained in infra/README.md), and that the synthesized templates show them: the
// changes infra/README.md lists.
func TestFeatureFlags(t *testing.T) {
	ctx := cdkJSONContext(t)
	flags := recommendedFlags(t)
	if len(flags) == 0 {
		t.Fatal("no recommended flags read")
	}
	var unset []string
	for k, want := range flags {
		if got, ok := ctx[k]; !ok || !reflect.DeepEqual(got, want) {
			unset = append(unset, fmt.Sprintf("%s = %v (want %v)", k, got, want))
		}
	}
	if len(unset) > 0 {
		t.Errorf("cdk.json does not set %d of the %d flags cdk init writes:\n%s", len(unset), len(flags), strings.Join(unset, "\n"))
	}

	_, tmpl := synth(t, nil)
	// @aws-cdk/aws-ecs:removeDefaultDeploymentAlarm, disableExplicitDeploymentControllerForCircuitBreaker,
	// removeEmptyLoadBalancers.
	for id, svc := range resources(tmpl, "AWS::ECS::Service") {
		pr := props(svc)
		if dc, _ := pr["DeploymentConfiguration"].(map[string]any); dc["Alarms"] != nil || pr["DeploymentController"] != nil {
			t.Errorf("service %s: deployment alarms %v, controller %v; want neither rendered", id, dc["Alarms"], pr["DeploymentController"])
		}
		if lb, ok := pr["LoadBalancers"].([]any); !ok || len(lb) != 0 {
			t.Errorf("service %s: LoadBalancers %v, want an explicit empty list", id, pr["LoadBalancers"])
		}
	}
	// @aws-cdk/aws-iam:minimizePolicies: the EventBridge role's two PassRole statements become one.
	_, scheduled := synth(t, map[string]any{"scheduledReader": "true"})
	scheduled.HasResourceProperties(jsii.String("AWS::IAM::Policy"), map[string]any{
		"PolicyDocument": map[string]any{"Statement": assertions.Match_ArrayWith(&[]any{map[string]any{
			"Action": "iam:PassRole", "Effect": "Allow",
			"Resource": []any{assertions.Match_AnyValue(), assertions.Match_AnyValue()},
		}})},
	})
	// @aws-cdk/core:enablePartitionLiterals: a stack pinned to a region writes its ARNs' partition.
	lookup, cached := stack.ExampleVpcLookup()
	_, pinned := synth(t, map[string]any{"vpcId": stack.ExampleVpcID, lookup: cached})
	if js := templateJSON(t, pinned); strings.Contains(js, `"Ref":"AWS::Partition"},":secretsmanager`) ||
		!strings.Contains(js, `arn:aws:secretsmanager:us-east-1:123456789012:secret:MWAA_Secrets-??????`) {
		t.Error("the region-pinned stack's secret ARNs do not carry the partition as a literal")
	}
}

// TestLambdaArchitecturePinned checks that cdk.json pins the Lambdas' architecture, so that the template
// does not change with the machine that synthesizes it, and that both functions get it.
func TestLambdaArchitecturePinned(t *testing.T) {
	ctx := cdkJSONContext(t)
	if got := ctx["lambdaArchitecture"]; got != string(lambdabuild.X86_64) {
		t.Fatalf("cdk.json lambdaArchitecture = %v, want %q: unpinned, it follows the synthesizing machine", got, lambdabuild.X86_64)
	}
	_, tmpl := synth(t, nil)
	for id, fn := range resources(tmpl, "AWS::Lambda::Function") {
		if got := fmt.Sprint(props(fn)["Architectures"]); got != "[x86_64]" {
			t.Errorf("Lambda %s: Architectures = %s, want [x86_64]", id, got)
		}
	}
	b, err := os.ReadFile(filepath.Join(stacktest.RepoRoot(t), "infra", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "`cdk.json` pins `lambdaArchitecture` to `x86_64`") {
		t.Error("infra/README.md does not say that cdk.json pins the Lambdas' architecture")
	}
}
