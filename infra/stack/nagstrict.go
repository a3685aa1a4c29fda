package stack

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
)

// ErrNagFindings reports unsuppressed cdk-nag findings: every synth fails on them, warnings included (the CDK
// CLI itself fails only on errors).
var ErrNagFindings = errors.New("unsuppressed cdk-nag findings")

// NagFindings lists the cdk-nag annotations, of any level, that the synthesized assembly carries, as
// "<level> <construct path>: <finding>".
func NagFindings(assembly cxapi.CloudAssembly) []string {
	var out []string
	for _, st := range *assembly.Stacks() {
		for _, m := range *st.Messages() {
			data := fmt.Sprint(m.Entry.Data)
			if !strings.Contains(data, "AwsSolutions-") && !strings.Contains(data, "CdkNagValidationFailure") {
				continue
			}
			out = append(out, fmt.Sprintf("%s %s: %s", m.Level, *m.Id, data))
		}
	}
	sort.Strings(out)
	return out
}

// CheckNagFindings fails with ErrNagFindings, listing them, when the assembly has any cdk-nag finding.
func CheckNagFindings(assembly cxapi.CloudAssembly) error {
	f := NagFindings(assembly)
	if len(f) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d; fix each, or accept it with a reason in infra/stack/nag.go):\n  %s",
		ErrNagFindings, len(f), strings.Join(f, "\n  "))
}
