// Package harness runs the real reader binary against real peers for the fault-injection suite (test/chaos)
// and the abuse suite (test/abuse): a stack instance of the suite's own (dev/stack.sh under another
// STACK_DIR and other ports, so faults never touch the stack other tests share), a TCP log source that streams
// events with sequential eventIds, the reader as a subprocess with its summary, logs, metrics, memory and file
// descriptors, and a read-back of the topics that checks every eventId one by one.
package harness

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// ErrSharedStack is returned when a fault would be injected into the stack other tests share.
var ErrSharedStack = errors.New("refusing to inject faults into the shared stack")

// Defaults of the suite's own stack. The ports stay clear of the shared stack's (19092-19094, 15000, 18123)
// and can be moved with the same variables dev/stack.sh reads, prefixed CHAOS_.
var chaosPorts = []struct{ name, def string }{
	{"KAFKA_PLAINTEXT_PORT", "26092"},
	{"KAFKA_SASL_PORT", "26093"},
	{"KAFKA_CONTROLLER_PORT", "26094"},
	{"MOTO_PORT", "26000"},
	{"CLICKHOUSE_HTTP_PORT", "26123"},
}

// Stack is a running stack instance, as its env file describes it.
type Stack struct {
	// Root is the repository root; Dir is the stack directory (STACK_DIR).
	Root, Dir string
	vars      map[string]string
}

// Get returns the value of key, or "" when the env file does not define it.
func (s *Stack) Get(key string) string { return s.vars[key] }

// PlaintextBootstrap is the broker's PLAINTEXT listener (tests' admin and read-back clients use it).
func (s *Stack) PlaintextBootstrap() string { return s.vars["KAFKA_PLAINTEXT_BOOTSTRAP"] }

// LoadStack reads a stack env file written by dev/stack.sh up.
func LoadStack(root, envFile string) (*Stack, error) {
	f, err := os.Open(envFile)
	if err != nil {
		return nil, fmt.Errorf("reading stack env: %w", err)
	}
	defer f.Close()
	vars, err := stacktest.ParseEnv(f)
	if err != nil {
		return nil, fmt.Errorf("reading stack env %s: %w", envFile, err)
	}
	for _, k := range []string{"STACK_DIR", "KAFKA_PLAINTEXT_BOOTSTRAP", "KAFKA_BOOTSTRAP_SERVER", "KAFKA_SASL_PASSWORD", "KAFKA_CA_FILE"} {
		if vars[k] == "" {
			return nil, fmt.Errorf("stack env %s lacks %s (is the stack up to date?)", envFile, k)
		}
	}
	return &Stack{Root: root, Dir: vars["STACK_DIR"], vars: vars}, nil
}

// ChaosStackDir is the suite's own stack directory under the repository's cache.
func ChaosStackDir(root string) string {
	if d := os.Getenv("CHAOS_STACK_DIR"); d != "" {
		return d
	}
	return filepath.Join(root, ".cache", "chaos", "stack")
}

