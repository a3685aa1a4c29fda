// Package memlimit gives the Go runtime a memory limit (GOMEMLIMIT) from the container's memory when the
// environment sets none, so the garbage collector works harder before the container is OOM-killed instead of
// letting garbage grow to twice the live heap.
package memlimit

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// CgroupRoot is where the container's cgroup files are mounted.
const CgroupRoot = "/sys/fs/cgroup"

// ErrNoLimit reports a cgroup without a memory limit (or no cgroup files at all).
var ErrNoLimit = errors.New("no container memory limit")

// FromCgroup reads the container's memory limit in bytes under root: cgroup v2's memory.max, else cgroup
// v1's memory/memory.limit_in_bytes.
func FromCgroup(root string) (int64, error) {
	for _, f := range []string{"memory.max", filepath.Join("memory", "memory.limit_in_bytes")} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("reading %s: %w", f, err)
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0, ErrNoLimit
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("reading %s: %q: %w", f, s, err)
		}
		// cgroup v1 writes a huge number (about 2^63, page-aligned) for "no limit".
		if n <= 0 || n >= 1<<62 {
			return 0, ErrNoLimit
		}
		return n, nil
	}
	return 0, ErrNoLimit
}

// Apply sets the runtime's memory limit to readerspec.GoMemLimit of the cgroup's limit under root, unless
// GOMEMLIMIT is set (the runtime has applied it already). It returns the limit in force and where it came
// from ("GOMEMLIMIT", "cgroup"); with neither, the limit is 0 and err says why.
func Apply(getenv func(string) string, root string) (limit int64, from string, err error) {
	if getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), "GOMEMLIMIT", nil
	}
	mem, err := FromCgroup(root)
	if err != nil {
		return 0, "", err
	}
	limit = readerspec.GoMemLimit(mem)
	debug.SetMemoryLimit(limit)
	return limit, "cgroup", nil
}
