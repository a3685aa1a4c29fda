// Package pipeline wires the reader: credentials, the Kafka producer, validation, the dead-letter path,
// accounting, metrics, bounded runs and the shutdown order (stop reading, drain, flush with a deadline, close).
package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"sync"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/tcpin"
)

// ErrLinesLost is returned when a run ends with lines that were neither delivered nor dead-lettered.
var ErrLinesLost = errors.New("lines lost")

// Run reads until ctx is done or a bound is reached, then drains, and returns the final summary.
// stdout receives the summary as one JSON line.
func Run(ctx context.Context, cfg Config, stdout io.Writer, log *slog.Logger) (Summary, error) {
	start := time.Now()
	counts := &Counts{}
	s, err := run(ctx, cfg, counts, stdout, log)
	s.Duration = time.Since(start).Seconds()
	if s.Duration > 0 {
		s.EventsPerSec = float64(s.Delivered) / s.Duration
	}
	if err == nil && s.Failed > 0 {
		err = fmt.Errorf("%w: %d lines were neither delivered nor dead-lettered", ErrLinesLost, s.Failed)
	}
	if err == nil && !s.Balanced() {
		err = fmt.Errorf("%w: ledger does not balance: %+v", ErrLinesLost, s)
	}
	if err != nil {
		s.Error = err.Error()
	}
	b, _ := json.Marshal(s)
	fmt.Fprintln(stdout, string(b))
	if cfg.SummaryFile != "" {
		if werr := os.WriteFile(cfg.SummaryFile, append(b, '\n'), 0o644); werr != nil {
			err = errors.Join(err, fmt.Errorf("writing --summary-file: %w", werr))
		}
	}
	log.Info("reader finished", "received", s.Received, "delivered", s.Delivered, "dead_lettered", s.DeadLettered,
		"failed", s.Failed, "in_flight", s.InFlight, "seconds", s.Duration)
	return s, err
}

// testHookProducer, when a test sets it, receives the producer as soon as it exists (to inject faults into it).
var testHookProducer func(*kafkaout.Producer)

// testHookDrained, when a test sets it, runs once the drain is over, while /healthz and /readyz still answer.
var testHookDrained func()

