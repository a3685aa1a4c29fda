package stack_test

import (
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
)

// stopTimeout is the reader container's StopTimeout, the time ECS gives it between SIGTERM and SIGKILL.
func stopTimeout(t *testing.T, tmpl assertions.Template) time.Duration {
	t.Helper()
	for _, td := range resources(tmpl, "AWS::ECS::TaskDefinition") {
		for _, c := range props(td)["ContainerDefinitions"].([]any) {
			cd := c.(map[string]any)
			if cd["Name"] == stack.ContainerName {
				s, ok := cd["StopTimeout"].(float64)
				if !ok {
					t.Fatalf("container %s has no StopTimeout", stack.ContainerName)
				}
				return time.Duration(s) * time.Second
			}
		}
	}
	t.Fatalf("no container %s", stack.ContainerName)
	return 0
}

// TestConnectModeDeploysNeverOverlap checks the rolling deploy of connect mode: ECS stops the old reader
// before it starts the new one (minimum 0 %, maximum 100 %), so two readers never dial one source, and the
// gap is bounded: the reader's drain (its own --drain-timeout, read by its parser from the environment the
// template sets) fits in the stop timeout ECS gives it before SIGKILL.
func TestConnectModeDeploysNeverOverlap(t *testing.T) {
	_, tmpl := synth(t, nil)
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
		"DeploymentConfiguration": assertions.Match_ObjectLike(&map[string]any{
			"MinimumHealthyPercent": 0, "MaximumPercent": 100,
		}),
	})
	tmpl.ResourceCountIs(jsii.String("AWS::ApplicationAutoScaling::ScalableTarget"), jsii.Number(0))

	drain := parseAsReader(t, containerEnv(t, tmpl)).DrainTimeout
	stop := stopTimeout(t, tmpl)
	// After the drain the reader flushes and closes; 10s of slack keeps SIGKILL from cutting that short.
	if stop < drain+10*time.Second || stop > 120*time.Second {
		t.Errorf("StopTimeout %s, reader drain timeout %s: want drain + 10s <= stop timeout <= 120s (Fargate's limit)", stop, drain)
	}
	t.Logf("connect-mode deploy: old reader stops first; gap at most %s (stop timeout) + the new task's start", stop)
}

// TestListenModeScalesOnCPU checks listen mode: replacements start before old readers drain (100 % /
// 200 %), and target tracking on CPU scales the service between readerDesiredCount and readerMaxCount.
func TestListenModeScalesOnCPU(t *testing.T) {
	_, tmpl := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "loadBalancer": "true",
		"readerDesiredCount": "2", "readerMaxCount": "6"})
	tmpl.HasResourceProperties(jsii.String("AWS::ECS::Service"), map[string]any{
		"DeploymentConfiguration": assertions.Match_ObjectLike(&map[string]any{
			"MinimumHealthyPercent": 100, "MaximumPercent": 200,
		}),
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ApplicationAutoScaling::ScalableTarget"), map[string]any{
		"MinCapacity": 2, "MaxCapacity": 6, "ScalableDimension": "ecs:service:DesiredCount",
	})
	tmpl.HasResourceProperties(jsii.String("AWS::ApplicationAutoScaling::ScalingPolicy"), map[string]any{
		"PolicyType": "TargetTrackingScaling",
		"TargetTrackingScalingPolicyConfiguration": assertions.Match_ObjectLike(&map[string]any{
			"PredefinedMetricSpecification": map[string]any{"PredefinedMetricType": "ECSServiceAverageCPUUtilization"},
			"TargetValue":                   stack.ReaderCPUTarget,
		}),
	})

	_, fixed := synth(t, map[string]any{"sourceMode": "listen", "sourceAddr": "0.0.0.0:5170", "readerMaxCount": "1"})
	if n := len(resources(fixed, "AWS::ApplicationAutoScaling::ScalableTarget")); n != 0 {
		t.Errorf("readerMaxCount equal to the desired count: %d scalable targets, want none", n)
	}
	if _, err := stack.FromContext(mapContext{"sourceMode": "listen", "sourceAddr": ":1", "readerDesiredCount": "3", "readerMaxCount": "2"}); err == nil {
		t.Error("readerMaxCount below readerDesiredCount accepted")
	}
}
