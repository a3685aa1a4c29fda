package pipeline

import (
	"context"
	"io"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// startOps starts the watcher and, when enabled, the EMF emitter, and returns the function that stops both,
// waits for them, and closes the watcher's open episodes (call it once every line has settled). They outlive ctx (SIGTERM) on purpose: the drain is when a stall matters most.
func startOps(ctx context.Context, cfg Config, w *watcher, counts *Counts, k kafkaStatus, stdout io.Writer, log *slog.Logger) (stop func()) {
	octx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(octx)
	}()
	if cfg.Ops.EMFInterval > 0 {
		e := newEMFEmitter(stdout, cfg.Ops.EMFNamespace, cfg.Ops.EMFService, counts, counts.Reasons, k, w.stalled, log)
		e.credentialsUnavailable = w.credentialsUnavailable
		wg.Add(1)
		go func() {
			defer wg.Done()
			e.run(octx, cfg.Ops.EMFInterval)
		}()
	}
	return func() {
		cancel()
		wg.Wait()
		w.finish(w.now())
	}
}

// registerWatchMetrics adds the watcher's view to the Prometheus registry.
func registerWatchMetrics(m *metrics, w *watcher, k kafkaStatus) {
	const ns = "logreader"
	m.reg.MustRegister(
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "delivery_stalled",
			Help: "1 while lines wait and Kafka has acknowledged nothing for --stall-after."},
			func() float64 { return boolGauge(w.stalled()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "kafka_queue_bytes",
			Help: "Message bytes held by the Kafka client (queued or awaiting acknowledgement)."},
			func() float64 { return float64(k.QueuedBytes()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "credentials_unavailable",
			Help: "1 while the reader, running as a service, cannot get its Kafka credentials (the secret missing, unreadable or malformed) and retries."},
			func() float64 { return boolGauge(w.credentialsUnavailable()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "healthy",
			Help: "1 while /healthz answers 200."},
			func() float64 { return boolGauge(w.health().Status == "ok") }),
	)
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
