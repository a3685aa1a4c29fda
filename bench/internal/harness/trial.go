package harness

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/procstat"
	"github.com/mwaa-kafka/pipeline/bench/internal/topiccheck"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// trialSpec is one contender carrying one stream to one fresh topic.
type trialSpec struct {
	phase     string
	c         contender
	count     uint64
	rate      float64 // 0: as fast as the contender reads
	sendTimes bool    // record send times for latency
	queueKB   int     // our readers' local queue bound (0: default)
	metrics   bool    // serve our readers' /metrics (for the stall phase)
	round     int     // the throughput round (from 1); 0 in the other phases
	// during, when set, runs alongside the contender from the moment the source starts streaming.
	during func(ctx context.Context, t *liveTrial) error
}

// liveTrial is what a during hook can see of a running trial.
type liveTrial struct {
	sampler     *procstat.Sampler
	metricsAddr string
	started     time.Time // the source's first connection
}

// trialResult is what one trial measured.
type trialResult struct {
	c        contender
	source   sourceStats
	start    time.Time // first byte sent
	samples  []procstat.Sample
	sampleT0 time.Time
	usage    usage
	// brokerCPU and sourceCPU are what the broker and the log source spent during the trial: with the
	// contender's own CPU they are the whole CPU budget an event costs on this machine.
	brokerCPU time.Duration
	sourceCPU time.Duration
	check     topiccheck.Result
	exact     bool
	procErr   error // the contender's own failure (exit status), if any
}

// seconds runs from the first byte sent to the broker's last append.
func (r trialResult) seconds() float64 {
	if r.start.IsZero() || r.check.LastAppend.IsZero() {
		return 0
	}
	return r.check.LastAppend.Sub(r.start).Seconds()
}

