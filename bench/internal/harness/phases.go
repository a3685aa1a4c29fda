package harness

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/procstat"
	"github.com/mwaa-kafka/pipeline/bench/internal/report"
	"github.com/mwaa-kafka/pipeline/bench/internal/topiccheck"
)

// throughput carries the whole stream through each contender as fast as it goes, cfg.Rounds times with the
// contenders interleaved (so a burst of load from elsewhere on the machine hits one round of each, not every
// round of one), and keeps each contender's median round.
func (h *harness) throughput(ctx context.Context) ([]report.Throughput, error) {
	byName := map[string][]report.Throughput{}
	if len(h.cfg.Contenders) > 0 {
		if err := h.warmUp(ctx, contenderByName(h.cfg.Contenders[0])); err != nil {
			return nil, err
		}
	}
	for round := 1; round <= h.cfg.Rounds; round++ {
		for _, name := range h.cfg.Contenders {
			c := contenderByName(name)
			h.log("throughput: %s, %d events, round %d of %d", c.Label, h.cfg.Events, round, h.cfg.Rounds)
			row, err := h.throughputTrial(ctx, c, round)
			if err != nil {
				return summarize(h.cfg.Contenders, byName), err
			}
			byName[name] = append(byName[name], row)
		}
	}
	return summarize(h.cfg.Contenders, byName), nil
}

// warmUp carries a short stream through c on a fresh topic and discards the figures. The first trial on a
// freshly started broker paid for the broker's start rather than its own: the JVM still compiling the
// produce path, and the first idempotent producer's id fetched from the controller (later producers get
// theirs from the block the broker then holds). In quick mode that made the first contender of a round
// look three times slower than it is, waiting on the broker with little CPU of its own.
func (h *harness) warmUp(ctx context.Context, c contender) error {
	count := min(h.cfg.Events, warmUpEvents)
	h.log("warm-up (not measured): %s, %d events", c.Label, count)
	res, err := h.runTrial(ctx, trialSpec{phase: "warmup", c: c, count: count, queueKB: ourQueue(c)})
	if err != nil {
		return fmt.Errorf("warming up the broker with %s: %w", c.Label, err)
	}
	if s := res.seconds(); s > 0 {
		h.log("  %.0f events/s, %.2f CPU s (discarded)", float64(res.source.Sent)/s, res.usage.CPU.Seconds())
	}
	return nil
}

// warmUpEvents is the warm-up stream's length: long enough to exercise the produce path on the broker.
const warmUpEvents = 200_000

func (h *harness) throughputTrial(ctx context.Context, c contender, round int) (report.Throughput, error) {
	spec := trialSpec{phase: "throughput", c: c, count: h.cfg.Events, round: round}
	spec.queueKB = ourQueue(c)
	res, err := h.runTrial(ctx, spec)
	if ctx.Err() != nil {
		return report.Throughput{}, ctx.Err()
	}
	row := report.Throughput{Name: c.Name, Label: c.Label, Ours: c.Ours, Events: res.source.Sent, Bytes: res.source.Bytes,
		CPUSeconds: res.usage.CPU.Seconds(), PeakRSS: res.usage.PeakRSS, Exact: res.exact, Check: res.check.String(), RSS: res.samples}
	if err = errors.Join(err, res.procErr); err != nil {
		row.Error = err.Error()
	}
	if s := res.seconds(); s > 0 {
		row.Seconds = s
		row.EventsPerSec = float64(res.source.Sent) / s
		row.MBPerSec = float64(res.source.Bytes) / s / 1e6
	}
	if res.source.Sent > 0 {
		mev := float64(res.source.Sent) / 1e6
		row.CPUPerMEv = row.CPUSeconds / mev
		row.BrokerCPUPerMEv = res.brokerCPU.Seconds() / mev
		row.SourceCPUPerMEv = res.sourceCPU.Seconds() / mev
	}
	h.log("  %.0f events/s, %.1f MB/s, %.2f CPU s per million, peak RSS %.1f MiB; %s", row.EventsPerSec, row.MBPerSec,
		row.CPUPerMEv, float64(row.PeakRSS)/(1<<20), row.Check)
	if row.Error != "" {
		h.log("  error: %s", row.Error)
	}
	return row, nil
}

// summarize keeps, per contender, the round with the median events/s (the lower middle one for an even
// count), and records every round's rate. A contender is exact only if every round was: one lossy round
// unranks it, whatever the others did. Peak RSS is the largest of all rounds.
func summarize(order []string, byName map[string][]report.Throughput) []report.Throughput {
	var rows []report.Throughput
	for _, name := range order {
		rounds := byName[name]
		if len(rounds) == 0 {
			continue
		}
		sorted := slices.Clone(rounds)
		slices.SortFunc(sorted, func(a, b report.Throughput) int { return cmp.Compare(a.EventsPerSec, b.EventsPerSec) })
		row := sorted[(len(sorted)-1)/2]
		row.RoundRates = nil
		for _, r := range rounds {
			row.RoundRates = append(row.RoundRates, r.EventsPerSec)
			row.PeakRSS = max(row.PeakRSS, r.PeakRSS)
			if !r.Exact || r.Error != "" {
				row.Exact, row.Check, row.Error = r.Exact, r.Check, r.Error
			}
		}
		rows = append(rows, row)
	}
	return rows
}

