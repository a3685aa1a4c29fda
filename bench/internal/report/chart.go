package report

import (
	"fmt"
	"html"
	"io"
	"strings"

	"github.com/mwaa-kafka/pipeline/bench/internal/procstat"
)

var palette = []string{"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"}

// Chart writes an SVG with three panels: events/s per contender, each contender's RSS over its throughput
// run, and our readers' RSS through the broker stall (the stall shaded).
func Chart(w io.Writer, r Results) error {
	const width, barH, gap = 960, 22, 8
	var b strings.Builder
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	barsH := 50 + len(r.Throughput)*(barH+gap)
	lineH := 260
	height := barsH + lineH + 60
	if len(r.Stall) > 0 {
		height += lineH + 60
	}
	p(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", width, height)
	p(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")

	// Panel 1: throughput bars.
	p(`<text x="10" y="20" font-size="15" font-weight="bold">Throughput, events/s (%d events each; hatched = lost events, not ranked)</text>`+"\n", r.Events)
	maxEPS := 1.0
	for _, t := range r.Throughput {
		maxEPS = max(maxEPS, t.EventsPerSec)
	}
	const labelW, barMax = 260, 340 // leaves room for the figures written after the longest bar
	for i, t := range r.Throughput {
		y := 40 + i*(barH+gap)
		wBar := t.EventsPerSec / maxEPS * barMax
		fill := palette[i%len(palette)]
		opacity := "1"
		if !t.Ranked() {
			opacity = "0.3"
		}
		p(`<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", labelW-8, y+15, html.EscapeString(t.Label))
		p(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s" fill-opacity="%s"/>`+"\n", labelW, y, wBar, barH, fill, opacity)
		p(`<text x="%.1f" y="%d">%.0f ev/s, %.1f MB/s, %.2f CPU s/M, peak %s</text>`+"\n", float64(labelW)+wBar+6, y+15, t.EventsPerSec, t.MBPerSec, t.CPUPerMEv, mib(t.PeakRSS))
	}

	// Panel 2: RSS over the throughput runs.
	var series []line
	for i, t := range r.Throughput {
		series = append(series, line{label: t.Label, color: palette[i%len(palette)], samples: t.RSS})
	}
	lineChart(&b, 10, barsH+20, width-20, lineH, "RSS during the throughput run (MiB over seconds)", series, nil)

	// Panel 3: RSS through the stall.
	if len(r.Stall) > 0 {
		series = series[:0]
		var shade [][2]float64
		for i, s := range r.Stall {
			series = append(series, line{label: s.Label, color: palette[i%len(palette)], samples: s.RSS})
			shade = append(shade, [2]float64{s.StallFrom, s.StallTo})
		}
		lineChart(&b, 10, barsH+lineH+80, width-20, lineH, "RSS through the broker stall (shaded: broker paused)", series, shade)
	}
	p("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

type line struct {
	label, color string
	samples      []procstat.Sample
}

func lineChart(b *strings.Builder, x0, y0, w, h int, title string, series []line, shade [][2]float64) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	const left, bottom, top, legendW = 60, 30, 30, 250
	pw, ph := w-left-legendW, h-bottom-top
	maxT, maxM := 1.0, 1.0
	for _, s := range series {
		for _, v := range s.samples {
			maxT = max(maxT, v.At)
			maxM = max(maxM, float64(v.RSS)/(1<<20))
		}
	}
	maxM *= 1.1
	px := func(t float64) float64 { return float64(x0+left) + t/maxT*float64(pw) }
	py := func(m float64) float64 { return float64(y0+top+ph) - m/maxM*float64(ph) }
	p(`<text x="%d" y="%d" font-size="15" font-weight="bold">%s</text>`+"\n", x0, y0+15, html.EscapeString(title))
	for _, s := range shade {
		p(`<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="#999" fill-opacity="0.15"/>`+"\n", px(s[0]), y0+top, px(s[1])-px(s[0]), ph)
	}
	p(`<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#333"/>`+"\n", x0+left, y0+top, pw, ph)
	for i := 0; i <= 4; i++ {
		m := maxM * float64(i) / 4
		t := maxT * float64(i) / 4
		p(`<text x="%d" y="%.1f" text-anchor="end">%.0f</text>`+"\n", x0+left-4, py(m)+4, m)
		p(`<text x="%.1f" y="%d" text-anchor="middle">%.0fs</text>`+"\n", px(t), y0+top+ph+16, t)
	}
	for i, s := range series {
		if len(s.samples) == 0 {
			continue
		}
		var pts []string
		for _, v := range s.samples {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(v.At), py(float64(v.RSS)/(1<<20))))
		}
		p(`<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", s.color, strings.Join(pts, " "))
		ly := y0 + top + 10 + i*18
		p(`<rect x="%d" y="%d" width="12" height="4" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n",
			x0+left+pw+10, ly, s.color, x0+left+pw+28, ly+6, html.EscapeString(s.label))
	}
}
