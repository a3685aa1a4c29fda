package report

import (
	"fmt"
	"strings"
)

// Names of the contenders, as the harness runs them and the targets compare them.
const (
	HighPerfOne = "highperf-1"
	// HighPerfOneTLS is HighPerfOne reading the source through TLS, side by side with plain TCP.
	HighPerfOneTLS = "highperf-1-tls"
	HighPerfMany   = "highperf-many"
	Basic          = "basic"
	Kcat           = "kcat"
	Rsyslog        = "rsyslog"
	SyslogNG       = "syslog-ng"
	OtelCol        = "otelcol"
)

// rateTarget is a throughput goal: a's events/s at least want times base's, in the same run.
type rateTarget struct {
	a, base string
	want    float64
}

// rateTargets are the throughput goals, as ratios measured in one run: the fast reader clearly ahead of the
// basic one and of every other log shipper, well ahead with many events per message.
var rateTargets = []rateTarget{
	{HighPerfOne, Rsyslog, 1.3},
	{HighPerfOne, Basic, 1.2},
	{HighPerfOne, SyslogNG, 1.0},
	{HighPerfOne, OtelCol, 1.0},
	{HighPerfMany, Kcat, 1.6},
	{Basic, Rsyslog, 1.1},
	{HighPerfOneTLS, HighPerfOne, 0.8}, // TLS costs the source's reader at most a fifth of its rate
}

// cpuTarget is a CPU goal: a's CPU per event at most want times base's.
type cpuTarget struct {
	a, base string
	want    float64
}

var cpuTargets = []cpuTarget{
	{HighPerfOne, Kcat, 1.5},
	{HighPerfMany, Kcat, 0.6},
}

func (r Results) row(name string) (Throughput, bool) {
	for _, t := range r.Throughput {
		if t.Name == name {
			return t, true
		}
	}
	return Throughput{}, false
}

// ratio returns a's events/s over b's, and whether both ran and were ranked.
func (r Results) ratio(a, b string) (float64, bool) {
	ta, okA := r.row(a)
	tb, okB := r.row(b)
	if !okA || !okB || !ta.Ranked() || !tb.Ranked() {
		return 0, false
	}
	return ta.EventsPerSec / tb.EventsPerSec, true
}

// CheckTargets fills r.Targets from the measurements.
func (r *Results) CheckTargets() {
	var ts []Target
	for _, rt := range rateTargets {
		ta, _ := r.row(rt.a)
		tb, _ := r.row(rt.base)
		if ta.Label == "" || tb.Label == "" {
			continue
		}
		goal := fmt.Sprintf("%s >= %.1fx %s events/s", ta.Label, rt.want, tb.Label)
		got, ok := r.ratio(rt.a, rt.base)
		if !ok {
			ts = append(ts, Target{Goal: goal, Got: "not comparable (a side lost events or did not run)"})
			continue
		}
		ts = append(ts, Target{Goal: goal, Got: fmt.Sprintf("%.2fx", got), Met: got >= rt.want, Bound: r.rateBound(rt, true)})
	}
	for _, ct := range cpuTargets {
		ta, okA := r.row(ct.a)
		tb, okB := r.row(ct.base)
		if !okA || !okB {
			continue
		}
		goal := fmt.Sprintf("%s CPU per event <= %.1fx %s's", ta.Label, ct.want, tb.Label)
		if !ta.Ranked() || !tb.Ranked() || tb.CPUPerMEv <= 0 {
			ts = append(ts, Target{Goal: goal, Got: "not comparable (a side lost events or did not run)"})
			continue
		}
		got := ta.CPUPerMEv / tb.CPUPerMEv
		bound := fmt.Sprintf("at most %.2f CPU s per million events", ct.want*tb.CPUPerMEv)
		if ct.a == HighPerfOne {
			bound += r.floorBound(tb)
		}
		ts = append(ts, Target{Goal: goal, Got: fmt.Sprintf("%.2fx (%.2f vs %.2f CPU s per million events)", got, ta.CPUPerMEv, tb.CPUPerMEv),
			Met: got <= ct.want, Bound: bound})
	}
	for _, t := range r.Throughput {
		if t.Ours {
			ts = append(ts, Target{Goal: t.Label + " delivers exactly the events sent", Got: t.Check, Met: t.Exact && t.Error == "", Correctness: true})
		}
	}
	if hp, ok := r.row(HighPerfOne); ok {
		ts = append(ts, Target{Goal: "HighPerfTCPReader peak RSS <= 150 MiB (throughput run)", Got: mib(hp.PeakRSS), Met: hp.PeakRSS > 0 && hp.PeakRSS <= 150<<20})
	}
	for _, s := range r.Stall {
		ts = append(ts, Target{Goal: fmt.Sprintf("%s RSS flat during a %.0fs broker stall (growth in its second half <= %s)", s.Label, s.StallSeconds, mib(FlatGrowth)),
			Got: fmt.Sprintf("%s -> %s, reading %s", mib(s.RSSMidStall), mib(s.RSSEndStall), blocked(s)), Met: s.Flat && s.Error == "", Correctness: true})
		ts = append(ts, Target{Goal: s.Label + " delivers everything after the stall", Got: s.Check, Met: s.Exact && s.Error == "", Correctness: true})
		if s.Name == HighPerfOne {
			ts = append(ts, Target{Goal: "HighPerfTCPReader peak RSS <= 150 MiB (stall run)", Got: mib(s.PeakRSS), Met: s.PeakRSS > 0 && s.PeakRSS <= 150<<20})
		}
	}
	for _, l := range r.Latency {
		if l.Name == HighPerfOne {
			ts = append(ts, Target{Goal: fmt.Sprintf("p99 latency <= 50 ms at %.0f events/s (%s)", l.Rate, l.Label),
				Got: fmt.Sprintf("%.1f ms", l.P99ms), Met: l.Exact && l.Samples > 0 && l.P99ms <= 50})
		}
	}
	for _, m := range r.Micro {
		switch {
		case strings.Contains(m.Name, "Split"):
			ts = append(ts, Target{Goal: "splitting >= 2 GB/s on one core, 0 allocs", Got: fmt.Sprintf("%.0f MB/s, %.0f allocs/op", m.MBPerSec, m.AllocsPerOp), Met: m.MBPerSec >= 2000 && m.AllocsPerOp == 0})
		case strings.Contains(m.Name, "Validate"):
			ts = append(ts, Target{Goal: "strict validation >= 400 MB/s on one core, 0 allocs", Got: fmt.Sprintf("%.0f MB/s, %.0f allocs/op", m.MBPerSec, m.AllocsPerOp), Met: m.MBPerSec >= 400 && m.AllocsPerOp == 0})
		}
	}
	r.Targets = ts
}

