package harness

import (
	"slices"
	"testing"

	"github.com/mwaa-kafka/pipeline/bench/internal/report"
)

func TestSummarizeKeepsTheMedianRound(t *testing.T) {
	row := func(rate float64, rss int64, exact bool) report.Throughput {
		return report.Throughput{Name: "kcat", EventsPerSec: rate, PeakRSS: rss, Exact: exact, Check: "ok"}
	}
	tests := []struct {
		name      string
		rounds    []report.Throughput
		wantRate  float64
		wantRSS   int64
		wantExact bool
	}{
		{"one round", []report.Throughput{row(100, 5, true)}, 100, 5, true},
		{"odd count: the middle", []report.Throughput{row(300, 5, true), row(100, 9, true), row(200, 7, true)}, 200, 9, true},
		{"even count: the lower middle", []report.Throughput{row(400, 1, true), row(100, 1, true), row(300, 1, true), row(200, 1, true)}, 200, 1, true},
		{"one lossy round unranks the contender", []report.Throughput{row(300, 1, true), row(100, 1, false), row(200, 1, true)}, 200, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := summarize([]string{"kcat", "rsyslog"}, map[string][]report.Throughput{"kcat": tt.rounds})
			if len(got) != 1 {
				t.Fatalf("got %d rows, want 1 (a contender with no rounds has no row)", len(got))
			}
			r := got[0]
			if r.EventsPerSec != tt.wantRate || r.PeakRSS != tt.wantRSS || r.Exact != tt.wantExact {
				t.Errorf("got rate %v, peak RSS %v, exact %v; want %v, %v, %v", r.EventsPerSec, r.PeakRSS, r.Exact, tt.wantRate, tt.wantRSS, tt.wantExact)
			}
			var want []float64
			for _, x := range tt.rounds {
				want = append(want, x.EventsPerSec)
			}
			if !slices.Equal(r.RoundRates, want) {
				t.Errorf("round rates %v, want %v in run order", r.RoundRates, want)
			}
			lo, hi := r.Spread()
			if lo != slices.Min(want) || hi != slices.Max(want) {
				t.Errorf("spread %v-%v, want %v-%v", lo, hi, slices.Min(want), slices.Max(want))
			}
		})
	}
}
