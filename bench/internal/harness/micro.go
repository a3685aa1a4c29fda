package harness

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strconv"
	"strings"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
)

// microBenchmarks are the hot-path benchmarks beside the code, run on one core.
var microBenchmarks = []struct{ pkg, name string }{
	{"./internal/tcpin/", "BenchmarkSplit"},
	{"./internal/event/", "BenchmarkValidateStrict"},
}

func (h *harness) micro(ctx context.Context) []report.Micro {
	var out []report.Micro
	for _, b := range microBenchmarks {
		h.log("micro: %s (%s, one core)", b.name, b.pkg)
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^"+b.name+"$", "-benchmem", "-cpu", "1",
			"-benchtime", "2s", b.pkg)
		cmd.Dir = h.root
		raw, err := cmd.CombinedOutput()
		m := parseBench(b.name, raw)
		if err != nil {
			m.Error = fmt.Sprintf("go test -bench %s: %v: %s", b.name, err, lastLines(raw, 5))
		}
		h.log("  %.0f MB/s, %.0f allocs/op", m.MBPerSec, m.AllocsPerOp)
		out = append(out, m)
	}
	return out
}

// parseBench reads "BenchmarkX  N  T ns/op  M MB/s ... A allocs/op" from go test output.
func parseBench(name string, raw []byte) report.Micro {
	m := report.Micro{Name: name}
	for _, line := range strings.Split(string(raw), "\n") {
		f := strings.Fields(line)
		if len(f) < 3 || (f[0] != name && !strings.HasPrefix(f[0], name+"-")) {
			continue
		}
		for i := 1; i < len(f); i++ {
			v, err := strconv.ParseFloat(f[i-1], 64)
			if err != nil {
				continue
			}
			switch f[i] {
			case "MB/s":
				m.MBPerSec = v
			case "allocs/op":
				m.AllocsPerOp = v
			}
		}
		return m
	}
	m.Error = "no result line for " + name
	return m
}

func lastLines(b []byte, n int) string {
	lines := bytes.Split(bytes.TrimSpace(b), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
