package stack

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
)

// ErrNagFindings reports unsuppressed cdk-nag findings: every synth fails on them, warnings included (the CDK
// CLI itself fails only on errors).
var ErrNagFindings = errors.New("unsuppressed cdk-nag findings")

// NagFindings lists the cdk-nag annotations, of any level, that the synthesized assembly carries (in its
// manifest and the stacks' metadata files), as "<level> <construct path>: <finding>".
func NagFindings(assembly cxapi.CloudAssembly) ([]string, error) {
	path := filepath.Join(*assembly.Directory(), "manifest.json")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the cloud assembly: %w", err)
	}
	type entries map[string][]struct {
		Type string `json:"type"`
		Data any    `json:"data"`
	}
	var manifest struct {
		Artifacts map[string]struct {
			Metadata entries `json:"metadata"`
			// Newer assemblies keep a stack's metadata in a file of its own.
			AdditionalMetadataFile string `json:"additionalMetadataFile"`
		} `json:"artifacts"`
	}
	if err := json.Unmarshal(b, &manifest); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", path, err)
	}
	var out []string
	collect := func(md entries) {
		for construct, list := range md {
			for _, e := range list {
				level, ok := strings.CutPrefix(e.Type, "aws:cdk:")
				data := fmt.Sprint(e.Data)
				if !ok || (level != "error" && level != "warning" && level != "info") ||
					(!strings.Contains(data, "AwsSolutions-") && !strings.Contains(data, "CdkNagValidationFailure")) {
					continue
				}
				out = append(out, fmt.Sprintf("%s %s: %s", level, construct, data))
			}
		}
	}
	for _, a := range manifest.Artifacts {
		collect(a.Metadata)
		if a.AdditionalMetadataFile == "" {
			continue
		}
		mdPath := filepath.Join(*assembly.Directory(), a.AdditionalMetadataFile)
		b, err := os.ReadFile(mdPath)
		if err != nil {
			return nil, fmt.Errorf("reading the cloud assembly: %w", err)
		}
		var md entries
		if err := json.Unmarshal(b, &md); err != nil {
			return nil, fmt.Errorf("decoding %s: %w", mdPath, err)
		}
		collect(md)
	}
	sort.Strings(out)
	return out, nil
}

// CheckNagFindings fails with ErrNagFindings, listing them, when the assembly has any cdk-nag finding.
func CheckNagFindings(assembly cxapi.CloudAssembly) error {
	f, err := NagFindings(assembly)
	if err != nil {
		return err
	}
	if len(f) == 0 {
		return nil
	}
	return fmt.Errorf("%w (%d; fix each, or accept it with a reason in infra/stack/nag.go):\n  %s",
		ErrNagFindings, len(f), strings.Join(f, "\n  "))
}
