package stack_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// synth builds the stack from context values as `cdk synth -c` would, with cdk-nag attached.
func synth(t *testing.T, context map[string]any) (*stack.Pipeline, assertions.Template) {
	t.Helper()
	ctx := map[string]any{
		"sourceAddr": "logs.example.internal:5170",
		"lambdaDir":  fakeLambdas(t),
		"repoRoot":   stacktest.RepoRoot(t),
	}
	for k, v := range context {
		ctx[k] = v
	}
	app := awscdk.NewApp(&awscdk.AppProps{Context: &ctx, Outdir: jsii.String(t.TempDir())})
	props, err := stack.FromContext(app.Node())
	if err != nil {
		t.Fatalf("FromContext(%v) = %v", ctx, err)
	}
	if _, ok := context["vpcId"]; ok {
		props.Env = &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")}
	}
	p := stack.NewPipelineStack(app, "LogPipeline", props)
	stack.CheckWithNag(app)
	return p, assertions.Template_FromStack(p.Stack, nil)
}

// fakeLambdas stands in for dev/cdk.sh's build output: the template only records the assets' hashes.
func fakeLambdas(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"health", "bootstrap"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// nagFindings lists the cdk-nag annotations of the given level ("Error" or "Warning") as "id: message".
func nagFindings(p *stack.Pipeline, level string) []string {
	a := assertions.Annotations_FromStack(p.Stack)
	find := a.FindError
	if level == "Warning" {
		find = a.FindWarning
	}
	var out []string
	for _, m := range *find(jsii.String("*"), assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))) {
		out = append(out, *m.Id+": "+fmt.Sprint(m.Entry.Data))
	}
	return out
}

func TestNagExplore(t *testing.T) {
	p, _ := synth(t, map[string]any{"sourceMode": "listen", "loadBalancer": "true", "readerHealthUrl": "http://10.0.0.1:9108/healthz"})
	for _, level := range []string{"Error", "Warning"} {
		for _, f := range nagFindings(p, level) {
			t.Logf("%s %s", level, f)
		}
	}
	p, _ = synth(t, map[string]any{"scheduledReader": "true"})
	for _, level := range []string{"Error", "Warning"} {
		for _, f := range nagFindings(p, level) {
			t.Logf("%s %s", level, f)
		}
	}
}