func (h *harness) runTrial(ctx context.Context, spec trialSpec) (res trialResult, err error) {
	c := spec.c
	res.c = c
	dir := filepath.Join(h.runDir, spec.phase+"-"+c.Name)
	if spec.round > 0 {
		dir = fmt.Sprintf("%s-%d", dir, spec.round)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return res, fmt.Errorf("creating %s: %w", dir, err)
	}
	topic := fmt.Sprintf("bench_%s_%s_%d", spec.phase, strings.ReplaceAll(c.Name, "-", "_"), time.Now().UnixNano())
	if err := topiccheck.CreateTopic(ctx, h.stack.bootstrap(), topic, h.cfg.Partitions); err != nil {
		return res, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := kafkatest.DeleteTopic(dctx, h.stack.bootstrap(), topic); derr != nil {
			h.log("warning: %v", derr)
		}
	}()
	tctx, cancel := context.WithTimeout(ctx, h.trialTimeout(spec))
	defer cancel()

	l := launch{topic: topic, maxEvents: spec.count, queueKBytes: spec.queueKB, dir: dir}
	if spec.metrics {
		port, err := freePort()
		if err != nil {
			return res, err
		}
		l.metricsAddr = loopback(port)
	}
	src := sourceSpec{count: spec.count, rate: spec.rate}
	if c.tls {
		src.tlsCert, src.tlsKey = h.tls.cert, h.tls.key
	}
	if spec.sendTimes {
		src.sendTimes, src.timesEvery = filepath.Join(dir, "send-times.csv"), h.cfg.LatencySampleEvery
	}
	var (
		sp     *sourceProc
		cmd    *exec.Cmd
		exited = make(chan struct{})
		waited error
	)
	stopAll := func() {
		if cmd != nil && cmd.ProcessState == nil {
			stopProcess(cmd, 5*time.Second)
		}
		if sp != nil && sp.cmd.ProcessState == nil {
			stopProcess(sp.cmd, 5*time.Second)
		}
	}
	defer func() {
		if err != nil {
			stopAll()
			if cmd != nil {
				<-exited
			}
		}
	}()
	startCmd := func() error {
		if cmd, err = h.start(tctx, c, l); err != nil {
			return err
		}
		go func() {
			waited = cmd.Wait()
			close(exited)
		}()
		return nil
	}
	srcLog := filepath.Join(dir, "logsource.log")
	brokerPID, err := h.stack.brokerPID()
	if err != nil {
		return res, err
	}
	broker0, err := procstat.CPUTime(brokerPID)
	if err != nil {
		return res, fmt.Errorf("reading the broker's CPU time: %w", err)
	}
	if c.listens {
		port, err := freePort()
		if err != nil {
			return res, err
		}
		l.listenPort = port
		if err := startCmd(); err != nil {
			return res, err
		}
		if err := waitListening(tctx, loopback(port), exited, 30*time.Second); err != nil {
			return res, fmt.Errorf("%s: %w; see %s", c.Label, err, dir)
		}
		src.connect = loopback(port)
		if sp, err = startSource(tctx, h.bins.logsource, h.cfg, src, srcLog); err != nil {
			return res, err
		}
	} else {
		if sp, err = startSource(tctx, h.bins.logsource, h.cfg, src, srcLog); err != nil {
			return res, err
		}
		if l.sourceAddr, err = sp.listenAddr(tctx); err != nil {
			return res, err
		}
		if err := startCmd(); err != nil {
			return res, err
		}
	}
	sampler := procstat.Start(tctx, cmd.Process.Pid, 50*time.Millisecond)
	res.sampleT0 = sampler.Started()

	duringDone := make(chan error, 1)
	if spec.during != nil {
		go func() {
			select {
			case <-sp.started:
			case <-tctx.Done():
				duringDone <- tctx.Err()
				return
			}
			live := &liveTrial{sampler: sampler, metricsAddr: l.metricsAddr, started: sp.startedAt}
			duringDone <- spec.during(tctx, live)
		}()
	} else {
		duringDone <- nil
	}

	if c.listens {
		// A daemon runs until stopped: wait for the source to finish, then for the topic to hold every event
		// (or to stop growing), then stop it.
		res.source, res.start, err = sp.wait(tctx)
		if err != nil {
			return res, err
		}
		if err := h.awaitTopic(tctx, topic, spec.count, exited); err != nil {
			return res, err
		}
		stopProcess(cmd, 10*time.Second)
		<-exited
	} else {
		select {
		case <-exited:
		case <-tctx.Done():
			return res, fmt.Errorf("%s did not finish within %v: %w; see %s", c.Label, h.trialTimeout(spec), tctx.Err(), dir)
		}
		if waited != nil && sp.cmd.ProcessState == nil {
			// The contender failed (a bad flag, a refused setting): the source would wait for it until the
			// trial's timeout.
			stopProcess(sp.cmd, time.Second)
		}
		res.source, res.start, err = sp.wait(tctx)
		if err != nil {
			return res, err
		}
		if waited != nil {
			res.procErr = fmt.Errorf("%s exited: %w; see %s", c.Label, waited, dir)
		}
	}
	if broker1, err := procstat.CPUTime(brokerPID); err == nil {
		res.brokerCPU = broker1 - broker0
	}
	res.sourceCPU = usageOf(sp.cmd).CPU
	res.samples = sampler.Stop()
	res.usage = usageOf(cmd)
	res.usage.PeakRSS = sampler.Peak()
	if derr := <-duringDone; derr != nil {
		return res, derr
	}

	var sendNanos []int64
	if spec.sendTimes {
		if sendNanos, err = readSendTimes(src.sendTimes, spec.count); err != nil {
			return res, err
		}
	}
	exp := h.expect(spec.count)
	exp.Quoted = c.quoted
	rctx, rcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer rcancel()
	res.check, err = topiccheck.Read(rctx, h.stack.bootstrap(), topic, exp, h.digest(spec.count), sendNanos)
	if err != nil {
		return res, err
	}
	res.exact = res.check.Exact(exp) && res.source.Sent == spec.count && res.procErr == nil
	return res, nil
}

func (h *harness) trialTimeout(spec trialSpec) time.Duration {
	d := 2*time.Minute + h.cfg.Stall
	if spec.rate > 0 {
		d += time.Duration(float64(spec.count) / spec.rate * float64(time.Second))
	} else {
		d += time.Duration(spec.count/2000) * time.Millisecond // at least 2,000 events/s
	}
	return d
}

// awaitTopic waits until topic holds want messages, or stops growing for a while, or the daemon exits.
func (h *harness) awaitTopic(ctx context.Context, topic string, want uint64, exited <-chan struct{}) error {
	w, err := topiccheck.NewWatcher(h.stack.bootstrap(), topic)
	if err != nil {
		return err
	}
	defer w.Close()
	quiet := 30 * time.Second
	if h.cfg.Quick {
		quiet = 10 * time.Second
	}
	var last int64 = -1
	lastChange := time.Now()
	for {
		n, err := w.Messages()
		if err != nil {
			return err
		}
		if uint64(n) >= want {
			time.Sleep(500 * time.Millisecond) // let a duplicate, if any, land before the check
			return nil
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		if time.Since(lastChange) > quiet {
			h.log("  topic stuck at %d of %d messages for %v; stopping", n, want, quiet)
			return nil
		}
		select {
		case <-exited:
			return nil
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to fill: %w", topic, ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// receivedTotal scrapes our reader's lines-received counter from its /metrics.
func receivedTotal(ctx context.Context, addr string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("scraping %s: %w", addr, err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "logreader_lines_received_total "); ok {
			return strconv.ParseFloat(strings.TrimSpace(v), 64)
		}
	}
	return 0, errors.New("no logreader_lines_received_total on " + addr)
}
