package stacktest_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationSeedKeepsTheSecretVersion runs dev/moto/seed.py, as dev/stack.sh up does at every start,
// against a Secrets Manager emulator of its own: seeding the same credentials again must leave MWAA_Secrets'
// version as it was (the ClickHouse bootstrap takes a new version for rotated credentials and recreates the
// Kafka table), and new credentials must make a new version.
func TestIntegrationSeedKeepsTheSecretVersion(t *testing.T) {
	root := stacktest.RepoRoot(t)
	lock, err := os.ReadFile(filepath.Join(root, "dev", "moto", "requirements.lock"))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lock)
	venv := filepath.Join(root, ".cache", "venv-stack", hex.EncodeToString(sum[:])[:12])
	if _, err := os.Stat(filepath.Join(venv, "bin", "moto_server")); err != nil {
		t.Fatalf("the emulator's venv is missing (make stack-up builds it): %v", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	endpoint := "http://127.0.0.1:" + strconv.Itoa(port)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	server := exec.Command(filepath.Join(venv, "bin", "moto_server"), "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	if err := server.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = server.Process.Kill(); _ = server.Wait() })
	for {
		resp, err := http.Get(endpoint + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the emulator did not answer on %s: %v", endpoint, err)
		}
		time.Sleep(200 * time.Millisecond)
	}

	dir := t.TempDir()
	passwordFile := filepath.Join(dir, "password")
	seed := func(password string) {
		t.Helper()
		if err := os.WriteFile(passwordFile, []byte(password+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.CommandContext(ctx, filepath.Join(venv, "bin", "python"), filepath.Join(root, "dev", "moto", "seed.py"),
			"--endpoint", endpoint, "--bootstrap", "localhost:19093", "--username", "pipeline",
			"--password-file", passwordFile, "--keys-file", filepath.Join(dir, "keys.json"), "--iam-auth", "off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("seed.py: %v\n%s", err, out)
		}
	}
	sm := secretsmanager.New(secretsmanager.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
	})
	version := func() string {
		t.Helper()
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String("MWAA_Secrets")})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.VersionId)
	}

	seed("first-password")
	v1 := version()
	seed("first-password")
	if v2 := version(); v2 != v1 {
		t.Errorf("seeding the same credentials again: version %s, want %s unchanged", v2, v1)
	}
	seed("second-password")
	if v3 := version(); v3 == v1 {
		t.Errorf("seeding new credentials: version still %s, want a new one", v1)
	}
}
