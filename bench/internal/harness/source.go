package harness

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"
)

// sourceStats is the log source's JSON summary line.
type sourceStats struct {
	Sent         uint64  `json:"sent"`
	FirstEventID uint32  `json:"first_event_id"`
	LastEventID  uint32  `json:"last_event_id"`
	Bytes        uint64  `json:"bytes"`
	Lost         uint64  `json:"lost"`
	Seconds      float64 `json:"seconds"`
}

// sourceSpec is what one run of the log source sends.
type sourceSpec struct {
	count      uint64
	rate       float64
	connect    string // dial this address; empty: listen on a free loopback port
	sendTimes  string // CSV of send times, or empty
	timesEvery int
	// tlsCert and tlsKey make a listening source serve TLS.
	tlsCert, tlsKey string
}

// sourceProc is a running log source (tasks/logsource). It reads the source's JSON logs to learn the
// address it listens on and the moment the first connection started streaming: the start of the clock.
type sourceProc struct {
	cmd    *exec.Cmd
	stdout bytes.Buffer
	addr   chan string
	// started is closed when the first connection starts streaming; startedAt holds when.
	started   chan struct{}
	startedAt time.Time
	logDone   chan struct{}
	waitErr   chan error
}

func startSource(ctx context.Context, bin string, cfg Config, spec sourceSpec, logf string) (*sourceProc, error) {
	args := []string{"--count", strconv.FormatUint(spec.count, 10), "--seed", strconv.FormatInt(cfg.Seed, 10),
		"--first-id", "1", "--time-mode", "synthetic", "--start", cfg.Start.Format(time.RFC3339Nano)}
	if spec.connect != "" {
		args = append(args, "--connect", spec.connect)
	} else {
		args = append(args, "--listen", "127.0.0.1:0")
	}
	if spec.tlsCert != "" {
		args = append(args, "--tls-cert", spec.tlsCert, "--tls-key", spec.tlsKey)
	}
	if spec.rate > 0 {
		args = append(args, "--rate", strconv.FormatFloat(spec.rate, 'f', -1, 64))
	}
	if spec.sendTimes != "" {
		args = append(args, "--send-times", spec.sendTimes, "--send-times-every", strconv.Itoa(spec.timesEvery))
	}
	cmd := command(ctx, bin, args...)
	p := &sourceProc{cmd: cmd, addr: make(chan string, 1), started: make(chan struct{}),
		logDone: make(chan struct{}), waitErr: make(chan error, 1)}
	cmd.Stdout = &p.stdout
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, fmt.Errorf("piping the log source's stderr: %w", err)
	}
	logFile, err := os.Create(logf)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", logf, err)
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting the log source: %w", err)
	}
	go func() {
		defer close(p.logDone)
		defer logFile.Close()
		p.scanLog(io.TeeReader(stderr, logFile))
	}()
	go func() {
		<-p.logDone
		p.waitErr <- cmd.Wait()
	}()
	return p, nil
}

// scanLog watches the source's log lines for its listening address and its first connection.
func (p *sourceProc) scanLog(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var once sync.Once
	for sc.Scan() {
		var l struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
			Addr string    `json:"addr"`
		}
		if json.Unmarshal(sc.Bytes(), &l) != nil {
			continue
		}
		switch l.Msg {
		case "listening":
			select {
			case p.addr <- l.Addr:
			default:
			}
		case "connection accepted", "connected":
			once.Do(func() {
				p.startedAt = l.Time
				close(p.started)
			})
		}
	}
	// Drain whatever follows a scan error so the source never blocks on a full stderr pipe.
	_, _ = io.Copy(io.Discard, r)
}

// listenAddr waits for the address a listening source reports.
func (p *sourceProc) listenAddr(ctx context.Context) (string, error) {
	select {
	case a := <-p.addr:
		return a, nil
	case <-p.logDone:
		return "", fmt.Errorf("the log source exited before listening: %s", p.stdout.String())
	case <-ctx.Done():
		return "", fmt.Errorf("waiting for the log source to listen: %w", ctx.Err())
	case <-time.After(30 * time.Second):
		return "", errors.New("the log source did not report its address within 30s")
	}
}

// wait waits for the source to finish and returns its summary and the time its first connection started.
func (p *sourceProc) wait(ctx context.Context) (sourceStats, time.Time, error) {
	var err error
	select {
	case err = <-p.waitErr:
	case <-ctx.Done():
		stopProcess(p.cmd, 0)
		err = errors.Join(ctx.Err(), <-p.waitErr)
	}
	var st sourceStats
	var t0 time.Time
	select {
	case <-p.started:
		t0 = p.startedAt
	default:
	}
	out := bytes.TrimSpace(p.stdout.Bytes())
	if i := bytes.LastIndexByte(out, '\n'); i >= 0 {
		out = out[i+1:]
	}
	if jerr := json.Unmarshal(out, &st); jerr != nil {
		return st, t0, errors.Join(err, fmt.Errorf("reading the log source's summary %q: %w", out, jerr))
	}
	if err != nil {
		return st, t0, fmt.Errorf("log source: %w", err)
	}
	return st, t0, nil
}

// readSendTimes reads the source's send-time CSV into a slice indexed by eventId - 1.
func readSendTimes(path string, count uint64) ([]int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening send times: %w", err)
	}
	defer f.Close()
	out := make([]int64, count)
	r := csv.NewReader(bufio.NewReaderSize(f, 1<<20))
	r.ReuseRecord = true
	first := true
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading send times: %w", err)
		}
		if first {
			first = false
			continue
		}
		id, err1 := strconv.ParseUint(rec[0], 10, 32)
		ns, err2 := strconv.ParseInt(rec[1], 10, 64)
		if err1 != nil || err2 != nil || id == 0 || id > count {
			return nil, fmt.Errorf("reading send times: bad line %q", rec)
		}
		out[id-1] = ns
	}
}
