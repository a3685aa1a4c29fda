// Package stacktest gives integration tests the addresses and credentials of the local stack that
// dev/stack.sh starts. It never skips: a test that needs the stack and cannot find it fails with the
// command that starts it, so a missing stack is loud rather than a silent pass. Its env-file parser and
// repository lookup also serve the fault-injection suites and the benchmark, which run stacks of their own.
package stacktest

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Stack holds what dev/stack.sh wrote to its env file.
type Stack struct {
	vars map[string]string
}

var (
	once    sync.Once
	loaded  *Stack
	loadErr error
)

// Load reads the stack's env file (STACK_ENV, or .cache/stack/stack.env at the repository root) once per
// test binary. It fails the test when the file is missing.
func Load(tb testing.TB) *Stack {
	tb.Helper()
	once.Do(func() { loaded, loadErr = load() })
	if loadErr != nil {
		tb.Fatalf("local stack not available (start it with `make stack-up`): %v", loadErr)
	}
	return loaded
}

// Get returns the value of key, failing the test when the stack did not define it.
func (s *Stack) Get(tb testing.TB, key string) string {
	tb.Helper()
	v, ok := s.vars[key]
	if !ok || v == "" {
		tb.Fatalf("local stack env has no %s (is the stack up to date? run `make stack-up`)", key)
	}
	return v
}

// Lookup returns the value of key and whether it is set.
func (s *Stack) Lookup(key string) (string, bool) {
	v, ok := s.vars[key]
	return v, ok
}

// awsEnv are the variables SetAWSEnv copies from the stack into the test's environment.
var awsEnv = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
	"AWS_ENDPOINT_URL_SECRETSMANAGER", "AWS_ENDPOINT_URL_SECRETS_MANAGER",
}

// SetAWSEnv points the test's process environment at the stack's Secrets Manager emulator, as the reader's
// environment is locally: its credentials (the emulator enforces IAM, so made-up keys are rejected), region
// and endpoint. It uses tb.Setenv, so the test must not be parallel; the values are restored afterwards.
func (s *Stack) SetAWSEnv(tb testing.TB) {
	tb.Helper()
	for _, k := range awsEnv {
		tb.Setenv(k, s.Get(tb, k))
	}
	tb.Setenv("AWS_SESSION_TOKEN", "")
	tb.Setenv("AWS_PROFILE", "")
}

// RepoRoot returns the repository root (the directory holding go.mod).
func RepoRoot(tb testing.TB) string {
	tb.Helper()
	root, err := repoRoot()
	if err != nil {
		tb.Fatalf("finding repository root: %v", err)
	}
	return root
}

func load() (*Stack, error) {
	path := os.Getenv("STACK_ENV")
	if path == "" {
		root, err := repoRoot()
		if err != nil {
			return nil, err
		}
		path = filepath.Join(root, ".cache", "stack", "stack.env")
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars, err := ParseEnv(f)
	return &Stack{vars: vars}, err
}

// ParseEnv reads the env files dev/stack.sh and the other dev scripts write: NAME=value lines, optionally
// prefixed by "export " and with the value in single or double quotes. Blank lines, comments and lines
// without "=" are skipped.
func ParseEnv(r io.Reader) (map[string]string, error) {
	vars := make(map[string]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		line = strings.TrimPrefix(line, "export ")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		vars[k] = strings.Trim(v, `'"`)
	}
	return vars, sc.Err()
}

// FindRepoRoot returns the repository root (the directory holding go.mod above the working directory), for
// callers without a testing.TB such as TestMain.
func FindRepoRoot() (string, error) { return repoRoot() }

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
