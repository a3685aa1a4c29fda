package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// kafkaStatus is what the watcher reads from the producer (kafkaout.Producer).
type kafkaStatus interface {
	Fatal() error
	InFlight() int
	QueuedBytes() int64
	Waiting() int
	LastClientError() (time.Time, error)
	EventLoopRunning() bool
	CheckTopic(ctx context.Context, topic string) error
}

// Phases of the reader as /readyz and /healthz see them.
const (
	phaseStarting = "starting"
	phaseReading  = "reading"
	phaseStopped  = "stopped"
)

// watcher turns the ledger and the producer's state into the answers of /healthz and /readyz, and into the
// log lines an operator acts on: one WARN when delivery stalls and one INFO when it recovers, the same for
// bursts of dead letters, of lines Kafka gave up on (by error) and of refused connections, with
// rate-limited repeats while they last. It polls
// (the counters, the producer, the dead-letter reasons) rather than hooking the hot path, so watching costs
// the reader nothing per line.
type watcher struct {
	cfg     OpsConfig
	counts  *Counts
	kafka   kafkaStatus
	reasons func() map[string]uint64
	refused *refusals
	topics  []string
	log     *slog.Logger
	now     func() time.Time
	// tick is how often the counters are looked at; probeEvery how often the topics are checked while ready
	// (every tick while not).
	tick, probeEvery, probeTimeout time.Duration

	mu           sync.Mutex
	started      time.Time
	lastTick     time.Time
	phase        string
	stopErr      error
	lastAcked    uint64
	lastProgress time.Time
	stall        *stall
	probeErr     error // the last readiness probe's error; nil once a probe passed
	probed       bool
	cancelProbe  context.CancelFunc // calls off the probe under way, if any
	notReadyAt   time.Time          // when the reader last stopped being ready, while it is not
	credErr      error              // why the Kafka credentials cannot be had, while a service waits for them
	credSince    time.Time          // when that episode began
	credAttempts int                // failed reads in that episode
	deadLetters  burst
	failures     burst
	refusals     burst
	lastReasons  map[string]uint64
	lastFailures map[string]uint64
	lastRefused  map[string]uint64
}

// stall is one episode of delivery making no progress while lines wait.
type stall struct {
	since           time.Time // the last progress before it
	lastLog         time.Time
	inFlightAtStart uint64
	receivedAtStart uint64
	failedAtStart   uint64
}

func newWatcher(cfg OpsConfig, counts *Counts, kafka kafkaStatus, reasons func() map[string]uint64, refused *refusals,
	topics []string, log *slog.Logger) *watcher {
	w := &watcher{
		cfg: cfg, counts: counts, kafka: kafka, reasons: reasons, refused: refused, topics: topics, log: log,
		now: time.Now, tick: time.Second, probeEvery: 10 * time.Second, probeTimeout: 5 * time.Second,
		phase: phaseStarting,
		deadLetters: burst{msgStart: "lines dead-lettered", msgRepeat: "lines still being dead-lettered",
			msgEnd: "dead-lettering stopped"},
		failures: burst{msgStart: "deliveries failed", msgRepeat: "deliveries still failing",
			msgEnd: "delivery failures stopped", key: "errors"},
		refusals: burst{msgStart: "connections refused", msgRepeat: "connections still being refused",
			msgEnd: "connection refusals stopped"},
	}
	now := w.now()
	w.started, w.lastTick, w.lastProgress = now, now, now
	return w
}

// run watches until ctx is done. The readiness probe runs on a goroutine of its own, because a metadata
// request to a frozen broker blocks until its timeout and must not delay the stall checks.
func (w *watcher) run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.probeLoop(ctx)
	}()
	t := time.NewTicker(w.tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return
		case <-t.C:
			w.observe(w.now())
		}
	}
}

// setPhase records that reading started or stopped (err is why it stopped, when not asked to).
func (w *watcher) setPhase(phase string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.phase, w.stopErr = phase, err
	if phase == phaseReading {
		// The topics were just checked by the start-up wait.
		w.probed, w.probeErr = true, nil
	}
	if phase == phaseStopped && w.cancelProbe != nil {
		// A probe waiting for a broker that is gone would overlap the Kafka client's close and hold up the
		// end of the shutdown.
		w.cancelProbe()
	}
}

