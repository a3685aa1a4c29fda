package pipeline

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestDAGEnvironmentContract holds the DAG to the reader's parser: every READER_* variable the DAG's code
// names (the ECS container override, the local runner's checks) must be a variable the reader reads, and
// the override the DAG sends to the task - READER_DURATION from its default reader_duration and
// READER_MAX_EVENTS - must parse into a bounded run.
func TestDAGEnvironmentContract(t *testing.T) {
	dir := filepath.Join(stacktest.RepoRoot(t), "dags", "log_pipeline")
	files, err := filepath.Glob(filepath.Join(dir, "*.py"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no DAG code under %s: %v", dir, err)
	}
	literal := regexp.MustCompile(`"(READER_[A-Z0-9_]+)"`)
	known := EnvNames()
	named := map[string]bool{}
	var src []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
		for _, m := range literal.FindAllStringSubmatch(string(b), -1) {
			named[m[1]] = true
			if !known[m[1]] {
				t.Errorf("%s names %s, which the reader does not read (no such flag)", filepath.Base(f), m[1])
			}
		}
	}
	for _, want := range []string{"READER_DURATION", "READER_MAX_EVENTS"} {
		if !named[want] {
			names := make([]string, 0, len(named))
			for n := range named {
				names = append(names, n)
			}
			sort.Strings(names)
			t.Fatalf("the DAG no longer names %s (it names %v): update this test with the DAG", want, names)
		}
	}

	def := regexp.MustCompile(`reader_duration: str = "([^"]+)"`).FindSubmatch(src)
	if def == nil {
		t.Fatal("no default reader_duration in the DAG's settings")
	}
	env := map[string]string{"READER_DURATION": string(def[1]), "READER_MAX_EVENTS": "100000"}
	cfg, err := ParseConfig(nil, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err != nil {
		t.Fatalf("the reader rejects the DAG's override %v: %v", env, err)
	}
	if !cfg.Bounded() || cfg.Duration != 4*time.Minute || cfg.MaxEvents != 100000 {
		t.Errorf("override %v parsed to duration %v, max events %d; want a bounded 4m, 100000-event run", env, cfg.Duration, cfg.MaxEvents)
	}
}