// UpChaosStack returns the suite's own stack. When CHAOS_STACK_ENV names the env file of a running one
// (dev/chaos.sh starts it), that one is used and stop does nothing; otherwise it runs dev/stack.sh up for
// ChaosStackDir on the suite's ports, and stop runs dev/stack.sh down for it. Setup output goes to log.
func UpChaosStack(root string, log *os.File) (s *Stack, stop func(), err error) {
	if env := os.Getenv("CHAOS_STACK_ENV"); env != "" {
		s, err := LoadStack(root, env)
		if err != nil {
			return nil, nil, err
		}
		return s, func() {}, s.guard()
	}
	dir := ChaosStackDir(root)
	env := stackEnv(dir)
	up := exec.Command(filepath.Join(root, "dev", "stack.sh"), "up")
	up.Env, up.Stdout, up.Stderr = env, log, log
	if err := up.Run(); err != nil {
		return nil, nil, fmt.Errorf("starting the chaos stack in %s with dev/stack.sh up: %w", dir, err)
	}
	stop = func() {
		down := exec.Command(filepath.Join(root, "dev", "stack.sh"), "down")
		down.Env, down.Stdout, down.Stderr = env, log, log
		if err := down.Run(); err != nil {
			fmt.Fprintf(log, "stopping the chaos stack: %v\n", err)
		}
	}
	s, err = LoadStack(root, filepath.Join(dir, "stack.env"))
	if err == nil {
		err = s.guard()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

// BrokerOpTimeout bounds one operation on the suite's broker (a kill, a stop, a start): a start alone took 90 s
// on a busy machine of 2 cores. It exceeds dev/stack.sh's own start timeout (stackUpTimeout), so the script
// gives up first and stops the broker it started, rather than being killed and leaving it half started.
const BrokerOpTimeout = 6 * time.Minute

// stackUpTimeout is STACK_UP_TIMEOUT for the suite's stack (CHAOS_STACK_UP_TIMEOUT overrides it), in seconds.
const stackUpTimeout = "300"

func stackEnv(dir string) []string {
	env := append(os.Environ(), "STACK_DIR="+dir, "KAFKA_HEAP="+getenv("CHAOS_KAFKA_HEAP", "768m"),
		"STACK_UP_TIMEOUT="+getenv("CHAOS_STACK_UP_TIMEOUT", stackUpTimeout),
		// Longer than any freeze of the suite (the controller, frozen in the same process, must not fence its
		// own broker at SIGCONT) and shorter than the 60 s a SIGKILLed broker has to register again (see
		// dev/kafka/server.properties.in).
		"KAFKA_BROKER_SESSION_TIMEOUT_MS="+getenv("CHAOS_KAFKA_BROKER_SESSION_TIMEOUT_MS", "40000"))
	for _, p := range chaosPorts {
		env = append(env, p.name+"="+getenv("CHAOS_"+p.name, p.def))
	}
	return env
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// guard refuses a stack that is, or may be, the shared one: its directory is the default .cache/stack or its
// broker listens on the shared default port.
func (s *Stack) guard() error {
	shared := filepath.Join(s.Root, ".cache", "stack")
	if filepath.Clean(s.Dir) == filepath.Clean(shared) || strings.HasSuffix(s.PlaintextBootstrap(), ":19092") {
		return fmt.Errorf("%w: %s (%s); use a stack of the suite's own (dev/chaos.sh)", ErrSharedStack, s.Dir, s.PlaintextBootstrap())
	}
	return nil
}

func (s *Stack) stackCmd(ctx context.Context, args ...string) error {
	if err := s.guard(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(s.Root, "dev", "stack.sh"), args...)
	// The suite's own ports, set explicitly: a KAFKA_*_PORT inherited from the caller's environment (meant
	// for the shared stack) must not redirect a restart of this one.
	cmd.Env = stackEnv(s.Dir)
	// On cancellation, SIGTERM: the script then stops what it started (a SIGKILL would leave a starting
	// broker behind, which the next kafka-start refuses).
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = time.Minute
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dev/stack.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// KillBroker SIGKILLs the suite's broker (an unclean stop: no shutdown, no final flush).
func (s *Stack) KillBroker(ctx context.Context) error {
	return s.stackCmd(ctx, "kafka-stop", "--kill", s.Dir)
}

// StartBroker starts the suite's broker again and waits until it is ready.
func (s *Stack) StartBroker(ctx context.Context) error {
	return s.stackCmd(ctx, "kafka-start", s.Dir)
}

// StopBroker stops the suite's broker cleanly (SIGTERM).
func (s *Stack) StopBroker(ctx context.Context) error {
	return s.stackCmd(ctx, "kafka-stop", s.Dir)
}

// BrokerPID returns the pid of the suite's broker.
func (s *Stack) BrokerPID() (int, error) { return s.processPID("KAFKA_PID_FILE", "broker", s.Dir) }

// processPID reads the pid file the stack env names under pidKey and returns the pid when the process's
// command line holds marker (its stack directory): never a recycled pid of something else. what names the
// process in errors.
func (s *Stack) processPID(pidKey, what, marker string) (int, error) {
	if err := s.guard(); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(s.vars[pidKey])
	if err != nil {
		return 0, fmt.Errorf("reading the %s pid: %w", what, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("reading the %s pid: %w", what, err)
	}
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil || !strings.Contains(string(cmdline), marker) {
		return 0, fmt.Errorf("%s pid %d is not the %s of %s", what, pid, what, s.Dir)
	}
	return pid, nil
}

// PauseBroker freezes the suite's broker with SIGSTOP and returns once every thread of it is stopped: kill
// returning 0 only says the signal was queued, and a scenario that measures "while the broker was frozen"
// must not start its clock before the broker stopped answering.
func (s *Stack) PauseBroker() error { return s.signalBroker(syscall.SIGSTOP, true) }

// ResumeBroker thaws the suite's broker with SIGCONT and returns once no thread of it is stopped.
func (s *Stack) ResumeBroker() error { return s.signalBroker(syscall.SIGCONT, false) }

// ErrBrokerState is returned when the broker's threads do not reach the state a signal asks for.
var ErrBrokerState = errors.New("broker threads did not change state")

func (s *Stack) signalBroker(sig syscall.Signal, stopped bool) error {
	pid, err := s.BrokerPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("sending %v to the broker (pid %d): %w", sig, pid, err)
	}
	const wait = 30 * time.Second
	deadline := time.Now().Add(wait)
	for {
		n, frozen, err := threadStates(pid)
		if err != nil {
			return fmt.Errorf("after %v: %w", sig, err)
		}
		if (stopped && frozen == n) || (!stopped && frozen == 0) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: %d of the broker's %d threads stopped %v after %v", ErrBrokerState, frozen, n, wait, sig)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// threadStates counts the threads of pid and those of them stopped by a signal (state T in
// /proc/<pid>/task/<tid>/stat). A thread that exits between the listing and the read is not counted.
func threadStates(pid int) (n, stopped int, err error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("listing the broker's threads: %w", err)
	}
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "stat"))
		if err != nil {
			continue
		}
		// "tid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) {
			continue
		}
		n++
		if b[i+2] == 'T' {
			stopped++
		}
	}
	if n == 0 {
		return 0, 0, fmt.Errorf("the broker (pid %d) has no threads left", pid)
	}
	return n, stopped, nil
}

// WaitPort waits until addr accepts TCP connections or d passes.
func WaitPort(addr string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for {
		c, err := dialTimeout(addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not accepting connections after %v: %w", addr, d, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