// credentialsFailed records a failed read of the Kafka credentials by a reader that waits for them (a
// service): the first failure of an episode is logged once (WARN) with its reason, later ones only at debug
// level, since the reason and the attempts are on /readyz and the episode is on the CredentialsUnavailable
// metric. err never holds a secret value (internal/secrets names keys, never what they hold).
func (w *watcher) credentialsFailed(err error, retryIn time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.credAttempts++
	if w.credErr == nil {
		w.credSince = w.now()
		w.credErr = err
		w.log.Warn("kafka credentials unavailable", "reason", err.Error(), "retry_in", retryIn.String(),
			"effect", "the reader stays up, not ready, and does not read its sources until it can read them")
		return
	}
	w.credErr = err
	w.log.Debug("kafka credentials still unavailable; retrying", "reason", err.Error(), "attempts", w.credAttempts,
		"retry_in", retryIn.String())
}

// credentialsLoaded ends the episode, if any, with one INFO line.
func (w *watcher) credentialsLoaded() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.credErr == nil {
		return
	}
	w.log.Info("kafka credentials available", "unavailable_seconds", seconds(w.now().Sub(w.credSince)),
		"failed_attempts", w.credAttempts)
	w.credErr, w.credAttempts = nil, 0
}

// credentialsUnavailable reports whether an episode is open (the CredentialsUnavailable metric).
func (w *watcher) credentialsUnavailable() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.credErr != nil
}

