package report

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
)

// WriteJSON writes r, indented, to path.
func WriteJSON(path string, r Results) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// vs returns a's events/s as a multiple of the named baseline's, or "-".
func (r Results) vs(t Throughput, base string) string {
	if got, ok := r.ratio(t.Name, base); ok {
		return fmt.Sprintf("%.2fx", got)
	}
	return "-"
}

func status(exact bool, errText string) string {
	switch {
	case errText != "":
		return "FAILED"
	case exact:
		return "exact"
	default:
		return "LOST/ALTERED (not ranked)"
	}
}

// Table writes the terminal table.
func Table(w io.Writer, r Results) {
	rounds := "1 round"
	if r.Rounds > 1 {
		rounds = fmt.Sprintf("median of %d rounds", r.Rounds)
	}
	fmt.Fprintf(w, "\nThroughput: %d events per contender, %s (first byte sent -> last broker append)\n", r.Events, rounds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tevents/s\trounds min-max\tMB/s\tCPU s/M ev\tpeak RSS\tvs kcat\tvs rsyslog\tvs syslog-ng\tvs otelcol\tcheck\t")
	for _, t := range r.Throughput {
		fmt.Fprintf(tw, "%s\t%.0f\t%s\t%.1f\t%.2f\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Label, t.EventsPerSec, spread(t), t.MBPerSec, t.CPUPerMEv,
			mib(t.PeakRSS), r.vs(t, Kcat), r.vs(t, Rsyslog), r.vs(t, SyslogNG), r.vs(t, OtelCol), status(t.Exact, t.Error))
	}
	tw.Flush()
	fmt.Fprintf(w, "\nCPU budget per million events (the contender, the broker and the source share %d cores)\n", r.Machine.Cores)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "contender\tcontender s\tbroker s\tsource s\ttotal s\tceiling events/s\tmeasured/ceiling\t")
	for _, t := range r.Throughput {
		c := budget(t, r.Machine.Cores)
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Label, c[0], c[1], c[2], c[3], c[4], c[5])
	}
	tw.Flush()
	if len(r.Stall) > 0 {
		fmt.Fprintln(w, "\nStalled broker (SIGSTOP while the source keeps pushing)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "reader\tstall\tRSS at stall\t1st half max\t2nd half max\tpeak\tflat\treading\tafter resume\t")
		for _, s := range r.Stall {
			fmt.Fprintf(tw, "%s\t%.0fs\t%s\t%s\t%s\t%s\t%t\t%s\t%s\t\n", s.Label, s.StallSeconds, mib(s.RSSAtStall), mib(s.RSSMidStall),
				mib(s.RSSEndStall), mib(s.PeakRSS), s.Flat, blocked(s), status(s.Exact, s.Error))
		}
		tw.Flush()
	}
	if len(r.Latency) > 0 {
		fmt.Fprintln(w, "\nLatency at a fixed rate (source send -> broker append)")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "contender\tevents/s\tsamples\tp50 ms\tp99 ms\tmax ms\tcheck\t")
		for _, l := range r.Latency {
			fmt.Fprintf(tw, "%s\t%.0f\t%d\t%.1f\t%.1f\t%.1f\t%s\t\n", l.Label, l.Rate, l.Samples, l.P50ms, l.P99ms, l.MaxMs, status(l.Exact, l.Error))
		}
		tw.Flush()
	}
	if len(r.Micro) > 0 {
		fmt.Fprintln(w, "\nMicro-benchmarks (splitting and validation on one core; the producer floor against the broker)")
		for _, m := range r.Micro {
			fmt.Fprintf(w, "  %-36s %8.0f MB/s  %.0f allocs/op", m.Name, m.MBPerSec, m.AllocsPerOp)
			if m.CPUPerMMsg > 0 {
				fmt.Fprintf(w, "  %.2f CPU s per million messages", m.CPUPerMMsg)
			}
			fmt.Fprintf(w, " %s\n", m.Error)
		}
	}
	// Quick mode's runs are too small and short to judge the targets: the lines are information there, so a
	// missed one must not read as the failure of a passing make test.
	met, missed := "MET   ", "MISSED"
	if r.Quick {
		fmt.Fprintln(w, "\nTargets (information only in quick mode: its runs are too short to judge them; make bench does)")
		met, missed = "info: met   ", "info: missed"
	} else {
		fmt.Fprintln(w, "\nTargets")
	}
	for _, t := range r.Targets {
		mark := met
		if !t.Met {
			mark = missed
		}
		fmt.Fprintf(w, "  %s %s: %s\n", mark, t.Goal, t.Got)
		if t.Bound != "" {
			fmt.Fprintf(w, "         bound: %s\n", t.Bound)
		}
	}
	for _, t := range r.Throughput {
		if t.Error != "" {
			fmt.Fprintf(w, "  error: %s: %s\n", t.Label, t.Error)
		}
	}
	if b := r.Bounds(); len(b) > 0 {
		fmt.Fprintln(w, "\nWhat bounds the throughput targets here")
		for _, l := range b {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// Markdown writes the results README: the same tables, the ratios and the targets.
func Markdown(w io.Writer, r Results, command string) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format, a...) }
	p("# Benchmark results\n\n")
	p("Written by `%s` on %s (%.0f s wall). Every figure below comes from that one run on one machine; the\n", command, r.When.UTC().Format("2006-01-02 15:04 MST"), r.WallSeconds)
	p("comparisons are ratios measured in it. Raw data: `results.json`; chart: `chart.svg` (both beside this file, not\ncommitted).\n\n")
	p("Machine: %s, %d cores (shared with other work; load average at start %s), %s, %s.\n", r.Machine.CPU, r.Machine.Cores, r.Machine.LoadAvg, r.Machine.GoVersion, r.Machine.Kafka)
	if len(r.Machine.Peers) > 0 {
		p("Peers: %s.\n", strings.Join(r.Machine.Peers, ", "))
	}
	p("\nEach contender reads the same %d generated events (about 300 bytes each, fixed seed) over TCP from\n", r.Events)
	p("`tasks/logsource` and produces them to its own fresh topic (3 partitions, LogAppendTime) with acks=all,\n")
	p("idempotence, lz4, linger 5 ms, 1 MiB batches and the same 8 MiB local queue. Time runs from the first byte sent\n")
	p("to the broker's last append; CPU is user + system of the contender's process; the topic is read back and every\n")
	p("event checked (id once, bytes unchanged). The contenders run interleaved, %d rounds; each row is a contender's\n", r.Rounds)
	p("median round, with the slowest and fastest round beside it, and a contender is exact only if every round was.\n")
	if _, ok := r.row(OtelCol); ok {
		p("The OpenTelemetry Collector's raw encoding writes each line as a JSON string (its tcp_log receiver makes text\n")
		p("bodies); the check decodes that string and then holds it to the same test.\n")
	}
	p("\n")
	p("## Throughput\n\n| contender | events/s | rounds min-max | MB/s | CPU s per M events | peak RSS | vs kcat | vs rsyslog | vs syslog-ng | vs otelcol | check |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, t := range r.Throughput {
		p("| %s | %.0f | %s | %.1f | %.2f | %s | %s | %s | %s | %s | %s |\n", t.Label, t.EventsPerSec, spread(t), t.MBPerSec, t.CPUPerMEv, mib(t.PeakRSS),
			r.vs(t, Kcat), r.vs(t, Rsyslog), r.vs(t, SyslogNG), r.vs(t, OtelCol), status(t.Exact, t.Error))
	}
	p("\n## CPU budget\n\nCPU seconds per million events of the contender, the broker and the log source over the same\n")
	p("trial. The three share the machine's %d cores, so the ceiling is the rate at which together they would keep\n", r.Machine.Cores)
	p("every core busy: a contender cannot beat it here, and the ratio of the measured rate to it shows how much\n")
	p("of the machine the run used.\n\n")
	p("| contender | contender s | broker s | source s | total s | ceiling events/s | measured/ceiling |\n|---|--:|--:|--:|--:|--:|--:|\n")
	for _, t := range r.Throughput {
		c := budget(t, r.Machine.Cores)
		p("| %s | %s | %s | %s | %s | %s | %s |\n", t.Label, c[0], c[1], c[2], c[3], c[4], c[5])
	}
	if len(r.Stall) > 0 {
		p("\n## Memory under a stalled broker\n\nThe broker is paused (SIGSTOP) while the source keeps pushing, then resumed.\n\n")
		p("| reader | stall | RSS at stall | max, 1st half | max, 2nd half | peak | flat | reading during the stall | after resume |\n|---|--:|--:|--:|--:|--:|---|---|---|\n")
		for _, s := range r.Stall {
			p("| %s | %.0f s | %s | %s | %s | %s | %t | %s | %s |\n", s.Label, s.StallSeconds, mib(s.RSSAtStall), mib(s.RSSMidStall),
				mib(s.RSSEndStall), mib(s.PeakRSS), s.Flat, blocked(s), status(s.Exact, s.Error))
		}
	}
	if len(r.Latency) > 0 {
		p("\n## Latency at a fixed rate\n\nFrom the source's send time to the broker's append time (millisecond resolution), over the events\nwhose send time the source recorded (every 10th by default, `--latency-sample-every`).\n\n")
		p("| contender | events/s | samples | p50 ms | p99 ms | max ms | check |\n|---|--:|--:|--:|--:|--:|---|\n")
		for _, l := range r.Latency {
			p("| %s | %.0f | %d | %.1f | %.1f | %.1f | %s |\n", l.Label, l.Rate, l.Samples, l.P50ms, l.P99ms, l.MaxMs, status(l.Exact, l.Error))
		}
	}
	if len(r.Micro) > 0 {
		p("\n## Micro-benchmarks\n\nSplitting and validation run on one core. The producer floor sends the generated events, one per\n")
		p("message, straight through `kafkaout.Producer` (and through the bare confluent-kafka-go binding) to the\n")
		p("benchmark's broker with the same settings, nothing read or validated: its CPU, the whole process with\n")
		p("librdkafka's threads, is the least a reader built on it can spend per message.\n\n")
		p("| benchmark | MB/s | allocs/op | CPU s per M messages |\n|---|--:|--:|--:|\n")
		for _, m := range r.Micro {
			cpu := "-"
			if m.CPUPerMMsg > 0 {
				cpu = fmt.Sprintf("%.2f", m.CPUPerMMsg)
			}
			p("| %s | %.0f | %.0f | %s |\n", m.Name, m.MBPerSec, m.AllocsPerOp, cpu)
		}
	}
	p("\n## Targets\n\nSpeed targets are ratios to another contender in this same run; the bound says what limits each\n")
	p("on this machine (see the CPU budget).\n\n| goal | measured | | bound |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		mark := "met"
		if !t.Met {
			mark = "**missed**"
		}
		bound := t.Bound
		if bound == "" {
			bound = "-"
		}
		p("| %s | %s | %s | %s |\n", t.Goal, t.Got, mark, bound)
	}
	if b := r.Bounds(); len(b) > 0 {
		p("\n## What bounds the throughput targets here\n\n")
		for _, l := range b {
			p("- %s.\n", l)
		}
	}
}

// spread renders the slowest and fastest round's events/s.
func spread(t Throughput) string {
	lo, hi := t.Spread()
	if len(t.RoundRates) < 2 {
		return "-"
	}
	return fmt.Sprintf("%.0f-%.0f", lo, hi)
}

// budget renders a row's CPU per million events of the contender, broker and source, their total, the
// ceiling rate on cores, and the measured rate as a share of that ceiling.
func budget(t Throughput, cores int) [6]string {
	c := [6]string{"-", "-", "-", "-", "-", "-"}
	if t.EventsPerSec <= 0 {
		return c
	}
	c[0], c[1], c[2] = fmt.Sprintf("%.2f", t.CPUPerMEv), fmt.Sprintf("%.2f", t.BrokerCPUPerMEv), fmt.Sprintf("%.2f", t.SourceCPUPerMEv)
	c[3] = fmt.Sprintf("%.2f", t.CPUPerMEv+t.BrokerCPUPerMEv+t.SourceCPUPerMEv)
	if ceil := t.Ceiling(cores); ceil > 0 {
		c[4], c[5] = fmt.Sprintf("%.0f", ceil), fmt.Sprintf("%.0f%%", 100*t.EventsPerSec/ceil)
	}
	return c
}
