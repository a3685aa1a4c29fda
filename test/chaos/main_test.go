// Package chaos is the fault-injection suite: it runs the real reader binary against a broker of the suite's
// own stack and breaks things (the broker killed or frozen, the source cutting lines, the reader stopped or
// killed, Secrets Manager away, the password rotated, the topic or credentials wrong), then reads the topics
// back and checks every eventId one by one.
//
// By default it runs the quick version (small counts, outages of a few seconds) that `make test` runs;
// CHAOS_FULL=1 runs the full version (1,000,000 events, 30 s outages) that `make chaos` runs. Without
// CHAOS_STACK_ENV the suite starts its own stack (dev/stack.sh up with STACK_DIR .cache/chaos/stack and ports
// 26092-26094, 26000, 26123) and stops it at the end; it never injects faults into the shared stack.
// CHAOS_REPORT names a file that receives the table of results.
package chaos

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

var (
	stack     *harness.Stack
	readerBin string
	report    harness.Report
	// full selects the full version of every scenario.
	full = os.Getenv("CHAOS_FULL") == "1"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Suite{Name: "chaos", Title: "Fault injection", ReportEnv: "CHAOS_REPORT", Full: full, Report: &report,
		Setup: func(root string) (func(), error) {
			var (
				stop func()
				err  error
			)
			stack, stop, err = harness.UpChaosStack(root, os.Stderr)
			return stop, err
		}}.Run(m, &readerBin))
}

// pick returns quick in the quick version and full in the full one.
func pick[T any](quick, fullValue T) T {
	if full {
		return fullValue
	}
	return quick
}

// topics creates a fresh event topic (3 partitions, like logs_4) and dead-letter topic on the suite's broker.
func topics(t *testing.T) (topic, dlq string) {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	return kafkatest.TopicPair(t, stack.PlaintextBootstrap(), "chaos_"+name, 3)
}

// envCreds is the reader's environment for --credentials env against the suite's SASL_SSL listener.
func envCreds(extra ...string) []string {
	return harness.ReaderEnv(append([]string{
		"KAFKA_BOOTSTRAP_SERVER=" + stack.Get("KAFKA_BOOTSTRAP_SERVER"),
		"KAFKA_SASL_USERNAME=" + stack.Get("KAFKA_SASL_USERNAME"),
		"KAFKA_SASL_PASSWORD=" + stack.Get("KAFKA_SASL_PASSWORD"),
	}, extra...)...)
}

// readerArgs are the flags of a connect-mode reader over SASL_SSL with env credentials, plus extra.
func readerArgs(src, topic, dlq string, extra ...string) []string {
	return append([]string{
		"--source-mode", "connect", "--source-addr", src,
		"--credentials", "env", "--ca-file", stack.Get("KAFKA_CA_FILE"),
		"--topic", topic, "--dlq-topic", dlq,
	}, extra...)
}

func itoa[T ~int | ~int64 | ~uint64](n T) string { return strconv.FormatInt(int64(n), 10) }

// ensureBroker makes sure the suite's broker runs (and is not frozen) when the test ends, whatever happened.
func ensureBroker(t *testing.T) {
	t.Cleanup(func() {
		_ = stack.ResumeBroker()
		if err := stack.StartBroker(brokerCtx(t)); err != nil {
			t.Errorf("restarting the broker after the scenario: %v", err)
		}
	})
}

// brokerCtx is the context of one operation on the suite's broker: each kill, stop or start gets a fresh
// one of harness.BrokerOpTimeout, never a share of a scenario-wide deadline (starts take minutes when the
// machine is busy).
func brokerCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), harness.BrokerOpTimeout)
	t.Cleanup(cancel)
	return ctx
}

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }
