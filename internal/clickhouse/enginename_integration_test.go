package clickhouse_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationEngineNamedOneWay holds the scripts, docs and comments to one name for the local engine,
// "ClickHouse <SELECT version()> (chdb-core <the lock's version>)": the running engine's own version and the
// package dev/clickhouse/requirements.lock pins. Any other versioned mention (the release line alone, the
// package alone) fails.
// CHANGELOG.md keeps history as it was; lock files name their package as pip does.
func TestIntegrationEngineNamedOneWay(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	version := strings.TrimSpace(scalar[string](t, ctx, e.client(t, ""), "SELECT version() AS v"))
	root, err := stacktest.FindRepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(filepath.Join(root, "dev/clickhouse/requirements.lock"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^chdb-core==([0-9.]+)`).FindSubmatch(lock)
	if m == nil {
		t.Fatal("dev/clickhouse/requirements.lock pins no chdb-core==VERSION")
	}
	want := "ClickHouse " + version + " (chdb-core " + string(m[1]) + ")"
	mention := regexp.MustCompile("(?i)\\b(clickhouse|chdb(-core)?)[`* ]{1,4}v?[0-9]+\\.[0-9]+(\\.[0-9]+)*")
	space := regexp.MustCompile(`\s+`)
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch d.Name() {
			case ".git", ".cache", "node_modules", "cdk.out", "bin":
				return filepath.SkipDir
			}
			return nil
		}
		switch filepath.Ext(path) {
		case ".md", ".sh", ".py", ".go":
		default:
			return nil
		}
		if rel == "CHANGELOG.md" {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		// Whitespace collapsed, so a name wrapped over two lines counts as written on one.
		text := strings.ReplaceAll(space.ReplaceAllString(string(b), " "), want, "")
		for _, bad := range mention.FindAllString(text, -1) {
			t.Errorf("%s names the engine %q; write %q", rel, bad, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d files, want the repository's scripts, docs and Go files", checked)
	}
}
