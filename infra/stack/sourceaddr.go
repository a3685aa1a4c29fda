package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/jsii-runtime-go"
)

// SourceAddressParameter is the CloudFormation parameter that holds the log source's address when the
// connect-mode stack is synthesized without sourceAddr: `cdk synth` then works as typed, and
// `cdk deploy --parameters SourceAddress=host:port` (or -c sourceAddr=host:port) supplies it. CloudFormation
// refuses a deploy without it, and later deploys keep the previous value.
const SourceAddressParameter = "SourceAddress"

// sourceAddr is the reader's READER_SOURCE_ADDR: the context value, or a reference to the parameter.
func sourceAddr(s awscdk.Stack, props Props) *string {
	if props.SourceAddr != "" {
		return jsii.String(props.SourceAddr)
	}
	return awscdk.NewCfnParameter(s, jsii.String(SourceAddressParameter), &awscdk.CfnParameterProps{
		Type:                  jsii.String("String"),
		Description:           jsii.String("The log source the reader dials, host:port (connect mode)"),
		AllowedPattern:        jsii.String(`^[A-Za-z0-9.\-]+:[0-9]{1,5}$|^\[[0-9A-Fa-f:.]+\]:[0-9]{1,5}$`),
		ConstraintDescription: jsii.String("host:port, e.g. logs.example.internal:5170"),
	}).ValueAsString()
}
