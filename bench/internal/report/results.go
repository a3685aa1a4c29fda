// Package report turns the benchmark's measurements into the terminal table, the JSON file, the results
// README and the SVG chart, and checks the targets as ratios measured in the same run.
package report

import (
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/procstat"
)

// Results is everything one benchmark run measured.
type Results struct {
	When        time.Time    `json:"when"`
	Quick       bool         `json:"quick"`
	Machine     Machine      `json:"machine"`
	Events      uint64       `json:"events"`
	Rounds      int          `json:"rounds"` // throughput rounds per contender; rows show the median round
	Throughput  []Throughput `json:"throughput"`
	Stall       []Stall      `json:"stall"`
	Latency     []Latency    `json:"latency"`
	Micro       []Micro      `json:"micro"`
	Targets     []Target     `json:"targets"`
	WallSeconds float64      `json:"wall_seconds"`
}

// Machine describes where the run happened.
type Machine struct {
	CPU       string   `json:"cpu"`
	Cores     int      `json:"cores"`
	LoadAvg   string   `json:"load_avg"` // at the start of the run: the machine is shared
	GoVersion string   `json:"go_version"`
	Kafka     string   `json:"kafka"`
	Peers     []string `json:"peers"`
}

// Throughput is one contender carrying the whole stream as fast as it can.
type Throughput struct {
	Name         string  `json:"name"`
	Label        string  `json:"label"`
	Ours         bool    `json:"ours"`
	Events       uint64  `json:"events"` // sent by the source
	Bytes        uint64  `json:"bytes"`
	Seconds      float64 `json:"seconds"` // first byte sent to last broker append
	EventsPerSec float64 `json:"events_per_sec"`
	MBPerSec     float64 `json:"mb_per_sec"`
	CPUSeconds   float64 `json:"cpu_seconds"` // user + system of the contender's process
	CPUPerMEv    float64 `json:"cpu_seconds_per_million_events"`
	// BrokerCPUPerMEv and SourceCPUPerMEv are the broker's and the log source's CPU over the same trial: the
	// three share the machine's cores, so together they bound the rate (see Ceiling).
	BrokerCPUPerMEv float64           `json:"broker_cpu_seconds_per_million_events"`
	SourceCPUPerMEv float64           `json:"source_cpu_seconds_per_million_events"`
	PeakRSS         int64             `json:"peak_rss_bytes"`
	Exact           bool              `json:"exact"`
	Check           string            `json:"check"`
	Error           string            `json:"error,omitempty"`
	RSS             []procstat.Sample `json:"rss"`
	// RoundRates is events/s of every round, in run order; the row's other figures are the median round's.
	RoundRates []float64 `json:"round_rates"`
}

// Spread returns the slowest and fastest round's events/s.
func (t Throughput) Spread() (lo, hi float64) {
	for i, r := range t.RoundRates {
		if i == 0 || r < lo {
			lo = r
		}
		if r > hi {
			hi = r
		}
	}
	return lo, hi
}

// Ceiling is the rate at which the contender, the broker and the source together would keep every one of
// cores busy: no contender can run faster on this machine than its CPU per event allows. 0 when unknown.
func (t Throughput) Ceiling(cores int) float64 {
	total := t.CPUPerMEv + t.BrokerCPUPerMEv + t.SourceCPUPerMEv
	if total <= 0 || cores <= 0 {
		return 0
	}
	return float64(cores) / total * 1e6
}

// Ranked reports whether the row counts in comparisons: a contender that lost or altered events does not.
func (t Throughput) Ranked() bool { return t.Exact && t.Error == "" && t.EventsPerSec > 0 }

// Stall is one of our readers under a broker paused with SIGSTOP while the source keeps pushing.
type Stall struct {
	Name         string  `json:"name"`
	Label        string  `json:"label"`
	StallSeconds float64 `json:"stall_seconds"`
	StallFrom    float64 `json:"stall_from"` // seconds on the RSS series' clock
	StallTo      float64 `json:"stall_to"`
	RSSAtStall   int64   `json:"rss_at_stall_bytes"`
	RSSMidStall  int64   `json:"rss_mid_stall_bytes"` // largest in the first half of the stall
	RSSEndStall  int64   `json:"rss_end_stall_bytes"` // largest in the second half
	PeakRSS      int64   `json:"peak_rss_bytes"`
	Flat         bool    `json:"flat"`
	// ReadMid and ReadEnd are the reader's lines received at mid-stall and at the end of the stall: equal
	// means it stopped reading its socket (TCP backpressure) instead of buffering.
	ReadMid float64           `json:"read_mid_stall"`
	ReadEnd float64           `json:"read_end_stall"`
	Exact   bool              `json:"exact"`
	Check   string            `json:"check"`
	Error   string            `json:"error,omitempty"`
	RSS     []procstat.Sample `json:"rss"`
}

// FlatGrowth is how much RSS may still grow in the second half of a stall for it to count as flat.
const FlatGrowth = 8 << 20

// Latency is one contender at a fixed event rate.
type Latency struct {
	Name    string  `json:"name"`
	Label   string  `json:"label"`
	Ours    bool    `json:"ours"`
	Rate    float64 `json:"rate"`
	Events  uint64  `json:"events"`
	Samples int     `json:"samples"`
	P50ms   float64 `json:"p50_ms"`
	P99ms   float64 `json:"p99_ms"`
	MaxMs   float64 `json:"max_ms"`
	Exact   bool    `json:"exact"`
	Check   string  `json:"check"`
	Error   string  `json:"error,omitempty"`
}

// Micro is one Go micro-benchmark on one core.
type Micro struct {
	Name        string  `json:"name"`
	MBPerSec    float64 `json:"mb_per_sec"`
	AllocsPerOp float64 `json:"allocs_per_op"`
	// CPUPerMMsg is the producer floor's CPU seconds (the whole process) per million messages.
	CPUPerMMsg float64 `json:"cpu_s_per_million_messages,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// Target is one of the goals, as measured.
type Target struct {
	Goal string `json:"goal"`
	Got  string `json:"got"`
	Met  bool   `json:"met"`
	// Bound says what limits a speed target here: for a rate, the contender's own CPU per event the ratio
	// needs given what the broker and the source cost (or that no contender could reach it); for CPU, the
	// figure the ratio allows.
	Bound string `json:"bound,omitempty"`
	// Correctness targets fail the run; speed targets are only reported.
	Correctness bool `json:"correctness"`
}
