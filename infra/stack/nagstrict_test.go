package stack_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"

	"github.com/mwaa-kafka/pipeline/infra/stack"
)

// TestCheckNagFindings checks that the synth's own check sees cdk-nag findings in the assembly: a queue
// without a dead-letter queue or SSL enforcement fails it, and the pipeline stack passes it.
func TestCheckNagFindings(t *testing.T) {
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(t.TempDir())})
	s := awscdk.NewStack(app, jsii.String("Bad"), nil)
	awssqs.NewQueue(s, jsii.String("Queue"), nil)
	stack.CheckWithNag(app)
	err := stack.CheckNagFindings(app.Synth(nil))
	if !errors.Is(err, stack.ErrNagFindings) || !strings.Contains(err.Error(), "AwsSolutions-SQS") || !strings.Contains(err.Error(), "/Bad/Queue") {
		t.Fatalf("CheckNagFindings = %v, want ErrNagFindings naming AwsSolutions-SQS on /Bad/Queue", err)
	}

	p, _ := synth(t, nil)
	asm := awscdk.Stage_Of(p.Stack).Synth(nil)
	if err := stack.CheckNagFindings(asm); err != nil {
		t.Errorf("the pipeline stack: %v", err)
	}
}
