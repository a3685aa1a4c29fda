package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// otelcolModule is the collector's own module (bench/otelcol), kept apart so the pipeline's module does not
// take on the collector's dependencies.
const otelcolModule = "bench/otelcol"

// buildOtelcol returns the collector binary, building it only when no binary of the same sources is cached:
// the build compiles the collector core and contrib's components (several CPU minutes on two cores), and
// the quick mode that make test runs must not pay that on every run. The binary's name carries a hash of
// the module's go.mod, go.sum and main.go and of the Go version, so any change to them builds anew.
func (h *harness) buildOtelcol(ctx context.Context, dir string) (string, error) {
	mod := filepath.Join(h.root, otelcolModule)
	key, err := otelcolKey(ctx, mod)
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "otelcol-"+key)
	if fi, err := os.Stat(bin); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		h.log("collector: reusing %s", filepath.Base(bin))
		return bin, nil
	}
	h.log("collector: building %s (cached afterwards under %s)", otelcolModule, dir)
	tmp := bin + ".tmp"
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", tmp, ".")
	cmd.Dir = mod
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("%w: go build in %s: %w: %s", ErrSetup, otelcolModule, err, out)
	}
	if err := os.Rename(tmp, bin); err != nil {
		return "", fmt.Errorf("%w: caching the collector binary: %w", ErrSetup, err)
	}
	// Older builds only take room.
	old, _ := filepath.Glob(filepath.Join(dir, "otelcol-*"))
	for _, o := range old {
		if o != bin {
			_ = os.Remove(o)
		}
	}
	return bin, nil
}

// otelcolKey hashes what decides the collector binary: its module files and the Go version building it.
func otelcolKey(ctx context.Context, mod string) (string, error) {
	sum := sha256.New()
	for _, f := range []string{"go.mod", "go.sum", "main.go"} {
		b, err := os.ReadFile(filepath.Join(mod, f))
		if err != nil {
			return "", fmt.Errorf("%w: reading the collector's %s: %w", ErrSetup, f, err)
		}
		fmt.Fprintf(sum, "%s %d\n", f, len(b))
		sum.Write(b)
	}
	cmd := exec.CommandContext(ctx, "go", "env", "GOVERSION")
	cmd.Dir = mod
	v, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("%w: go env GOVERSION in %s: %w", ErrSetup, otelcolModule, err)
	}
	sum.Write([]byte(strings.TrimSpace(string(v))))
	return hex.EncodeToString(sum.Sum(nil))[:16], nil
}
