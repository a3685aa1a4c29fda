package main

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestFirstRunWithoutAWSConfig runs the built reader the way a new user first does: no arguments, in an
// environment with no AWS configuration at all. It must fail at once with exit 1 and one error that says
// what is missing and how to point the reader at the local stack, with none of the SDK's noise about the
// instance metadata service. That service is an in-process server on loopback answering 403, as it does off
// EC2 (no real one can run here, and the test must not reach the link-local address).
func TestFirstRunWithoutAWSConfig(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "reader")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	defer imds.Close()

	home := t.TempDir()
	cmd := exec.Command(bin)
	cmd.Dir = home
	cmd.Env = []string{"HOME=" + home, "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_SERVICE_ENDPOINT=" + imds.URL}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	elapsed := time.Since(start)

	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("reader with no AWS configuration: %v, want exit status 1\nstderr:\n%s", err, &stderr)
	}
	if elapsed > 10*time.Second {
		t.Errorf("reader took %v to fail, want at once", elapsed)
	}
	for _, want := range []string{
		"no AWS credentials configured", "AWS_ACCESS_KEY_ID", "no Secrets Manager endpoint configured",
		"source .cache/stack/stack.env", "--credentials env",
	} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr does not say %q:\n%s", want, &stderr)
		}
	}
	for _, noise := range []string{"IMDS", "ec2imds", "StatusCode", "SDK "} {
		if strings.Contains(stderr.String(), noise) || strings.Contains(stdout.String(), noise) {
			t.Errorf("output mentions %q:\nstdout:\n%s\nstderr:\n%s", noise, &stdout, &stderr)
		}
	}
	// The run's summary still goes to stdout, with the same error, and says nothing was read.
	if !strings.Contains(stdout.String(), `"received":0`) || !strings.Contains(stdout.String(), "no AWS credentials configured") {
		t.Errorf("stdout = %q, want the summary with received 0 and the error", &stdout)
	}
}