// observe is one look at the counters: stall detection and the dead-letter and refusal bursts.
func (w *watcher) observe(now time.Time) {
	s := w.counts.Snapshot()
	reasons, failures := w.reasons(), w.counts.DeliveryErrors()
	var refused map[string]uint64
	if w.refused != nil {
		refused = w.refused.snapshot()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastTick = now
	w.observeStall(now, s)
	w.observeBursts(now, reasons, failures, refused)
}

// observeStall opens, repeats and closes the stall episode. w.mu is held.
func (w *watcher) observeStall(now time.Time, s Summary) {
	acked := s.Delivered + s.DeadLettered
	ackedMore := acked != w.lastAcked
	progressed := ackedMore || s.InFlight == 0
	if progressed {
		w.lastAcked, w.lastProgress = acked, now
	}
	switch {
	case w.stall != nil && !ackedMore && s.InFlight == 0 && w.phase == phaseStopped:
		// The drain ended the stall by giving up on the lines, not by delivering them: no recovery. finish
		// closes the episode.
	case w.stall == nil && !progressed && now.Sub(w.lastProgress) >= w.cfg.StallAfter:
		w.stall = &stall{since: w.lastProgress, lastLog: now, inFlightAtStart: s.InFlight, receivedAtStart: s.Received,
			failedAtStart: s.Failed}
		w.log.Warn("delivery stalled", w.stallAttrs(now, s)...)
	case w.stall != nil && progressed:
		st := w.stall
		w.stall = nil
		w.log.Info("delivery recovered", "stalled_seconds", seconds(now.Sub(st.since)),
			"delayed_lines", st.inFlightAtStart+(s.Received-st.receivedAtStart), "failed_lines", s.Failed-st.failedAtStart,
			"in_flight", s.InFlight)
	case w.stall != nil && now.Sub(w.stall.lastLog) >= w.cfg.LogInterval:
		w.stall.lastLog = now
		w.log.Warn("delivery still stalled", append(w.stallAttrs(now, s),
			"received_during_stall", s.Received-w.stall.receivedAtStart)...)
	}
}

// observeBursts feeds what grew since the last look to the dead-letter, delivery-failure and refusal bursts.
// w.mu is held.
func (w *watcher) observeBursts(now time.Time, reasons, failures, refused map[string]uint64) {
	w.deadLetters.observe(w.log, now, diff(reasons, w.lastReasons), w.cfg.LogInterval)
	w.lastReasons = reasons
	w.failures.observe(w.log, now, diff(failures, w.lastFailures), w.cfg.LogInterval)
	w.lastFailures = failures
	w.refusals.observe(w.log, now, diff(refused, w.lastRefused), w.cfg.LogInterval)
	w.lastRefused = refused
}

// finish takes the last look, after the run's last line settled, and closes every episode still open, so
// that nothing is only in the summary: a burst that began after the last tick gets its WARN, and a stall or
// burst that lasted until the end gets its closing line (with at_shutdown set).
func (w *watcher) finish(now time.Time) {
	s := w.counts.Snapshot()
	reasons, failures := w.reasons(), w.counts.DeliveryErrors()
	var refused map[string]uint64
	if w.refused != nil {
		refused = w.refused.snapshot()
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lastTick = now
	if st := w.stall; st != nil {
		// Not "recovered": the drain ended it, and what could not be delivered was dead-lettered or failed.
		w.stall = nil
		w.log.Warn("delivery stalled until shutdown", "stalled_seconds", seconds(now.Sub(st.since)),
			"delayed_lines", st.inFlightAtStart+(s.Received-st.receivedAtStart), "failed_lines", s.Failed-st.failedAtStart,
			"in_flight", s.InFlight, "at_shutdown", true)
	}
	w.observeBursts(now, reasons, failures, refused)
	w.deadLetters.close(w.log, now)
	w.failures.close(w.log, now)
	w.refusals.close(w.log, now)
	if w.credErr != nil {
		w.log.Info("kafka credentials still unavailable at shutdown", "unavailable_seconds", seconds(now.Sub(w.credSince)),
			"failed_attempts", w.credAttempts, "at_shutdown", true)
	}
}

// stallAttrs says what is waiting and why: the local queue full (reading stopped), a broker the client
// reported unreachable, or simply no acknowledgement.
func (w *watcher) stallAttrs(now time.Time, s Summary) []any {
	cause := "no acknowledgement from kafka"
	reading := "reading"
	if w.kafka.Waiting() > 0 {
		cause, reading = "kafka client queue full", "stopped: waiting for room in the kafka client queue"
	}
	attrs := []any{"cause", cause, "waiting_seconds", seconds(now.Sub(w.lastProgress)), "in_flight", s.InFlight,
		"kafka_queue_messages", w.kafka.InFlight(), "kafka_queue_bytes", w.kafka.QueuedBytes(), "reading", reading}
	if at, err := w.kafka.LastClientError(); err != nil && !at.Before(w.lastProgress) {
		attrs = append(attrs, "kafka_error", err.Error())
		if cause == "no acknowledgement from kafka" {
			attrs[1] = "kafka brokers unreachable"
		}
	}
	return attrs
}

func (w *watcher) stalled() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stall != nil
}

// probeLoop checks that the brokers accept the credentials and the topics exist, while the reader reads:
// every probeEvery while that holds, every tick while it does not, so /readyz recovers quickly.
func (w *watcher) probeLoop(ctx context.Context) {
	next := w.tick
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		pctx, cancel := context.WithCancel(ctx)
		w.mu.Lock()
		reading := w.phase == phaseReading
		if reading {
			w.cancelProbe = cancel
		}
		w.mu.Unlock()
		if !reading {
			cancel()
			next = w.tick
			continue
		}
		err := w.probe(pctx)
		w.mu.Lock()
		w.cancelProbe = nil
		w.mu.Unlock()
		calledOff := pctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return
		}
		if calledOff { // reading stopped: no verdict
			next = w.tick
			continue
		}
		w.recordProbe(err)
		next = w.probeEvery
		if err != nil {
			next = w.tick
		}
	}
}

func (w *watcher) probe(ctx context.Context) error {
	for _, t := range w.topics {
		cctx, cancel := context.WithTimeout(ctx, w.probeTimeout)
		err := w.kafka.CheckTopic(cctx, t)
		cancel()
		if err != nil {
			return err
		}
	}
	return nil
}

func (w *watcher) recordProbe(err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	wasReady := w.probeErr == nil
	w.probed, w.probeErr = true, err
	switch {
	case wasReady && err != nil:
		w.notReadyAt = now
		w.log.Warn("not ready", "reason", err.Error())
	case !wasReady && err == nil:
		w.log.Info("ready again", "not_ready_seconds", seconds(now.Sub(w.notReadyAt)))
	}
}

// healthReport is the body of /healthz.
type healthReport struct {
	Status string `json:"status"` // ok or unhealthy
	// State is starting, delivering, idle, stalled, kafka_failed or stopped.
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
	// InFlight lines wait for Kafka; LastProgressSeconds is how long ago Kafka last acknowledged a line
	// (or nothing waited).
	InFlight            uint64  `json:"in_flight"`
	LastProgressSeconds float64 `json:"last_progress_seconds"`
}

