package harness

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
)

// microBenchmarks are the hot-path benchmarks beside the code. Splitting and validation run on one core;
// the producer's floor runs against the benchmark's broker, on every core (librdkafka's threads are part of
// what it measures), for a fixed number of messages.
var microBenchmarks = []struct {
	pkg, name, benchtime string
	kafka                bool
}{
	{"./internal/tcpin/", "BenchmarkSplit", "2s", false},
	{"./internal/event/", "BenchmarkValidateStrict", "2s", false},
	{"./internal/kafkaout/", "BenchmarkProduceFloor/producer", "1000000x", true},
	{"./internal/kafkaout/", "BenchmarkProduceFloor/binding", "1000000x", true},
}

func (h *harness) micro(ctx context.Context) []report.Micro {
	var out []report.Micro
	for _, b := range microBenchmarks {
		args := []string{"test", "-run", "^$", "-bench", "^" + strings.ReplaceAll(b.name, "/", "$/^") + "$", "-benchmem", "-benchtime", b.benchtime}
		if !b.kafka {
			args = append(args, "-cpu", "1")
		}
		h.log("micro: %s (%s)", b.name, b.pkg)
		cmd := exec.CommandContext(ctx, "go", append(args, b.pkg)...)
		cmd.Dir = h.root
		if b.kafka {
			cmd.Env = append(os.Environ(), "BENCH_KAFKA="+h.stack.bootstrap())
		}
		raw, err := cmd.CombinedOutput()
		m := parseBench(b.name, raw)
		if err != nil {
			m.Error = fmt.Sprintf("go test -bench %s: %v: %s", b.name, err, lastLines(raw, 5))
		}
		if b.kafka {
			h.log("  %.2f CPU s per million messages, %.0f allocs/op", m.CPUPerMMsg, m.AllocsPerOp)
		} else {
			h.log("  %.0f MB/s, %.0f allocs/op", m.MBPerSec, m.AllocsPerOp)
		}
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
			case "cpu-s/M-msgs":
				m.CPUPerMMsg = v
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
