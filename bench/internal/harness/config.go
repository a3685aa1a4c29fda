package harness

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// AllContenders lists every contender in run order. Their names are the report's, which its targets compare.
var AllContenders = []string{report.HighPerfOne, report.HighPerfOneTLS, report.HighPerfMany, report.Basic, report.Kcat, report.Rsyslog, report.SyslogNG, report.OtelCol}

// Config is the benchmark's configuration, read once from flags.
type Config struct {
	// Quick is the small mode that make test runs: few events, a short stall, no micro-benchmarks, and a
	// failure only on correctness.
	Quick bool
	// Events is how many events each contender carries in the throughput phase (default 1,000,000).
	Events uint64
	// Rounds is how many times the throughput phase runs every contender, interleaved (default 3; quick 1):
	// the machine is shared and noisy, so each row reports the median round and the spread.
	Rounds int
	// Seed and Start fix the generated stream, so every contender gets the same bytes.
	Seed  int64
	Start time.Time
	// Partitions of each benchmark topic (default readerspec.TopicPartitions, as the pipeline's topic).
	Partitions int
	// Contenders run in the throughput phase; StallContenders (ours only) in the stalled-broker phase;
	// LatencyContenders in the fixed-rate latency phase.
	Contenders        []string
	StallContenders   []string
	LatencyContenders []string
	// Stall is how long the broker is paused (SIGSTOP) while the source keeps pushing; StallEvents is the
	// stream length in that phase, long enough that the source is still sending when the pause begins.
	// StallQueueKBytes, when set, overrides the reader's local queue bound in that phase.
	Stall            time.Duration
	StallEvents      uint64
	StallQueueKBytes int
	// LatencyRate (events/s) and LatencyDuration define the latency phase; LatencySampleEvery is how often
	// an event's send time is recorded.
	LatencyRate        float64
	LatencyDuration    time.Duration
	LatencySampleEvery int
	// Micro runs the Go micro-benchmarks of splitting and validation.
	Micro bool
	// Out is where results.json and chart.svg go; Readme also writes Out/README.md.
	Out    string
	Readme bool
	// PortBase numbers the benchmark stack's ports: Kafka PLAINTEXT PortBase, SASL +1, controller +2,
	// Secrets Manager emulator +10, ClickHouse +31.
	PortBase int
	// KeepStack leaves the benchmark's stack running at the end (for repeated runs).
	KeepStack bool
	// Timeout bounds the run from the end of the setup (installing the peers, building the programs) on.
	Timeout time.Duration
	// ReaderArgs are extra flags for our readers (e.g. --kafka-property k=v), so that a change can be
	// measured against the reader without it, in alternating runs.
	ReaderArgs []string
	// ReaderBin, when set, is a reader binary to run instead of building tasks/reader (a build of another
	// revision, to measure a change against it).
	ReaderBin string
}

