package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"syscall"
	"time"
)

// command builds a child process in its own process group (a terminal's ^C reaches only the harness, which
// then stops its children in order) that gets SIGTERM, then SIGKILL after 10s, when ctx ends.
func command(ctx context.Context, bin string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	return cmd
}

// stopProcess sends SIGTERM, and SIGKILL to the process group after grace (default 10s) if it still runs.
// The caller's Wait reaps it.
func stopProcess(cmd *exec.Cmd, grace time.Duration) {
	if cmd.Process == nil {
		return
	}
	if grace <= 0 {
		grace = 10 * time.Second
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	pid := cmd.Process.Pid
	time.AfterFunc(grace, func() {
		if cmd.ProcessState == nil {
			_ = syscall.Kill(-pid, syscall.SIGKILL)
		}
	})
}

// usage is what a finished process cost.
type usage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes: VmHWM as sampled (see procstat.Sampler.Peak)
}

func usageOf(cmd *exec.Cmd) usage {
	st := cmd.ProcessState
	if st == nil {
		return usage{}
	}
	return usage{CPU: st.UserTime() + st.SystemTime()}
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts a connection (closed at once, without sending anything) while
// exited stays open.
func waitListening(ctx context.Context, addr string, exited <-chan struct{}, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("the process exited before listening on " + addr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
	}
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }
