package pipeline

import (
	"context"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// emfEmitter writes the reader's key counters as CloudWatch Embedded Metric Format records: in ECS the
// awslogs driver ships stdout to CloudWatch Logs, which extracts the metrics, so no agent or sidecar and no
// PutMetricData permission is needed. Counters are written as what happened since the previous record, so
// CloudWatch's Sum over a period is the count in that period whatever the number of tasks.
type emfEmitter struct {
	w         io.Writer
	namespace string
	service   string
	counts    *Counts
	reasons   func() map[string]uint64
	kafka     kafkaStatus
	stalled   func() bool
	// credentialsUnavailable, when set, gives the CredentialsUnavailable gauge.
	credentialsUnavailable func() bool
	log                    *slog.Logger
	task                   string // a property naming this process, for Logs Insights

	last        Summary
	lastReasons map[string]uint64
}

func newEMFEmitter(w io.Writer, namespace, service string, counts *Counts, reasons func() map[string]uint64, kafka kafkaStatus,
	stalled func() bool, log *slog.Logger) *emfEmitter {
	host, _ := os.Hostname()
	return &emfEmitter{w: w, namespace: namespace, service: service, counts: counts, reasons: reasons, kafka: kafka, stalled: stalled,
		log: log, task: host}
}

// run writes a record every interval until ctx is done, then a last one with what happened since.
func (e *emfEmitter) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			e.emit(time.Now())
			return
		case now := <-t.C:
			e.emit(now)
		}
	}
}

func (e *emfEmitter) emit(now time.Time) {
	s := e.counts.Snapshot()
	reasons := e.reasons()
	stalled := 0.0
	if e.stalled() {
		stalled = 1
	}
	dims := map[string]string{cwmetric.DimService: e.service}
	rec := cwmetric.Record{
		Namespace: e.namespace, Time: now, Dimensions: dims,
		Metrics: []cwmetric.Metric{
			{Name: cwmetric.LinesReceived, Unit: "Count", Value: float64(s.Received - e.last.Received)},
			{Name: cwmetric.EventsDelivered, Unit: "Count", Value: float64(s.Delivered - e.last.Delivered)},
			{Name: cwmetric.LinesDeadLettered, Unit: "Count", Value: float64(s.DeadLettered - e.last.DeadLettered)},
			{Name: cwmetric.LinesFailed, Unit: "Count", Value: float64(s.Failed - e.last.Failed)},
			{Name: cwmetric.LinesInFlight, Unit: "Count", Value: float64(s.InFlight)},
			{Name: cwmetric.KafkaQueueBytes, Unit: "Bytes", Value: float64(e.kafka.QueuedBytes())},
			{Name: cwmetric.DeliveryStalled, Unit: "None", Value: stalled},
		},
		Properties: map[string]any{"task": e.task, "record": "reader_metrics"},
	}
	if e.credentialsUnavailable != nil {
		rec.Metrics = append(rec.Metrics, cwmetric.Metric{Name: cwmetric.CredentialsUnavailable, Unit: "None",
			Value: boolGauge(e.credentialsUnavailable())})
	}
	if err := cwmetric.Write(e.w, rec); err != nil {
		e.log.Warn("writing EMF metrics", "err", err)
	}
	delta := diff(reasons, e.lastReasons)
	for _, reason := range slices.Sorted(maps.Keys(delta)) {
		err := cwmetric.Write(e.w, cwmetric.Record{
			Namespace: e.namespace, Time: now,
			Dimensions: map[string]string{cwmetric.DimService: e.service, cwmetric.DimReason: reason},
			Metrics:    []cwmetric.Metric{{Name: cwmetric.DeadLetters, Unit: "Count", Value: float64(delta[reason])}},
			Properties: map[string]any{"task": e.task, "record": "reader_dead_letters"},
		})
		if err != nil {
			e.log.Warn("writing EMF metrics", "err", err)
		}
	}
	e.last, e.lastReasons = s, reasons
}