func run(ctx context.Context, cfg Config, counts *Counts, stdout io.Writer, log *slog.Logger) (summary Summary, err error) {
	startCtx := ctx
	if cfg.Bounded() {
		var cancel context.CancelFunc
		startCtx, cancel = context.WithTimeout(ctx, cfg.StartupTimeout)
		defer cancel()
	}

	// A bounded run (the DAG's, a scheduled one) has an end and someone reading its outcome: without its
	// credentials it fails with the reason instead of waiting. A service tries once here too, so that what no
	// retry can fix (no AWS configuration at all) ends it before anything is served.
	var creds secrets.Kafka
	var credErr error
	if cfg.Bounded() {
		if creds, err = loadCredentials(startCtx, cfg, log); err != nil {
			return counts.Snapshot(), err
		}
	} else if creds, credErr = readCredentials(ctx, cfg); credErr != nil && !worthRetrying(cfg, credErr) {
		return counts.Snapshot(), credErr
	}

	// The watcher, the metrics and the HTTP endpoints come next: a service waiting for its credentials or
	// its brokers is alive and says on /readyz why it is not ready. The producer, made once the credentials
	// are known, is handed to them then. Their stop functions are deferred first, so they run last: after
	// the drain, the producer's close and the dead-letter sink's, with the final counts.
	kafka := &producerStatus{}
	m := newMetrics(counts, func() float64 { return float64(kafka.InFlight()) })
	topics := []string{cfg.Topic}
	if cfg.DLQFile == "" {
		topics = append(topics, cfg.DLQTopic)
	}
	refused := &refusals{}
	watch := newWatcher(cfg.Ops, counts, kafka, counts.Reasons, refused, topics, log)
	stopWatch := startOps(ctx, cfg, watch, counts, kafka, stdout, log)
	defer stopWatch()
	registerWatchMetrics(m, watch, kafka)
	if cfg.MetricsAddr != "" {
		stopHTTP, err := serveHTTP(ctx, cfg.MetricsAddr, m, watch, log)
		if err != nil {
			return counts.Snapshot(), err
		}
		defer stopHTTP()
	}

	if credErr != nil {
		if creds, err = awaitCredentials(ctx, cfg, watch, credErr); err != nil {
			return counts.Snapshot(), err
		}
	}

	// One clock bounds everything after reading stops (see shutdown); until it runs out, lines already read
	// keep waiting for Kafka.
	sd := newShutdown(ctx, cfg.DrainTimeout)
	defer sd.release()
	readCtx, stopReading := context.WithCancel(ctx)
	defer stopReading()

	h := &handler{
		v: event.NewValidator(cfg.Validation), topic: cfg.Topic, counts: counts, log: log,
		perMessage: cfg.EventsPerMessage, maxMsg: cfg.MaxMessageBytes, produceCtx: sd.flushCtx,
		maxEvents: cfg.MaxEvents, stopReading: stopReading,
	}

	refresh := &credentialRefresher{cfg: cfg, log: log, current: creds.Password}
	kcfg := cfg.Kafka
	kcfg.Connection = kcfg.Connection.WithCredentials(creds)
	kcfg.MessageMaxBytes = max(cfg.MaxMessageBytes, cfg.Source.MaxLineBytes)
	kcfg.Logger = log
	// A fatal client error stops reading at once: every later line would fail, so the source is better held
	// back by TCP (and, once this process exits non-zero after the drain, served by its replacement).
	onFatal := kafkaout.OnFatal(func(err error) {
		log.Error("kafka client failed: reading stopped; the reader exits with an error after the drain so that it is replaced",
			"err", err)
		stopReading()
	})
	prod, err := kafkaout.New(kcfg, h.delivered, kafkaout.OnAuthFailure(func() { refresh.refresh(ctx) }), onFatal)
	if err != nil {
		return counts.Snapshot(), err
	}
	kafka.set(prod)
	refresh.setProducer(prod)
	h.prod = prod
	if testHookProducer != nil {
		testHookProducer(prod)
	}
	// Close is idempotent and returns at once when a close already began, so this deferred call never waits
	// for a close that overran the shutdown deadline (see within below).
	defer prod.Close()

	if cfg.DLQFile != "" {
		if h.dlq, err = newFileSink(cfg.DLQFile, counts, log); err != nil {
			return counts.Snapshot(), err
		}
	} else {
		h.dlq = &kafkaSink{p: prod, topic: cfg.DLQTopic}
	}
	// The sink closes after the producer (whose purge still dead-letters) and before the summary, so the
	// summary counts only dead letters the sink stored.
	var dlqErr error
	dlqClosed := false
	closeDLQ := func() {
		if !dlqClosed {
			dlqClosed = true
			dlqErr = h.dlq.Close()
		}
	}
	defer func() {
		if closeDLQ(); dlqErr != nil {
			err = errors.Join(err, dlqErr)
		}
	}()

	// Nothing is read from TCP before Kafka answers and the topics exist: a line read is a line we can deliver.
	if err := waitForTopics(startCtx, cfg, prod, topics, log); err != nil {
		return counts.Snapshot(), err
	}

	if cfg.Duration > 0 {
		var cancel context.CancelFunc
		readCtx, cancel = context.WithTimeout(readCtx, cfg.Duration)
		defer cancel()
	}
	tcfg := cfg.Source
	tcfg.Logger, tcfg.Observer = log, observer{m: m, log: log, refused: refused}
	tcfg.LogInterval = cfg.Ops.LogInterval // refused TLS handshakes follow the same cadence as other trouble
	var stopTLS func()
	if tcfg.TLS, stopTLS, err = startSourceTLS(ctx, cfg.Source.TLSConfig, cfg.Source.Mode, log); err != nil {
		return counts.Snapshot(), err
	}
	defer stopTLS()
	// In listen mode the port is opened here, before the reader counts as ready: /readyz (which the load
	// balancer's health check reads) must not route a source to a task whose port is not open yet.
	var ln net.Listener
	if cfg.Source.Mode == tcpin.Listen {
		var lc net.ListenConfig
		if ln, err = lc.Listen(ctx, "tcp", cfg.Source.Addr); err != nil {
			return counts.Snapshot(), fmt.Errorf("listening on --source-addr %s: %w", cfg.Source.Addr, err)
		}
		defer ln.Close() // the reader closes it when it stops; this covers a failure before it runs
	}
	var reader tcpin.Reader
	if cfg.Reader == Basic {
		reader, err = tcpin.NewTCPLogReader(tcfg, ln, h)
	} else {
		reader, err = tcpin.NewHighPerfTCPReader(tcfg, ln, h)
	}
	if err != nil {
		return counts.Snapshot(), err
	}

	watch.setPhase(phaseReading, nil)
	m.ready.Set(1)
	log.Info("reading", "mode", cfg.Source.Mode.String(), "addr", cfg.Source.Addr, "reader", cfg.Reader.String(), "topic", cfg.Topic,
		"validation", cfg.Validation.String(), "events_per_message", cfg.EventsPerMessage)
	// The shutdown clock starts the moment reading stops; Produce calls still waiting for room see it.
	stopClock := context.AfterFunc(readCtx, sd.start)
	defer stopClock()
	rerr := reader.Run(readCtx)
	deadline := sd.deadlineTime()
	watch.setPhase(phaseStopped, rerr)
	m.ready.Set(0)

	log.Info("draining", "in_flight", counts.Snapshot().InFlight, "deadline_in", time.Until(deadline).Round(time.Millisecond).String())
	if left := prod.Flush(sd.flushCtx); left > 0 {
		log.Error("drain deadline passed with messages unacknowledged; they are dead-lettered or counted failed",
			"messages", left, "drain_timeout", cfg.DrainTimeout.String())
	}
	if !within(deadline, prod.Close) {
		// The close never took this long in the tests; if it does, the summary still comes before the task's
		// stop timeout.
		n := counts.abandon()
		log.Error("the kafka client did not close by the shutdown deadline; the lines it still held are counted failed",
			"lines", n, "drain_timeout", cfg.DrainTimeout.String())
	}
	closeDLQ()
	if testHookDrained != nil {
		testHookDrained()
	}
	summary = counts.Snapshot()
	summary.DeadLetterReasons = counts.Reasons()
	if rerr != nil {
		rerr = fmt.Errorf("reading log source: %w", rerr)
	}
	// A failed client ends the run in error (the process exits non-zero), after the drain.
	return summary, errors.Join(prod.Fatal(), rerr)
}