// ParseConfig reads flags from args.
func ParseConfig(args []string, usage io.Writer) (Config, error) {
	var (
		c                                          Config
		contenders, stallContenders, latContenders string
		start                                      string
		events, stallEvents                        uint64
		stall, latDur, timeout                     time.Duration
		readerArgs                                 string
	)
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(usage)
	fs.BoolVar(&c.Quick, "quick", false, "small run for make test (20k events, 3 s stall): fails only on correctness")
	fs.Uint64Var(&events, "events", 0, "events per contender in the throughput phase (default 1000000; quick 20000)")
	fs.IntVar(&c.Rounds, "rounds", 0, "throughput rounds, contenders interleaved; each row is the median round (default 3; quick 1)")
	fs.Int64Var(&c.Seed, "seed", 42, "seed of the generated events")
	fs.StringVar(&start, "start", "2026-11-25T00:00:00Z", "timestamp of the first generated event (RFC 3339)")
	fs.IntVar(&c.Partitions, "partitions", readerspec.TopicPartitions, "partitions of each benchmark topic")
	fs.StringVar(&contenders, "contenders", strings.Join(AllContenders, ","), "throughput contenders, comma-separated")
	fs.StringVar(&stallContenders, "stall-contenders", report.HighPerfOne+","+report.Basic, "readers to run under a stalled broker (ours only)")
	fs.StringVar(&latContenders, "latency-contenders", strings.Join(AllContenders, ","), "contenders measured at a fixed rate")
	fs.DurationVar(&stall, "stall", 0, "how long the broker is paused (default 30s; quick 3s)")
	fs.Uint64Var(&stallEvents, "stall-events", 0, "events in the stall phase (default 1500000; quick 300000)")
	fs.IntVar(&c.StallQueueKBytes, "stall-queue-kbytes", -1, "reader --queue-max-kbytes in the stall phase (default: the reader's own; quick 8192)")
	fs.Float64Var(&c.LatencyRate, "latency-rate", 50000, "events per second in the latency phase")
	fs.DurationVar(&latDur, "latency-duration", 0, "length of the latency phase per contender (default 10s; quick 1s)")
	fs.IntVar(&c.LatencySampleEvery, "latency-sample-every", 10, "record the send time of every K-th event")
	fs.BoolVar(&c.Micro, "micro", true, "run the splitting and validation micro-benchmarks (never in quick mode)")
	fs.StringVar(&c.Out, "out", "bench/results", "directory for results.json and chart.svg")
	fs.BoolVar(&c.Readme, "readme", false, "also write the results README (OUT/README.md) with the table and ratios")
	fs.IntVar(&c.PortBase, "port-base", 29092, "first port of the benchmark's own stack")
	fs.BoolVar(&c.KeepStack, "keep-stack", false, "leave the benchmark's stack running at the end")
	fs.DurationVar(&timeout, "timeout", 0, "bound on the run after the setup: peers installed, programs built (default 14m; quick 5m)")
	fs.StringVar(&c.ReaderBin, "reader-bin", "", "run this reader binary instead of building tasks/reader (to measure another revision)")
	fs.StringVar(&readerArgs, "reader-args", "", "extra flags for our readers, space-separated (to measure a setting against the default)")
	fs.Usage = func() {
		fmt.Fprintf(usage, "Usage: go run ./bench [flags]\n\nStreams the same generated events to our readers, kcat, rsyslog, syslog-ng and the OpenTelemetry\n"+
			"Collector in turn, each producing to its own topic on the benchmark's own local broker, and reports\n"+
			"throughput, CPU, memory, a stalled-broker memory check and latency at a fixed rate.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("%w: unexpected arguments %q", ErrInvalidConfig, fs.Args())
	}
	pick := func(v, full, quick uint64) uint64 {
		if v > 0 {
			return v
		}
		if c.Quick {
			return quick
		}
		return full
	}
	pickD := func(v, full, quick time.Duration) time.Duration {
		if v > 0 {
			return v
		}
		if c.Quick {
			return quick
		}
		return full
	}
	c.Events = pick(events, 1_000_000, 20_000)
	if c.Rounds <= 0 {
		c.Rounds = int(pick(0, 3, 1))
	}
	c.StallEvents = pick(stallEvents, 1_500_000, 300_000)
	c.Stall = pickD(stall, 30*time.Second, 3*time.Second)
	c.LatencyDuration = pickD(latDur, 10*time.Second, time.Second)
	c.Timeout = pickD(timeout, 14*time.Minute, 5*time.Minute)
	if c.StallQueueKBytes < 0 {
		c.StallQueueKBytes = 0
		if c.Quick {
			c.StallQueueKBytes = 8192
		}
	}
	if c.Quick {
		c.Micro = false
	}
	c.ReaderArgs = strings.Fields(readerArgs)
	var err error
	if c.Start, err = time.Parse(time.RFC3339Nano, start); err != nil {
		return c, fmt.Errorf("%w: --start: %w", ErrInvalidConfig, err)
	}
	if c.Contenders, err = parseList("--contenders", contenders, AllContenders); err != nil {
		return c, err
	}
	if c.StallContenders, err = parseList("--stall-contenders", stallContenders, []string{report.HighPerfOne, report.HighPerfMany, report.Basic}); err != nil {
		return c, err
	}
	if c.LatencyContenders, err = parseList("--latency-contenders", latContenders, AllContenders); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func parseList(flagName, s string, allowed []string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !slices.Contains(allowed, f) {
			return nil, fmt.Errorf("%w: %s: unknown contender %q (want some of %s)", ErrInvalidConfig, flagName, f, strings.Join(allowed, ","))
		}
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out, nil
}

// Validate checks the combination of settings; errors name the flag.
func (c Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Events == 0 || c.Events > 1<<32-2:
		return bad("--events %d: want 1 to 4294967294", c.Events)
	case c.Rounds < 1 || c.Rounds > 15:
		return bad("--rounds %d: want 1 to 15", c.Rounds)
	case c.Partitions < 1:
		return bad("--partitions %d: want at least 1", c.Partitions)
	case c.LatencyRate <= 0:
		return bad("--latency-rate must be positive")
	case c.LatencySampleEvery < 1:
		return bad("--latency-sample-every must be at least 1")
	case c.PortBase < 1024 || c.PortBase > 65000:
		return bad("--port-base %d: want 1024 to 65000", c.PortBase)
	case c.Out == "":
		return bad("--out is empty")
	}
	return nil
}

// runs reports whether any phase runs the named contender.
func (c Config) runs(name string) bool {
	return slices.Contains(c.Contenders, name) || slices.Contains(c.LatencyContenders, name)
}

// needsPeers reports whether any phase runs kcat, rsyslog or syslog-ng.
func (c Config) needsPeers() bool {
	for _, l := range [][]string{c.Contenders, c.LatencyContenders} {
		for _, n := range l {
			if !contenderByName(n).Ours && n != report.OtelCol {
				return true
			}
		}
	}
	return false
}
