package report

import (
	"bytes"
	"math"
	"strings"
	"testing"
)

func sample() Results {
	row := func(name, label string, ours bool, rate, cpu float64, exact bool) Throughput {
		return Throughput{Name: name, Label: label, Ours: ours, EventsPerSec: rate, CPUPerMEv: cpu, BrokerCPUPerMEv: 1.0,
			SourceCPUPerMEv: 0.5, Exact: exact, Check: "checked", PeakRSS: 50 << 20, RoundRates: []float64{rate * 0.9, rate, rate * 1.1}}
	}
	return Results{Events: 1000, Rounds: 3, Machine: Machine{Cores: 2}, Throughput: []Throughput{
		row(HighPerfOne, "fast", true, 400_000, 2.0, true),
		row(HighPerfMany, "many", true, 900_000, 0.5, true),
		row(Basic, "basic", true, 100_000, 6.0, true),
		row(Kcat, "kcat", false, 400_000, 2.5, true),
		row(Rsyslog, "rsyslog", false, 200_000, 4.0, true),
		row(SyslogNG, "syslog-ng", false, 300_000, 3.0, false),
		row(OtelCol, "otelcol", false, 250_000, 5.0, true),
	}}
}

func TestCheckTargets(t *testing.T) {
	r := sample()
	r.CheckTargets()
	want := map[string]string{
		"fast >= 1.3x rsyslog events/s":         "2.00x met",
		"fast >= 1.2x basic events/s":           "4.00x met",
		"fast >= 1.0x syslog-ng events/s":       "not comparable (a side lost events or did not run) missed",
		"fast >= 1.0x otelcol events/s":         "1.60x met",
		"many >= 1.6x kcat events/s":            "2.25x met",
		"basic >= 1.1x rsyslog events/s":        "0.50x missed",
		"fast CPU per event <= 1.5x kcat's":     "0.80x (2.00 vs 2.50 CPU s per million events) met",
		"many CPU per event <= 0.6x kcat's":     "0.20x (0.50 vs 2.50 CPU s per million events) met",
		"fast delivers exactly the events sent": "checked met",
	}
	got := map[string]string{}
	for _, tg := range r.Targets {
		m := "missed"
		if tg.Met {
			m = "met"
		}
		got[tg.Goal] = tg.Got + " " + m
	}
	for goal, w := range want {
		if got[goal] != w {
			t.Errorf("%s: got %q, want %q", goal, got[goal], w)
		}
	}
	for _, tg := range r.Targets {
		if strings.HasSuffix(tg.Goal, "events/s") && tg.Got != "not comparable (a side lost events or did not run)" && tg.Bound == "" {
			t.Errorf("%s: a rate target without its bound", tg.Goal)
		}
	}
	if f := r.CorrectnessFailures(); len(f) != 0 {
		t.Errorf("correctness failures %v: a lossy peer is marked, not a failure", f)
	}
}

func TestCeilingAndBounds(t *testing.T) {
	r := sample()
	fast := r.Throughput[0]
	// 2 cores over (2.0 + 1.0 + 0.5) CPU s per million events.
	if got, want := fast.Ceiling(2), 2/3.5*1e6; math.Abs(got-want) > 1e-6 {
		t.Errorf("Ceiling = %v, want %v", got, want)
	}
	if (Throughput{}).Ceiling(2) != 0 {
		t.Error("Ceiling of a row without CPU figures must be 0 (unknown)")
	}
	b := strings.Join(r.Bounds(), "\n")
	for _, want := range []string{
		// Broker and source: 1.5 CPU s per million on 2 cores: 1,333,333 events/s, 6.67x rsyslog's 200,000.
		"fast >= 1.3x rsyslog: the broker and the source alone cost 1.50 CPU s per million events, so even a contender costing nothing could reach at most 1333333 events/s here, 6.67x rsyslog's measured rate",
		// 1.3x rsyslog = 260,000 events/s needs 2/0.26 - 1.5 = 6.19 CPU s per million of its own.
		"1.3x (260000 events/s) needs at most 6.19 CPU s per million events of its own (measured 2.00)",
		// 1.1x rsyslog = 220,000 events/s needs 2/0.22 - 1.5 = 7.59.
		"basic >= 1.1x rsyslog",
		"1.1x (220000 events/s) needs at most 7.59 CPU s per million events of its own (measured 6.00)",
	} {
		if !strings.Contains(b, want) {
			t.Errorf("bounds lack %q:\n%s", want, b)
		}
	}
}

func TestRenderings(t *testing.T) {
	r := sample()
	r.CheckTargets()
	var tb, md bytes.Buffer
	Table(&tb, r)
	Markdown(&md, r, "make bench")
	for _, out := range []string{tb.String(), md.String()} {
		for _, want := range []string{"3 rounds", "360000-440000", "LOST/ALTERED (not ranked)", "ceiling events/s", "70%"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
	}
	if !strings.Contains(md.String(), "## What bounds the throughput targets here") {
		t.Errorf("the README lacks the bounds section:\n%s", md.String())
	}
	var svg bytes.Buffer
	if err := Chart(&svg, r); err != nil || !strings.HasPrefix(strings.TrimSpace(svg.String()), "<svg") {
		t.Errorf("Chart: %v, %.80q", err, svg.String())
	}
}

// In quick mode (make test) the targets are information, not a verdict: a missed one must not read as a
// failure of a passing run.
func TestTableQuickModeTargetsAreInformation(t *testing.T) {
	for _, quick := range []bool{false, true} {
		r := sample()
		r.Quick = quick
		r.CheckTargets()
		var b bytes.Buffer
		Table(&b, r)
		out := b.String()
		if quick {
			if strings.Contains(out, "MISSED") || !strings.Contains(out, "info: missed") ||
				!strings.Contains(out, "Targets (information only in quick mode") {
				t.Errorf("quick Table = %s\nwant the targets labelled as information, no MISSED", out)
			}
		} else if !strings.Contains(out, "MISSED") {
			t.Errorf("full Table = %s\nwant MISSED for a missed target", out)
		}
	}
}
