package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestCDKCommandStdoutIntegration runs the project's cdk command (dev/cdk/cli.js, what `npx cdk` runs from
// the repository root) in a copy of its files with an empty cache, as the first `npx cdk synth` of a clean
// clone does: npm installs the pinned CLI first, and stdout must still hold only what the CLI prints (the
// template, for `cdk synth`), with npm's own lines on stderr. It needs node and npm, and the npm registry or
// npm's cache.
func TestCDKCommandStdoutIntegration(t *testing.T) {
	repo := stacktest.RepoRoot(t)
	root := t.TempDir()
	for _, f := range []string{"package.json", "dev/cdk/cli.js", "dev/cdk/package.json", "dev/cdk/package-lock.json"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(root, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var pin struct {
		DevDependencies map[string]string `json:"devDependencies"`
	}
	b, err := os.ReadFile(filepath.Join(repo, "dev/cdk/package.json"))
	if err == nil {
		err = json.Unmarshal(b, &pin)
	}
	if err != nil {
		t.Fatal(err)
	}

	var stdout, stderr bytes.Buffer
	cmd := exec.Command("node", "dev/cdk/cli.js", "--version")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CDK_DISABLE_VERSION_CHECK=1", "CDK_DISABLE_CLI_TELEMETRY=1")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node dev/cdk/cli.js --version: %v\nstdout: %s\nstderr: %s", err, stdout.String(), stderr.String())
	}
	// The precondition: this run installed the CLI, so npm had its say.
	if !strings.Contains(stderr.String(), "installing the pinned AWS CDK CLI") {
		t.Fatalf("the run did not install the CLI (stderr: %q): nothing was proven", stderr.String())
	}
	want := regexp.MustCompile(`^` + regexp.QuoteMeta(pin.DevDependencies["aws-cdk"]) + ` \(build [0-9a-f]+\)\n$`)
	if !want.Match(stdout.Bytes()) {
		t.Errorf("stdout = %q, want only the CLI's version line for aws-cdk %s (npm's output belongs on stderr: %q)",
			stdout.String(), pin.DevDependencies["aws-cdk"], stderr.String())
	}
}
