package harness

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/mod/modfile"
)

// The collector's module must name the same toolchain as the pipeline's: make test prebuilds the collector in
// the background so that the benchmark only links it, and a build under another Go misses that cache and
// rebuilds the collector in the foreground (minutes on two cores).
func TestOtelcolModuleNamesTheRootToolchain(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	toolchain := func(path string) string {
		t.Helper()
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		f, err := modfile.Parse(path, b, nil)
		if err != nil {
			t.Fatalf("parsing %s: %v", path, err)
		}
		if f.Toolchain == nil {
			return ""
		}
		return f.Toolchain.Name
	}
	want := toolchain(filepath.Join(root, "go.mod"))
	if want == "" {
		t.Fatal("go.mod has no toolchain line")
	}
	if got := toolchain(filepath.Join(root, otelcolModule, "go.mod")); got != want {
		t.Errorf("%s/go.mod toolchain = %q, want %q (go.mod's)", otelcolModule, got, want)
	}
}