// stallRecord is what the stall hook saw.
type stallRecord struct {
	from, to         float64 // on the sampler's clock
	readMid, readEnd float64
}

// stall runs each of our readers while the broker is paused for cfg.Stall, the source still pushing.
func (h *harness) stall(ctx context.Context) ([]report.Stall, error) {
	var rows []report.Stall
	lead := 2 * time.Second
	if h.cfg.Quick {
		lead = 500 * time.Millisecond
	}
	for _, name := range h.cfg.StallContenders {
		c := contenderByName(name)
		h.log("stall: %s, %d events, broker paused for %v after %v", c.Label, h.cfg.StallEvents, h.cfg.Stall, lead)
		rec := &stallRecord{}
		hook := func(ctx context.Context, t *liveTrial) error {
			if !sleepCtx(ctx, lead) {
				return ctx.Err()
			}
			rec.from = time.Since(t.sampler.Started()).Seconds()
			if err := h.stack.pause(true); err != nil {
				return err
			}
			// Whatever happens, the broker runs again.
			defer func() {
				if err := h.stack.pause(false); err != nil {
					h.log("warning: %v", err)
				}
			}()
			var errs []error
			if !sleepCtx(ctx, h.cfg.Stall/2) {
				return ctx.Err()
			}
			v, err := receivedTotal(ctx, t.metricsAddr)
			rec.readMid, errs = v, append(errs, err)
			if !sleepCtx(ctx, h.cfg.Stall-h.cfg.Stall/2) {
				return ctx.Err()
			}
			v, err = receivedTotal(ctx, t.metricsAddr)
			rec.readEnd, errs = v, append(errs, err)
			rec.to = time.Since(t.sampler.Started()).Seconds()
			return errors.Join(errs...)
		}
		res, err := h.runTrial(ctx, trialSpec{phase: "stall", c: c, count: h.cfg.StallEvents, queueKB: h.cfg.StallQueueKBytes,
			metrics: true, during: hook})
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		row := report.Stall{Name: c.Name, Label: c.Label, StallSeconds: h.cfg.Stall.Seconds(), StallFrom: rec.from, StallTo: rec.to,
			PeakRSS: res.usage.PeakRSS, ReadMid: rec.readMid, ReadEnd: rec.readEnd, Exact: res.exact, Check: res.check.String(), RSS: res.samples}
		row.RSSAtStall, row.RSSMidStall, row.RSSEndStall = stallRSS(res.samples, rec.from, rec.to)
		row.Flat = rec.to > rec.from && row.RSSEndStall > 0 && row.RSSEndStall-row.RSSMidStall <= report.FlatGrowth
		if err = errors.Join(err, res.procErr); err != nil {
			row.Error = err.Error()
		}
		h.log("  RSS at stall %.1f MiB, max 1st half %.1f, 2nd half %.1f, peak %.1f; lines read mid/end %.0f/%.0f; %s",
			mb(row.RSSAtStall), mb(row.RSSMidStall), mb(row.RSSEndStall), mb(row.PeakRSS), row.ReadMid, row.ReadEnd, row.Check)
		if row.Error != "" {
			h.log("  error: %s", row.Error)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// stallRSS returns the RSS when the stall began and the largest RSS in each half of it.
func stallRSS(samples []procstat.Sample, from, to float64) (at, firstHalf, secondHalf int64) {
	mid := (from + to) / 2
	for _, s := range samples {
		switch {
		case s.At <= from:
			at = s.RSS
		case s.At <= mid:
			firstHalf = max(firstHalf, s.RSS)
		case s.At <= to:
			secondHalf = max(secondHalf, s.RSS)
		}
	}
	return at, firstHalf, secondHalf
}

// latency sends at a fixed rate through each contender and reads send -> append times.
func (h *harness) latency(ctx context.Context) ([]report.Latency, error) {
	var rows []report.Latency
	count := uint64(h.cfg.LatencyRate * h.cfg.LatencyDuration.Seconds())
	for _, name := range h.cfg.LatencyContenders {
		c := contenderByName(name)
		h.log("latency: %s at %.0f events/s for %v", c.Label, h.cfg.LatencyRate, h.cfg.LatencyDuration)
		res, err := h.runTrial(ctx, trialSpec{phase: "latency", c: c, count: count, rate: h.cfg.LatencyRate, sendTimes: true, queueKB: ourQueue(c)})
		if ctx.Err() != nil {
			return rows, ctx.Err()
		}
		p50, p99, mx := topiccheck.Percentiles(res.check.Latencies)
		row := report.Latency{Name: c.Name, Label: c.Label, Ours: c.Ours, Rate: h.cfg.LatencyRate, Events: res.source.Sent,
			Samples: len(res.check.Latencies), P50ms: ms(p50), P99ms: ms(p99), MaxMs: ms(mx), Exact: res.exact, Check: res.check.String()}
		if err = errors.Join(err, res.procErr); err != nil {
			row.Error = err.Error()
		}
		h.log("  p50 %.1f ms, p99 %.1f ms, max %.1f ms over %d samples; %s", row.P50ms, row.P99ms, row.MaxMs, row.Samples, row.Check)
		if row.Error != "" {
			h.log("  error: %s", row.Error)
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func mb(b int64) float64 { return float64(b) / (1 << 20) }

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ourQueue is the local queue bound our readers get outside the stall phase: the peers' bound.
func ourQueue(c contender) int {
	if c.Ours {
		return queueKBytes
	}
	return 0
}