// readCredentials reads the Kafka credentials once: from the secret, or the environment with --credentials
// env; none are needed for a plaintext or TLS-only cluster given with --bootstrap. Errors name the secret and
// its region (the most common mistake on a first deploy is a secret in another region), never a value.
func readCredentials(ctx context.Context, cfg Config) (secrets.Kafka, error) {
	if !cfg.Kafka.SecurityProtocol.UsesSASL() && cfg.Kafka.Brokers != "" {
		return secrets.Kafka{BootstrapServers: cfg.Kafka.Brokers}, nil
	}
	if cfg.Credentials.Source == secrets.SourceEnv {
		k, err := secrets.FromEnv(os.LookupEnv)
		if err != nil {
			return k, fmt.Errorf("reading kafka credentials from the environment: %w", err)
		}
		return k, nil
	}
	k, err := secrets.FromSecretsManager(ctx, cfg.Credentials.Options)
	if err != nil {
		err = fmt.Errorf("reading kafka credentials from secret %s in %s: %w", cfg.Credentials.SecretName, cfg.Credentials.Region, err)
		if errors.Is(err, secrets.ErrNoCredentials) {
			return k, hintError{err, noCredentialsHint}
		}
	}
	return k, err
}

// loadCredentials reads the Kafka credentials for a bounded run or a refresh. Transient failures (an
// unreachable endpoint) are retried with backoff until ctx is done; a missing or malformed secret fails at
// once, naming the key, never the value.
func loadCredentials(ctx context.Context, cfg Config, log *slog.Logger) (secrets.Kafka, error) {
	backoff := 500 * time.Millisecond
	for {
		k, err := readCredentials(ctx, cfg)
		if err == nil || !errors.Is(err, secrets.ErrUnreachable) || ctx.Err() != nil {
			return k, err
		}
		log.Warn("secrets manager unreachable; retrying", "secret", cfg.Credentials.SecretName, "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return k, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// awaitCredentials reads the Kafka credentials for a reader running as a service, after a first read failed
// with first. Until it can, the reader stays up: alive, not ready with the reason (w), retrying with capped,
// jittered exponential backoff, because a secret created, fixed, moved to the right region or made readable
// later must not need a new deployment, and a reader that exits instead gets its first deployment rolled
// back by the ECS circuit breaker.
func awaitCredentials(ctx context.Context, cfg Config, w *watcher, first error) (secrets.Kafka, error) {
	backoff := min(time.Second, cfg.SecretRetryMax)
	err := first
	for {
		if ctx.Err() != nil {
			return secrets.Kafka{}, fmt.Errorf("stopped while waiting for the kafka credentials: %w", err)
		}
		wait := jitter(backoff)
		w.credentialsFailed(err, wait)
		select {
		case <-ctx.Done():
			return secrets.Kafka{}, fmt.Errorf("stopped while waiting for the kafka credentials: %w", err)
		case <-time.After(wait):
		}
		backoff = min(2*backoff, cfg.SecretRetryMax)
		var k secrets.Kafka
		if k, err = readCredentials(ctx, cfg); err == nil {
			w.credentialsLoaded()
			return k, nil
		}
	}
}

// worthRetrying reports whether a service should wait for credentials that failed with err: everything the
// secret's owner can fix while the reader runs. Not a machine with no AWS configuration at all (a developer's
// first run) nor --credentials env: the environment of a running process does not change.
func worthRetrying(cfg Config, err error) bool {
	return !errors.Is(err, secrets.ErrNoCredentials) && cfg.Credentials.Source != secrets.SourceEnv
}

// jitter spreads d over [d/2, d], so that the tasks of a service started together do not call the API in
// step.
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

// noCredentialsHint tells a first run with no AWS configuration at all how to point the reader at the local
// stack or past Secrets Manager.
const noCredentialsHint = "to use the local stack, run `source .cache/stack/stack.env` first (it sets the emulator's endpoint, " +
	"region and keys); or pass --credentials env with KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD set"

// hintError appends what the user can do about err to its message; errors.Is and errors.As see err.
type hintError struct {
	err  error
	hint string
}

func (e hintError) Error() string { return e.err.Error() + "; " + e.hint }
func (e hintError) Unwrap() error { return e.err }

// waitForTopics checks that the brokers answer and the topics exist. In bounded mode it tries until the
// startup deadline and fails; as a service it keeps trying (logging why) until ctx ends, since the broker or
// the topic may come a little after the reader.
func waitForTopics(ctx context.Context, cfg Config, prod *kafkaout.Producer, topics []string, log *slog.Logger) error {
	backoff := time.Second
	for {
		var err error
		for _, t := range topics {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err = prod.CheckTopic(cctx, t)
			cancel()
			if err != nil {
				break
			}
		}
		if err == nil {
			return nil
		}
		fatal := errors.Is(err, kafkaout.ErrAuthentication) || errors.Is(err, kafkaout.ErrTLS) || errors.Is(err, kafkaout.ErrTopicNotFound)
		if ctx.Err() != nil || (cfg.Bounded() && fatal) {
			return fmt.Errorf("kafka not usable: %w", err)
		}
		log.Warn("kafka not ready; retrying", "err", err, "retry_in", backoff.String())
		select {
		case <-ctx.Done():
			return fmt.Errorf("kafka not usable: %w", err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 30*time.Second)
	}
}

// credentialRefresher re-reads the secret after the broker rejects the credentials (a rotated password) and
// hands new ones to the running producer. Attempts are spaced so a wrong password does not hammer the API.
type credentialRefresher struct {
	cfg     Config
	prod    *kafkaout.Producer
	log     *slog.Logger
	mu      sync.Mutex
	last    time.Time
	current string
}

func (r *credentialRefresher) setProducer(p *kafkaout.Producer) {
	r.mu.Lock()
	r.prod = p
	r.mu.Unlock()
}

func (r *credentialRefresher) refresh(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.prod == nil || !r.cfg.Kafka.SecurityProtocol.UsesSASL() {
		return
	}
	if time.Since(r.last) < 5*time.Second {
		return
	}
	r.last = time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	k, err := loadCredentials(cctx, r.cfg, r.log)
	if err != nil {
		r.log.Error("re-reading kafka credentials after an authentication failure", "err", err)
		return
	}
	if k.Password == r.current {
		r.log.Warn("kafka rejected the credentials and the secret still holds the same ones")
		return
	}
	if err := r.prod.SetCredentials(k.Username, k.Password); err != nil {
		r.log.Error("applying rotated kafka credentials", "err", err)
		return
	}
	r.current = k.Password
	r.log.Info("applied rotated kafka credentials from the secret", "secret", r.cfg.Credentials.SecretName)
}