// health says whether this process can still deliver: its Kafka client is not failed, its goroutines run,
// and deliveries progress while lines wait (a stall shorter than UnhealthyAfter is reported but healthy).
func (w *watcher) health() healthReport {
	s := w.counts.Snapshot()
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	r := healthReport{Status: "ok", InFlight: s.InFlight, LastProgressSeconds: seconds(now.Sub(w.lastProgress))}
	unhealthy := func(state, format string, a ...any) healthReport {
		r.Status, r.State, r.Reason = "unhealthy", state, fmt.Sprintf(format, a...)
		return r
	}
	if err := w.kafka.Fatal(); err != nil {
		return unhealthy("kafka_failed", "%v", err)
	}
	if !w.kafka.EventLoopRunning() {
		return unhealthy("kafka_failed", "the kafka client's delivery-report loop exited")
	}
	if w.phase == phaseStopped {
		if w.stopErr != nil {
			return unhealthy(phaseStopped, "the source reader exited: %v", w.stopErr)
		}
		return unhealthy(phaseStopped, "the source reader stopped; draining %d lines", s.InFlight)
	}
	if lag := now.Sub(w.lastTick); lag > 5*w.tick+time.Second {
		return unhealthy("stalled", "the health watcher has not run for %s", lag.Round(time.Second))
	}
	if w.stall != nil {
		stalledFor := now.Sub(w.stall.since)
		if stalledFor >= w.cfg.UnhealthyAfter {
			return unhealthy("stalled", "no delivery progress for %s while %d lines wait", stalledFor.Round(time.Second), s.InFlight)
		}
		r.State, r.Reason = "stalled", fmt.Sprintf("no delivery progress for %s while %d lines wait; unhealthy after %s",
			stalledFor.Round(time.Second), s.InFlight, w.cfg.UnhealthyAfter)
		return r
	}
	switch {
	case w.phase == phaseStarting && w.credErr != nil:
		// Alive: replacing the task would not fix the secret, and on a first deploy it would roll the
		// whole deployment back. /readyz and the CredentialsUnavailable metric carry it.
		r.State, r.Reason = "waiting_for_credentials", w.credErr.Error()
	case w.phase == phaseStarting:
		r.State = phaseStarting
	case s.InFlight > 0:
		r.State = "delivering"
	default:
		r.State = "idle"
	}
	return r
}

// readyReport is the body of /readyz.
type readyReport struct {
	Status string `json:"status"` // ready or not_ready
	Reason string `json:"reason,omitempty"`
}

// ready says whether the reader is doing its job: it has its credentials, the brokers accepted them and the
// topics exist at the last check, and it is reading its sources (in listen mode: its port is open).
func (w *watcher) ready() readyReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.phase == phaseStarting && w.credErr != nil:
		return readyReport{Status: "not_ready", Reason: fmt.Sprintf("waiting for the kafka credentials (failed reads: %d): %v",
			w.credAttempts, w.credErr)}
	case w.phase == phaseStarting:
		return readyReport{Status: "not_ready", Reason: "starting: waiting for the credentials to be accepted and the topics to exist"}
	case w.phase == phaseStopped:
		return readyReport{Status: "not_ready", Reason: "not reading: the source reader stopped"}
	case w.probeErr != nil:
		return readyReport{Status: "not_ready", Reason: w.probeErr.Error()}
	}
	return readyReport{Status: "ready"}
}

// accepting says whether the reader takes sources: it has its credentials, found its topics and opened its
// listen port (or dials its source), and has not begun to stop. Unlike ready, it does not follow later Kafka
// trouble: it is what the load balancer's health check reads, and ECS replaces a task its balancer finds
// unhealthy, so a readiness that follows Kafka would replace every reader during a Kafka outage, turning
// lines held back by TCP into lines failed at each drain. A reader that cannot deliver for long fails
// /healthz instead, and is replaced by its container health check.
func (w *watcher) accepting() readyReport {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.phase == phaseStarting && w.credErr != nil:
		return readyReport{Status: "not_accepting", Reason: "waiting for the kafka credentials"}
	case w.phase == phaseStarting:
		return readyReport{Status: "not_accepting", Reason: "starting: waiting for the credentials to be accepted and the topics to exist"}
	case w.phase == phaseStopped:
		return readyReport{Status: "not_accepting", Reason: "not reading: the source reader stopped"}
	}
	return readyReport{Status: "accepting"}
}

