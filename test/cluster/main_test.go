// Package cluster is the fault-injection scenario that needs more than one broker: a cluster of three
// (dev/stack.sh with KAFKA_BROKERS_COUNT=3) where one broker stops while the real reader binary streams, so
// the partitions it led have no leader (replication factor 1) and the others keep their leaders. It starts
// its own stack (STACK_DIR .cache/cluster/stack, brokers on ports 21192-21194, 21202-21203 and 21212-21213,
// the emulator on 21100, no ClickHouse) and stops it at the end; CLUSTER_STACK_ENV names the env file of a
// running one instead. CHAOS_FULL=1 selects the full version; CLUSTER_REPORT names a file for the table.
package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

var (
	cl        *cluster
	readerBin string
	report    harness.Report
	full      = os.Getenv("CHAOS_FULL") == "1"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Suite{Name: "cluster", Title: "Partitions without a leader (three brokers)", ReportEnv: "CLUSTER_REPORT",
		Full: full, Report: &report, Setup: func(root string) (func(), error) {
			var (
				stop func()
				err  error
			)
			cl, stop, err = upCluster(root)
			return stop, err
		}}.Run(m, &readerBin))
}

// The cluster's own stack: its ports keep clear of the shared stack (19092-19094, 15000, 18123), the chaos
// suites' (26xxx), the benchmark's (29xxx) and the kernel's ephemeral range.
var clusterPorts = []struct{ name, def string }{
	{"KAFKA_PLAINTEXT_PORT", "21192"},
	{"KAFKA_SASL_PORT", "21193"},
	{"KAFKA_CONTROLLER_PORT", "21194"},
	{"MOTO_PORT", "21100"},
}

// cluster is the running three-broker stack.
type cluster struct {
	*harness.Stack
	env []string // dev/stack.sh's environment for this stack
}

func clusterEnv(dir string) []string {
	env := append(os.Environ(), "STACK_DIR="+dir, "KAFKA_BROKERS_COUNT=3", "STACK_CLICKHOUSE=off",
		"KAFKA_HEAP="+getenv("CLUSTER_KAFKA_HEAP", "384m"))
	for _, p := range clusterPorts {
		env = append(env, p.name+"="+getenv("CLUSTER_"+p.name, p.def))
	}
	return env
}

func getenv(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// upCluster starts the cluster's stack (or loads CLUSTER_STACK_ENV's) and returns how to stop it.
func upCluster(root string) (*cluster, func(), error) {
	if env := os.Getenv("CLUSTER_STACK_ENV"); env != "" {
		s, err := harness.LoadStack(root, env)
		if err != nil {
			return nil, nil, err
		}
		c := &cluster{Stack: s, env: clusterEnv(s.Dir)}
		return c, func() {}, c.guard()
	}
	dir := filepath.Join(root, ".cache", "cluster", "stack")
	env := clusterEnv(dir)
	run := func(args ...string) error {
		cmd := exec.Command(filepath.Join(root, "dev", "stack.sh"), args...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, os.Stderr, os.Stderr
		return cmd.Run()
	}
	stop := func() {
		if err := run("down"); err != nil {
			fmt.Fprintf(os.Stderr, "stopping the cluster's stack: %v\n", err)
		}
	}
	if err := run("up"); err != nil {
		stop() // a failed up stops what it started; this stops what ran before
		return nil, nil, fmt.Errorf("starting the cluster's stack in %s: %w", dir, err)
	}
	s, err := harness.LoadStack(root, filepath.Join(dir, "stack.env"))
	if err != nil {
		stop()
		return nil, nil, err
	}
	c := &cluster{Stack: s, env: env}
	if err := c.guard(); err != nil {
		stop()
		return nil, nil, err
	}
	return c, stop, nil
}

// guard refuses a stack that is not a cluster of three brokers of its own.
func (c *cluster) guard() error {
	if c.Get("KAFKA_BROKERS_COUNT") != "3" || strings.Contains(c.PlaintextBootstrap(), ":19092") {
		return fmt.Errorf("%w: %s has %q brokers (%s); the scenario needs a three-broker stack of its own",
			harness.ErrSharedStack, c.Dir, c.Get("KAFKA_BROKERS_COUNT"), c.PlaintextBootstrap())
	}
	return nil
}

// broker runs dev/stack.sh kafka-start or kafka-stop (args) for broker id of the cluster.
func (c *cluster) broker(verb string, id int32, args ...string) error {
	args = append(append([]string{verb}, args...), "--broker", fmt.Sprint(id), c.Dir)
	cmd := exec.Command(filepath.Join(c.Root, "dev", "stack.sh"), args...)
	cmd.Env = c.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dev/stack.sh %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

var errNoVictim = errors.New("no broker to stop")
