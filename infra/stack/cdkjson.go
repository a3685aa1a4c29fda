package stack

import (
	"encoding/json"
	"fmt"
	"os"
)

// CDKJSONContext reads the "context" object of the cdk.json at path: what the CDK CLI hands the app on every
// `cdk synth`, `diff` and `deploy` (the feature flags, the pinned Lambda architecture, the environments).
// The stack's tests and infra/variants synthesize with it too, so that what they check is the template the
// CLI would produce.
func CDKJSONContext(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading cdk.json: %w", err)
	}
	var doc struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	return doc.Context, nil
}