func (w *watcher) acceptingz(rw http.ResponseWriter, _ *http.Request) {
	r := w.accepting()
	code := http.StatusOK
	if r.Status != "accepting" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(rw, code, r)
}

func (w *watcher) healthz(rw http.ResponseWriter, _ *http.Request) {
	r := w.health()
	code := http.StatusOK
	if r.Status != "ok" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(rw, code, r)
}

func (w *watcher) readyz(rw http.ResponseWriter, _ *http.Request) {
	r := w.ready()
	code := http.StatusOK
	if r.Status != "ready" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(rw, code, r)
}

func writeJSON(rw http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(rw, err.Error(), http.StatusInternalServerError)
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	rw.WriteHeader(code)
	_, _ = rw.Write(append(b, '\n'))
}

// burst is an episode of events counted by reason (dead letters, refused connections): one WARN when it
// starts, a WARN with the counts of the interval every LogInterval while it lasts, one INFO with the totals
// when an interval passes without any.
type burst struct {
	msgStart, msgRepeat, msgEnd string
	// key names the counts' field in the log records: "reasons" unless set.
	key string

	open                    bool
	start, lastSeen, lastAt time.Time
	total, interval         map[string]uint64
}

func (b *burst) observe(log *slog.Logger, now time.Time, delta map[string]uint64, every time.Duration) {
	n := sum(delta)
	if n > 0 {
		if !b.open {
			b.open, b.start, b.lastAt = true, now, now
			b.total, b.interval = map[string]uint64{}, map[string]uint64{}
			addTo(b.total, delta)
			b.lastSeen = now
			log.Warn(b.msgStart, b.countsKey(), delta, "count", n)
			return
		}
		b.lastSeen = now
		addTo(b.total, delta)
		addTo(b.interval, delta)
	}
	if !b.open {
		return
	}
	switch {
	case n == 0 && now.Sub(b.lastSeen) >= every:
		b.open = false
		log.Info(b.msgEnd, "lasted_seconds", seconds(b.lastSeen.Sub(b.start)), b.countsKey(), b.total, "count", sum(b.total))
	case now.Sub(b.lastAt) >= every && sum(b.interval) > 0:
		log.Warn(b.msgRepeat, b.countsKey(), b.interval, "count", sum(b.interval), "interval_seconds", seconds(now.Sub(b.lastAt)),
			"total", sum(b.total), "since_seconds", seconds(now.Sub(b.start)))
		b.lastAt, b.interval = now, map[string]uint64{}
	}
}

// close ends an open episode at shutdown with its closing line.
func (b *burst) close(log *slog.Logger, now time.Time) {
	if !b.open {
		return
	}
	b.open = false
	log.Info(b.msgEnd, "lasted_seconds", seconds(b.lastSeen.Sub(b.start)), b.countsKey(), b.total, "count", sum(b.total),
		"at_shutdown", true)
}

func (b *burst) countsKey() string {
	if b.key == "" {
		return "reasons"
	}
	return b.key
}

// refusals counts connections refused at accept (the connection limit), by reason, for the burst log.
type refusals struct{ tally }

// add counts a refusal under the innermost error's text (the reason without what wrapped it).
func (r *refusals) add(reason error) {
	key := "refused"
	if reason != nil {
		key = reason.Error()
		for u := errors.Unwrap(reason); u != nil; u = errors.Unwrap(u) {
			key = u.Error()
		}
	}
	r.tally.add(key)
}

// diff returns what grew from prev to cur, by key.
func diff(cur, prev map[string]uint64) map[string]uint64 {
	var out map[string]uint64
	for k, v := range cur {
		if d := v - prev[k]; v > prev[k] {
			if out == nil {
				out = map[string]uint64{}
			}
			out[k] = d
		}
	}
	return out
}

func addTo(dst, src map[string]uint64) {
	for k, v := range src {
		dst[k] += v
	}
}

func sum(m map[string]uint64) uint64 {
	var n uint64
	for _, v := range m {
		n += v
	}
	return n
}

// seconds rounds d to tenths of a second, for log fields.
func seconds(d time.Duration) float64 {
	return float64(d.Round(100*time.Millisecond)) / float64(time.Second)
}
