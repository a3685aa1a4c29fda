// Package procstat samples a running process's memory from /proc, so the benchmark can draw each contender's
// resident set over time (a peak alone cannot show that memory flattens under backpressure).
package procstat

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"
)

// RSS returns the resident set size of process pid in bytes (VmRSS of /proc/PID/status).
func RSS(pid int) (int64, error) {
	return statusField(pid, "VmRSS:")
}

// PeakRSS returns the largest resident set process pid has had so far, in bytes (VmHWM).
func PeakRSS(pid int) (int64, error) {
	return statusField(pid, "VmHWM:")
}

func statusField(pid int, key string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading status of pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.HasPrefix(line, []byte(key)) {
			continue
		}
		f := bytes.Fields(line[len(key):])
		if len(f) != 2 || string(f[1]) != "kB" {
			return 0, fmt.Errorf("pid %d: %w: %q", pid, ErrFormat, line)
		}
		kb, err := strconv.ParseInt(string(f[0]), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("pid %d: %w: %q", pid, ErrFormat, line)
		}
		return kb << 10, nil
	}
	return 0, fmt.Errorf("pid %d: %w: no %s line", pid, ErrFormat, key)
}

// Sample is one RSS reading, At seconds after the sampler started.
type Sample struct {
	At  float64 `json:"t"`
	RSS int64   `json:"rss"`
}

// Sampler records a process's RSS at a fixed interval until stopped. Its methods are safe for concurrent use.
type Sampler struct {
	pid   int
	every time.Duration
	t0    time.Time

	mu      sync.Mutex
	samples []Sample
	peak    int64 // the largest VmHWM read

	stop context.CancelFunc
	done chan struct{}
}

// Start samples pid every interval (at least 10ms) until Stop is called or ctx ends. Readings that fail
// (the process has exited) end the sampling quietly: the exit is the caller's to report.
func Start(ctx context.Context, pid int, interval time.Duration) *Sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &Sampler{pid: pid, every: max(interval, 10*time.Millisecond), t0: time.Now(), stop: cancel, done: make(chan struct{})}
	go s.loop(ctx)
	return s
}

func (s *Sampler) loop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(s.every)
	defer t.Stop()
	for {
		if !s.sample() {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (s *Sampler) sample() bool {
	rss, err := RSS(s.pid)
	if err != nil {
		return false
	}
	hwm, err := PeakRSS(s.pid)
	if err != nil {
		return false
	}
	s.mu.Lock()
	s.samples = append(s.samples, Sample{At: time.Since(s.t0).Seconds(), RSS: rss})
	s.peak = max(s.peak, hwm, rss)
	s.mu.Unlock()
	return true
}

// Peak returns the process's peak RSS (VmHWM) as last read. It is read from /proc rather than taken from
// wait4's rusage because a child's ru_maxrss also counts the parent's memory at the fork (the child starts
// as the parent's address space before exec), which would charge the benchmark's own memory to it.
func (s *Sampler) Peak() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Started is when sampling began: Sample.At counts from it.
func (s *Sampler) Started() time.Time { return s.t0 }

// Samples returns the readings so far.
func (s *Sampler) Samples() []Sample {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Sample(nil), s.samples...)
}

// Stop ends sampling, waits for the sampling goroutine, and returns every reading.
func (s *Sampler) Stop() []Sample {
	s.stop()
	<-s.done
	return s.Samples()
}

// clockTick is the unit of /proc/PID/stat's CPU times: USER_HZ, 100 on every Linux the benchmark runs on.
const clockTick = 10 * time.Millisecond

// CPUTime returns the user + system CPU time process pid has used so far (utime + stime of /proc/PID/stat).
// The benchmark reads it before and after a trial for processes it did not start, such as the broker.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, fmt.Errorf("reading stat of pid %d: %w", pid, err)
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, fields 14 and 15 of a /proc/PID/stat line. The command name (field 2)
// is in parentheses and may itself hold spaces and parentheses, so fields are counted after its last ')'.
func parseStatCPU(b []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("%w: no command name in %q", ErrFormat, b)
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, fmt.Errorf("%w: %d fields after the command name", ErrFormat, len(f))
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("%w: CPU time %q", ErrFormat, s)
		}
		ticks += n
	}
	return time.Duration(ticks) * clockTick, nil
}
