package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// metrics are the reader's Prometheus series, on a registry of their own (no global state). The ledger's
// series (received, delivered, dead-lettered, failed, in flight, dead letters by reason) are read from
// Counts at scrape time; only the connection-level series are counted here.
type metrics struct {
	reg          *prometheus.Registry
	bytesRead    prometheus.Counter
	connsOpened  prometheus.Counter
	connsActive  prometheus.Gauge
	connsRefused prometheus.Counter
	// handshakeFailures counts failed source TLS handshakes by reason (tcpin's Handshake* reasons).
	handshakeFailures *prometheus.CounterVec
	ready             prometheus.Gauge
}

const metricsNamespace = "logreader"

func newMetrics(counts *Counts, inFlight func() float64) *metrics {
	const ns = metricsNamespace
	counter := func(name, help string, v *atomic.Uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: ns, Name: name, Help: help},
			func() float64 { return float64(v.Load()) })
	}
	m := &metrics{
		reg:          prometheus.NewRegistry(),
		bytesRead:    prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "bytes_read_total", Help: "Bytes read from TCP sources."}),
		connsOpened:  prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "connections_total", Help: "Source connections opened."}),
		connsActive:  prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "connections_active", Help: "Source connections open now."}),
		connsRefused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Name: "connections_refused_total", Help: "Connections closed at once because of the connection limit."}),
		handshakeFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Name: "tls_handshake_failures_total",
			Help: "Source TLS handshakes that failed, by reason (no_client_certificate, unknown_authority, expired_certificate, client_not_allowed, not_tls, timeout, ...)."}, []string{"reason"}),
		ready: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Name: "ready", Help: "1 while the reader is connected to Kafka and reading."}),
	}
	m.reg.MustRegister(
		counter("lines_received_total", "Lines framed from TCP (good and bad).", &counts.received),
		counter("events_delivered_total", "Events acknowledged by Kafka on the main topic.", &counts.delivered),
		counter("lines_dead_lettered_total", "Lines stored on the dead-letter path.", &counts.deadLettered),
		counter("lines_failed_total", "Lines neither delivered nor dead-lettered (lost).", &counts.failed),
		reasonsCollector{counts: counts, desc: prometheus.NewDesc(ns+"_dead_letters_total",
			"Lines sent to the dead-letter path, by reason.", []string{"reason"}, nil)},
		m.bytesRead, m.connsOpened, m.connsActive, m.connsRefused, m.handshakeFailures, m.ready,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "lines_in_flight", Help: "Lines received and not yet settled."},
			func() float64 { return float64(counts.Snapshot().InFlight) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "kafka_queue_messages", Help: "Messages held by the Kafka client."}, inFlight),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: ns, Name: "heartbeat_timestamp_seconds", Help: "Unix time of this scrape: a fresh value means the reader is alive."},
			func() float64 { return float64(time.Now().UnixNano()) / 1e9 }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// reasonsCollector exports Counts' dead letters by reason as one counter per reason.
type reasonsCollector struct {
	counts *Counts
	desc   *prometheus.Desc
}

func (c reasonsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c reasonsCollector) Collect(ch chan<- prometheus.Metric) {
	for reason, n := range c.counts.Reasons() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.CounterValue, float64(n), reason)
	}
}

// observer feeds tcpin's connection events into the metrics, and refusals into the watcher's burst log.
type observer struct {
	m       *metrics
	log     *slog.Logger
	refused *refusals
}

func (o observer) ConnOpened(tcpin.Source)        { o.m.connsOpened.Inc(); o.m.connsActive.Inc() }
func (o observer) ConnClosed(tcpin.Source, error) { o.m.connsActive.Dec() }
func (o observer) BytesRead(n int)                { o.m.bytesRead.Add(float64(n)) }

// HandshakeFailed counts; tcpin logs the failure itself, rate-limited per source.
func (o observer) HandshakeFailed(_, reason string) {
	o.m.handshakeFailures.WithLabelValues(reason).Inc()
}
func (o observer) ConnRefused(remote string, reason error) {
	o.m.connsRefused.Inc()
	// One line per refusal would flood the log exactly when the reader is under pressure: the watcher logs
	// the burst (first, every --log-interval, and its end) with counts by reason.
	if o.refused != nil {
		o.refused.add(reason)
	}
	o.log.Debug("connection refused", "remote", remote, "reason", reason)
}

// serveHTTP serves /metrics, /healthz (this process can still deliver: its Kafka client is not failed, its
// goroutines run, deliveries progress while lines wait), /readyz (credentials accepted, topics present,
// reading) and /acceptingz (sources are taken: see watcher.accepting) on addr until ctx is done. The probes
// answer 200 or 503 with a small JSON body saying why.
func serveHTTP(ctx context.Context, addr string, m *metrics, w *watcher, log *slog.Logger) (stop func(), err error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc(readerspec.HealthPath, w.healthz)
	mux.HandleFunc(readerspec.ReadyPath, w.readyz)
	mux.HandleFunc(readerspec.AcceptingPath, w.acceptingz)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listening for metrics on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("metrics server", "err", err)
		}
	}()
	return func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("stopping the metrics server", "err", err)
		}
		<-done
	}, nil
}
