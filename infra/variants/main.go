// Command variants synthesizes every variant of the stack (stack.Variants) into one cloud assembly in
// <outdir>, one stack LogPipeline-<variant> each, as the CDK app does, cdk-nag included (any finding fails),
// for the template checks of make test (cfn-lint), over cdk.json's context as the CDK CLI passes it (run it
// from the repository root). It prints each stack's name and template file.
//
//	go run ./infra/variants <outdir>
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
)

func main() {
	defer jsii.Close()
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "variants:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	if len(args) != 1 {
		return fmt.Errorf("usage: variants <outdir>")
	}
	if err := os.RemoveAll(args[0]); err != nil {
		return err
	}
	// cdk.json's context, as the CDK CLI passes it to the app: feature flags, Lambda architecture.
	base, err := stack.CDKJSONContext("cdk.json")
	if err != nil {
		return err
	}
	// One app, one stack per variant: the Lambdas are built once for all of them.
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(args[0]), Context: &base})
	for _, v := range stack.Variants() {
		scope := constructs.NewConstruct(app, jsii.String(v.Name))
		for k, val := range v.Context {
			scope.Node().SetContext(jsii.String(k), val)
		}
		props, err := stack.FromContext(scope.Node())
		if err != nil {
			return fmt.Errorf("variant %s: %w", v.Name, err)
		}
		props.StackName = jsii.String("LogPipeline-" + v.Name)
		if _, ok := v.Context["vpcId"]; ok {
			props.Env = &awscdk.Environment{Account: jsii.String("123456789012"), Region: jsii.String("us-east-1")}
		}
		stack.NewPipelineStack(scope, "LogPipeline", props)
	}
	stack.CheckWithNag(app)
	assembly := app.Synth(nil)
	if err := stack.CheckNagFindings(assembly); err != nil {
		return err
	}
	for _, st := range *assembly.Stacks() {
		fmt.Printf("%s\t%s\n", *st.StackName(), *st.TemplateFullPath())
	}
	return nil
}
