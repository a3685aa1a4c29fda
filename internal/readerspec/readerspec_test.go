package readerspec

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// repoRoot is the directory holding go.mod, above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the package directory")
		}
		dir = parent
	}
}

func read(t *testing.T, root, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestTopicLiteralHasOneHome: outside tests, the topic's name is written in this package only; every other
// Go file takes it from here.
func TestTopicLiteralHasOneHome(t *testing.T) {
	root := repoRoot(t)
	var homes []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "cdk.out") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.Contains(string(b), Topic) {
			rel, _ := filepath.Rel(root, path)
			homes = append(homes, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(homes) != 1 || homes[0] != filepath.Join("internal", "readerspec", "readerspec.go") {
		t.Errorf("Go files outside tests naming %s: %q, want only internal/readerspec/readerspec.go", Topic, homes)
	}
}

// TestDeployablesOutsideGoAgree: what is not Go - the CDK app's context in cdk.json, the local stack
// (dev/stack.sh) and the DAG - names the same topics and secret as this package.
func TestDeployablesOutsideGoAgree(t *testing.T) {
	root := repoRoot(t)
	var cdk struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal([]byte(read(t, root, "cdk.json")), &cdk); err != nil {
		t.Fatalf("cdk.json: %v", err)
	}
	for key, want := range map[string]string{"topic": Topic, "dlqTopic": DLQTopic, "secretName": SecretName} {
		if got := cdk.Context[key]; got != want {
			t.Errorf("cdk.json context %s = %v, want %q", key, got, want)
		}
	}

	stack := read(t, root, "dev/stack.sh")
	for _, want := range []string{"SECRET_NAME=" + SecretName + "\n", `"` + Topic + `:` + strconv.Itoa(TopicPartitions) + `"`, `"` + DLQTopic + `:`,
		"export KAFKA_TOPIC='" + Topic + "'", "export KAFKA_DLQ_TOPIC='" + DLQTopic + "'"} {
		if !strings.Contains(stack, want) {
			t.Errorf("dev/stack.sh does not contain %q", want)
		}
	}

	// The DAG leaves the topics, the secret and the region to the reader's defaults; where its code and
	// docs name them, they are these.
	topicLike := regexp.MustCompile(`\blogs_[0-9]+(_dlq)?\b`)
	secretLike := regexp.MustCompile(`\bMWAA_[A-Za-z]+\b`)
	files, err := filepath.Glob(filepath.Join(root, "dags", "*.py"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(root, "dags", "log_pipeline", "*.py"))
	files = append(files, more...)
	if len(files) < 2 {
		t.Fatalf("found %d DAG files under dags/", len(files))
	}
	for _, f := range files {
		src := read(t, root, mustRel(t, root, f))
		for _, m := range topicLike.FindAllString(src, -1) {
			if m != Topic && m != DLQTopic {
				t.Errorf("%s names topic %s; the pipeline's are %s and %s", mustRel(t, root, f), m, Topic, DLQTopic)
			}
		}
		for _, m := range secretLike.FindAllString(src, -1) {
			if m != SecretName {
				t.Errorf("%s names secret %s; the pipeline's is %s", mustRel(t, root, f), m, SecretName)
			}
		}
	}
}

func mustRel(t *testing.T, root, path string) string {
	t.Helper()
	rel, err := filepath.Rel(root, path)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}
