package memlimit

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

func TestFromCgroup(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  int64
		err   error
	}{
		{"v2", map[string]string{"memory.max": "1073741824\n"}, 1 << 30, nil},
		{"v2 unlimited", map[string]string{"memory.max": "max\n"}, 0, ErrNoLimit},
		{"v1", map[string]string{"memory/memory.limit_in_bytes": "536870912\n"}, 512 << 20, nil},
		{"v1 unlimited", map[string]string{"memory/memory.limit_in_bytes": "9223372036854771712\n"}, 0, ErrNoLimit},
		{"none", nil, 0, ErrNoLimit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for name, content := range tt.files {
				p := filepath.Join(root, name)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := FromCgroup(root)
			if got != tt.want || !errors.Is(err, tt.err) {
				t.Errorf("FromCgroup = %d, %v; want %d, %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// TestApply: without GOMEMLIMIT the runtime's limit becomes four fifths of the cgroup's; with it, the
// environment's stands.
func TestApply(t *testing.T) {
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "memory.max"), []byte("1073741824\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	debug.SetMemoryLimit(math.MaxInt64)
	limit, from, err := Apply(func(string) string { return "" }, root)
	if err != nil || from != "cgroup" || limit != readerspec.GoMemLimit(1<<30) || debug.SetMemoryLimit(-1) != limit {
		t.Errorf("Apply = %d, %s, %v; runtime limit %d; want %d from the cgroup", limit, from, err, debug.SetMemoryLimit(-1), readerspec.GoMemLimit(1<<30))
	}
	debug.SetMemoryLimit(123 << 20) // as the runtime would have from GOMEMLIMIT=123MiB
	limit, from, err = Apply(func(k string) string {
		if k == "GOMEMLIMIT" {
			return "123MiB"
		}
		return ""
	}, root)
	if err != nil || from != "GOMEMLIMIT" || limit != 123<<20 {
		t.Errorf("Apply with GOMEMLIMIT = %d, %s, %v; want %d from GOMEMLIMIT", limit, from, err, 123<<20)
	}
}
