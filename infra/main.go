// Command infra is the CDK app of the pipeline's AWS side: `cdk synth` and `cdk deploy` run it (see
// cdk.json). It reads the stack's settings from the CDK context, builds the Lambdas, and
// checks the stack with cdk-nag: any finding, error or warning, fails the synth.
package main

import (
	"fmt"
	"os"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
)

func main() {
	defer jsii.Close()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "infra:", err)
		os.Exit(1)
	}
}

func run() error {
	app := awscdk.NewApp(nil)
	props, err := stack.FromContext(app.Node())
	if err != nil {
		return err
	}
	props.Env = stack.EnvFromCLI(os.Getenv)
	stack.NewPipelineStack(app, stack.StackName(props.EnvName), props)
	stack.CheckWithNag(app)
	return stack.CheckNagFindings(app.Synth(nil))
}