// floorBound says what the producer alone costs per message (BenchmarkProduceFloor), as a multiple of
// base's whole cost per event, when the micro-benchmarks ran: at one event per message no reader built on
// the producer can spend less.
func (r Results) floorBound(base Throughput) string {
	var producer, binding float64
	for _, m := range r.Micro {
		switch {
		case strings.HasSuffix(m.Name, "Floor/producer") && m.Error == "":
			producer = m.CPUPerMMsg
		case strings.HasSuffix(m.Name, "Floor/binding") && m.Error == "":
			binding = m.CPUPerMMsg
		}
	}
	if producer <= 0 {
		return ""
	}
	out := fmt.Sprintf("; the producer alone, before a byte is read or validated, costs %.2f CPU s per million messages, %.2fx %s's whole cost",
		producer, producer/base.CPUPerMEv, base.Label)
	if binding > 0 {
		out += fmt.Sprintf(" (the bare confluent-kafka-go binding %.2f, %.2fx)", binding, binding/base.CPUPerMEv)
	}
	return out
}

// CorrectnessFailures lists the correctness targets that were missed.
func (r Results) CorrectnessFailures() []string {
	var out []string
	for _, t := range r.Targets {
		if t.Correctness && !t.Met {
			out = append(out, t.Goal+": "+t.Got)
		}
	}
	return out
}

func blocked(s Stall) string {
	if s.ReadEnd == s.ReadMid {
		return fmt.Sprintf("stopped at %.0f lines (backpressure)", s.ReadEnd)
	}
	return fmt.Sprintf("went on (%.0f -> %.0f lines)", s.ReadMid, s.ReadEnd)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// Bounds explains the throughput targets with the CPU budget: for each rate target, the rate the broker and
// the source alone would allow if the contender cost nothing (the most any contender could reach here, as a
// multiple of the baseline's measured rate), and what the contender's own CPU per event would have to be
// to reach the target ratio on this machine.
func (r Results) Bounds() []string {
	var out []string
	for _, rt := range rateTargets {
		if b := r.rateBound(rt, false); b != "" {
			out = append(out, b)
		}
	}
	return out
}

// rateBound is Bounds' line for one rate target ("" when it cannot be worked out); short leaves out the
// label and the arithmetic, for the targets table.
func (r Results) rateBound(rt rateTarget, short bool) string {
	t, ok := r.row(rt.a)
	b, okB := r.row(rt.base)
	if r.Machine.Cores <= 0 || !ok || !okB || !t.Ranked() || !b.Ranked() || t.BrokerCPUPerMEv+t.SourceCPUPerMEv <= 0 {
		return ""
	}
	others := t.BrokerCPUPerMEv + t.SourceCPUPerMEv
	free := float64(r.Machine.Cores) / others * 1e6
	goal := rt.want * b.EventsPerSec
	need := float64(r.Machine.Cores)/goal*1e6 - others
	if short {
		if need <= 0 {
			return fmt.Sprintf("out of reach here: at most %.2fx with a contender costing nothing", free/b.EventsPerSec)
		}
		return fmt.Sprintf("needs <= %.2f CPU s per million events of its own (measured %.2f); at most %.2fx here", need, t.CPUPerMEv, free/b.EventsPerSec)
	}
	line := fmt.Sprintf("%s >= %.1fx %s: the broker and the source alone cost %.2f CPU s per million events, so even a "+
		"contender costing nothing could reach at most %.0f events/s here, %.2fx %s's measured rate",
		t.Label, rt.want, b.Label, others, free, free/b.EventsPerSec, b.Label)
	if need > 0 {
		return line + fmt.Sprintf("; %.1fx (%.0f events/s) needs at most %.2f CPU s per million events of its own (measured %.2f)", rt.want, goal, need, t.CPUPerMEv)
	}
	return line + fmt.Sprintf("; %.1fx (%.0f events/s) is out of reach on %d cores whatever the contender does", rt.want, goal, r.Machine.Cores)
}
