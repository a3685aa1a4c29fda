package harness

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// stack is the benchmark's own local stack (dev/stack.sh with its own STACK_DIR and ports): its broker is
// paused during the stall phase, which must never happen to the stack other work shares.
type stack struct {
	root, dir string
	env       []string // the dev/stack.sh environment: STACK_DIR and the ports
	vars      map[string]string
}

func newStack(root string, portBase int) *stack {
	dir := filepath.Join(root, ".cache", "bench", "stack")
	return &stack{root: root, dir: dir, env: []string{
		"STACK_DIR=" + dir,
		"KAFKA_PLAINTEXT_PORT=" + strconv.Itoa(portBase),
		"KAFKA_SASL_PORT=" + strconv.Itoa(portBase+1),
		"KAFKA_CONTROLLER_PORT=" + strconv.Itoa(portBase+2),
		"MOTO_PORT=" + strconv.Itoa(portBase+10),
		"CLICKHOUSE_HTTP_PORT=" + strconv.Itoa(portBase+31),
		// The broker starts with its whole heap. Grown from a small one, G1 kept a young generation so
		// small that, with every core busy, its pauses reached 90-130 ms while a contender produced 50,000
		// events/s, and showed up as the contender's p99 latency; at the full heap they stay under 40 ms.
		"KAFKA_HEAP_MIN=1g",
	}}
}

func (s *stack) script(ctx context.Context, logf string, args ...string) error {
	cmd := exec.CommandContext(ctx, filepath.Join(s.root, "dev", "stack.sh"), args...)
	cmd.Env = append(os.Environ(), s.env...)
	cmd.Dir = s.root
	out, err := os.OpenFile(logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("opening %s: %w", logf, err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: dev/stack.sh %s (STACK_DIR %s): %w; see %s", ErrSetup, strings.Join(args, " "), s.dir, err, logf)
	}
	return nil
}

// up starts (or reuses) the stack and reads its env file.
func (s *stack) up(ctx context.Context, logf string) error {
	if err := s.script(ctx, logf, "up"); err != nil {
		return err
	}
	envFile := filepath.Join(s.dir, "stack.env")
	f, err := os.Open(envFile)
	if err != nil {
		return fmt.Errorf("%w: reading the stack's env: %w", ErrSetup, err)
	}
	defer f.Close()
	vars, err := stacktest.ParseEnv(f)
	if err != nil {
		return fmt.Errorf("%w: reading %s: %w", ErrSetup, envFile, err)
	}
	for _, k := range []string{"KAFKA_PLAINTEXT_BOOTSTRAP", "KAFKA_PID_FILE"} {
		if vars[k] == "" {
			return fmt.Errorf("%w: %s has no %s", ErrSetup, envFile, k)
		}
	}
	s.vars = vars
	return nil
}

func (s *stack) down(ctx context.Context, logf string) error { return s.script(ctx, logf, "down") }

func (s *stack) bootstrap() string { return s.vars["KAFKA_PLAINTEXT_BOOTSTRAP"] }

// brokerPID reads the pid of the benchmark broker.
func (s *stack) brokerPID() (int, error) {
	b, err := os.ReadFile(s.vars["KAFKA_PID_FILE"])
	if err != nil {
		return 0, fmt.Errorf("reading the broker pid: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// pause stops (SIGSTOP) or resumes (SIGCONT) the benchmark's broker.
func (s *stack) pause(stop bool) error {
	pid, err := s.brokerPID()
	if err != nil {
		return err
	}
	sig := syscall.SIGCONT
	if stop {
		sig = syscall.SIGSTOP
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("sending %v to the benchmark broker (pid %d): %w", sig, pid, err)
	}
	return nil
}
