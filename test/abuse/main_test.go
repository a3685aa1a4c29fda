// Package abuse feeds the real reader binary hostile input and hostile connections, and checks its security
// edges: every hostile line goes to the dead-letter path with a reason while the good lines around it
// arrive, memory and file descriptors stay bounded, connection limits hold, the SASL password never appears
// in any output, and broker certificates are verified unless a flag says otherwise.
//
// It uses the local stack through internal/stacktest (STACK_ENV or .cache/stack/stack.env) and injects no
// faults into it. By default it runs the quick version (e.g. an 8 MiB line without newline, 16 MiB of random
// bytes); CHAOS_FULL=1 runs the full one (100 MiB, 1 GiB). ABUSE_REPORT names a file for the table of results.
package abuse

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

var (
	readerBin string
	report    harness.Report
	full      = os.Getenv("CHAOS_FULL") == "1"
)

func TestMain(m *testing.M) {
	os.Exit(harness.Suite{Name: "abuse", Title: "Bad input and abuse", ReportEnv: "ABUSE_REPORT", Full: full, Report: &report}.Run(m, &readerBin))
}

func pick[T any](quick, fullValue T) T {
	if full {
		return fullValue
	}
	return quick
}

// env is what a scenario needs of the local stack.
type env struct {
	st        *stacktest.Stack
	plaintext string
	sasl      string
	user      string
	password  string
	ca        string
}

func loadEnv(t *testing.T) env {
	t.Helper()
	st := stacktest.Load(t)
	return env{
		st: st, plaintext: st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), sasl: st.Get(t, "KAFKA_BOOTSTRAP_SERVER"),
		user: st.Get(t, "KAFKA_SASL_USERNAME"), password: st.Get(t, "KAFKA_SASL_PASSWORD"), ca: st.Get(t, "KAFKA_CA_FILE"),
	}
}

// creds is the reader's environment for --credentials env, plus extra.
func (e env) creds(extra ...string) []string {
	return harness.ReaderEnv(append([]string{
		"KAFKA_BOOTSTRAP_SERVER=" + e.sasl, "KAFKA_SASL_USERNAME=" + e.user, "KAFKA_SASL_PASSWORD=" + e.password,
	}, extra...)...)
}

// topics creates a fresh event topic (3 partitions) and dead-letter topic.
func (e env) topics(t *testing.T) (topic, dlq string) {
	t.Helper()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_", "-", "_").Replace(t.Name()))
	return kafkatest.TopicPair(t, e.plaintext, "abuse_"+name, 3)
}

// baseArgs are the flags every scenario's reader gets: SASL_SSL with env credentials and the stack's CA.
func (e env) baseArgs(mode, addr, topic, dlq string, extra ...string) []string {
	return append([]string{"--source-mode", mode, "--source-addr", addr, "--credentials", "env",
		"--ca-file", e.ca, "--topic", topic, "--dlq-topic", dlq}, extra...)
}

func itoa[T ~int | ~int64 | ~uint64](n T) string { return fmt.Sprint(n) }

func mib(b uint64) string { return fmt.Sprintf("%.0f MiB", float64(b)/(1<<20)) }

// waitReceived polls the reader's metrics until it has received want lines or d passes.
func waitReceived(t *testing.T, r *harness.Reader, want uint64, d time.Duration) uint64 {
	t.Helper()
	deadline := time.Now().Add(d)
	var got uint64
	for time.Now().Before(deadline) {
		if m, err := r.Metrics(); err == nil {
			got = uint64(m["logreader_lines_received_total"])
			if got >= want {
				return got
			}
		}
		if r.Exited() {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return got
}
