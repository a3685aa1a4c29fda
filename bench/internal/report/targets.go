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
)

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
	ratioTarget := func(a, b string, want float64) {
		ta, _ := r.row(a)
		tb, _ := r.row(b)
		goal := fmt.Sprintf("%s >= %.1fx %s events/s", ta.Label, want, tb.Label)
		if ta.Label == "" || tb.Label == "" {
			return
		}
		got, ok := r.ratio(a, b)
		if !ok {
			ts = append(ts, Target{Goal: goal, Got: "not comparable (a side lost events or did not run)"})
			return
		}
		ts = append(ts, Target{Goal: goal, Got: fmt.Sprintf("%.2fx", got), Met: got >= want})
	}
	ratioTarget(HighPerfOne, Kcat, 1.0)
	ratioTarget(HighPerfOneTLS, HighPerfOne, 0.8)
	if hp, ok := r.row(HighPerfOne); ok {
		if k, ok := r.row(Kcat); ok && hp.Ranked() && k.Ranked() {
			ts = append(ts, Target{Goal: "HighPerfTCPReader 1 event/msg CPU per event <= kcat's",
				Got: fmt.Sprintf("%.2f vs %.2f CPU s per million events", hp.CPUPerMEv, k.CPUPerMEv), Met: hp.CPUPerMEv <= k.CPUPerMEv})
		}
	}
	ratioTarget(HighPerfMany, Kcat, 3.0)
	ratioTarget(Basic, Kcat, 0.5)
	for _, ours := range []string{HighPerfOne, Basic} {
		for _, peer := range []string{Rsyslog, SyslogNG} {
			ratioTarget(ours, peer, 2.0)
		}
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

// Bounds explains the throughput targets with the CPU budget: for each of our rows, the rate the broker and
// the source alone would allow if the contender cost nothing (the most any contender could reach here, as a
// multiple of kcat's measured rate), and what the contender's own CPU per event would have to be to reach
// the target ratio on this machine.
func (r Results) Bounds() []string {
	k, ok := r.row(Kcat)
	if !ok || !k.Ranked() || r.Machine.Cores <= 0 {
		return nil
	}
	var out []string
	for _, c := range []struct {
		name string
		want float64
	}{{HighPerfOne, 1.0}, {HighPerfMany, 3.0}, {Basic, 0.5}} {
		t, ok := r.row(c.name)
		if !ok || !t.Ranked() || t.BrokerCPUPerMEv+t.SourceCPUPerMEv <= 0 {
			continue
		}
		others := t.BrokerCPUPerMEv + t.SourceCPUPerMEv
		free := float64(r.Machine.Cores) / others * 1e6
		line := fmt.Sprintf("%s: the broker and the source alone cost %.2f CPU s per million events, so even a "+
			"contender costing nothing could reach at most %.0f events/s here, %.2fx kcat's measured rate", t.Label, others, free, free/k.EventsPerSec)
		goal := c.want * k.EventsPerSec
		if need := float64(r.Machine.Cores)/goal*1e6 - others; need > 0 {
			line += fmt.Sprintf("; %.1fx kcat (%.0f events/s) needs at most %.2f CPU s per million events of its own (measured %.2f)", c.want, goal, need, t.CPUPerMEv)
		} else {
			line += fmt.Sprintf("; %.1fx kcat (%.0f events/s) is out of reach on %d cores whatever the contender does", c.want, goal, r.Machine.Cores)
		}
		out = append(out, line)
	}
	return out
}
