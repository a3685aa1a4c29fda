package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationFatalKafkaError streams events as fast as the reader takes them, then makes librdkafka raise
// a fatal error on the running producer (its own fatal-error path, as a broker-side idempotence failure
// would; no broker can be asked for one). The reader must stop reading at once and end the run in error after
// the drain (so the process exits non-zero and the task is replaced), having logged the failure once, not
// once per line; every line it read is on the topic or dead-lettered to the file, exactly once, or, with the
// dead-letter topic (the same failed client), counted failed; and the summary balances.
func TestIntegrationFatalKafkaError(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	for _, tc := range []struct {
		name    string
		dlqFile bool
	}{{"dead letters to a file", true}, {"dead letters to the topic", false}} {
		t.Run(tc.name, func(t *testing.T) {
			topic, dlq := kafkatest.TopicPair(t, bootstrap, "fatal", 3)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			ln := sourceListener(t)
			srcCtx, stopSource := context.WithCancel(ctx)
			defer stopSource()
			const seed = 11
			src := serveSource(srcCtx, ln, logsource.Config{Seed: seed, FirstID: 1, TimeMode: logsource.TimeSynthetic, Start: testStart})
			addr := freeAddr(t)
			extra := []string{"--metrics-addr", addr, "--drain-timeout", "20s"}
			dlqPath := filepath.Join(t.TempDir(), "dead-letters.jsonl")
			if tc.dlqFile {
				extra = append(extra, "--dlq-file", dlqPath)
			}
			cfg := readerConfig(t, bootstrap, ln.Addr().String(), topic, dlq, extra...)

			prods := make(chan *kafkaout.Producer, 1)
			testHookProducer = func(p *kafkaout.Producer) { prods <- p }
			t.Cleanup(func() { testHookProducer = nil })
			var logs syncBuffer
			type result struct {
				sum Summary
				err error
			}
			done := make(chan result, 1)
			go func() {
				sum, err := Run(ctx, cfg, &syncBuffer{}, slog.New(slog.NewJSONHandler(&logs, nil)))
				done <- result{sum, err}
			}()
			prod := <-prods

			// The stream is flowing at full speed before the failure.
			var before uint64
			for deadline := time.Now().Add(60 * time.Second); before < 50_000; time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("only %d lines received within 60 s", before)
				}
				before, _ = received(addr)
			}
			injected := time.Now()
			if err := prod.InjectFatalError("injected by the test"); err != nil {
				t.Fatal(err)
			}
			var res result
			select {
			case res = <-done:
			case <-time.After(30 * time.Second):
				now, _ := received(addr)
				t.Fatalf("the run goes on 30 s after the fatal error: %d lines received since (received %d at the failure)", now-before, before)
			}
			ended := time.Since(injected)
			stopSource()
			sent := (<-src).stats.Sent
			sum := res.sum
			t.Logf("run ended %v after the fatal error: %+v; err %v", ended.Round(time.Millisecond), sum, res.err)

			if !errors.Is(res.err, kafkaout.ErrFatal) || !strings.Contains(res.err.Error(), "injected by the test") {
				t.Errorf("Run error = %v, want the fatal error (the process exits non-zero)", res.err)
			}
			if !sum.Balanced() {
				t.Errorf("summary = %+v, want balanced", sum)
			}
			onTopic := map[uint32]int{}
			var topicBytes int
			kafkatest.ReadToEnd(t, bootstrap, topic, func(r kafkatest.Record) {
				onTopic[eventID(t, r.Value)]++
				topicBytes += len(r.Value) + 1
			})
			// Reading stopped at once: after the failure the reader took what its buffers held and what the
			// kernel had already acknowledged (read out at the stop), not the stream. 5,000 lines of slack
			// cover the moment between the last scrape and the client's error event.
			after := sum.Received - before
			lineBytes := uint64(topicBytes / max(len(onTopic), 1))
			if limit := (tcpRmemMax(t)+3*256<<10)/max(lineBytes, 1) + 5_000; after > limit {
				t.Errorf("%d lines read after the fatal error (%d at the failure), want at most %d: the receive buffer and three reads",
					after, before, limit)
			}
			if uint64(len(onTopic)) != sum.Delivered {
				t.Errorf("the topic holds %d distinct events, the summary says %d delivered", len(onTopic), sum.Delivered)
			}
			dead := map[uint32]int{}
			var truncated uint64
			if tc.dlqFile {
				err := readDeadLetterFile(dlqPath, func(dl DeadLetter) {
					switch dl.Reason {
					case ReasonDeliveryFailed:
						dead[eventID(t, dl.Line)]++
					case string(event.ReasonTruncated): // the line being read when reading stopped
						truncated++
					default:
						t.Errorf("dead letter with reason %q: %s", dl.Reason, dl.Detail)
					}
				})
				if err != nil {
					t.Fatal(err)
				}
				if sum.Failed != 0 || uint64(len(dead))+truncated != sum.DeadLettered {
					t.Errorf("summary = %+v; the file holds %d delivery failures and %d truncated lines: want them all dead-lettered, none failed",
						sum, len(dead), truncated)
				}
			} else {
				if sum.DeadLettered != 0 || sum.Failed != sum.Received-sum.Delivered {
					t.Errorf("summary = %+v: with the dead-letter topic on the failed client, want every line not delivered counted failed", sum)
				}
				// The loss is what the failure found in flight: the local queue at most, plus what was read after.
				queued := min(uint64(kafkaout.DefaultQueueMaxKBytes)<<10/max(lineBytes, 1), kafkaout.DefaultQueueMaxMessages)
				if sum.Failed > queued+after {
					t.Errorf("%d lines failed, more than a full local queue (%d lines) and the %d read after the failure", sum.Failed, queued, after)
				}
			}
			// Every line read is accounted for exactly once: the lines read were eventIds 1..n.
			n := uint32(sum.Received - truncated)
			if !tc.dlqFile {
				n = uint32(sum.Received) // a truncated line would be counted failed too
			}
			for id, c := range onTopic {
				if c > 1 || dead[id] > 0 || id > n {
					t.Errorf("eventId %d: %d times on the topic, %d times dead-lettered (read %d lines)", id, c, dead[id], n)
				}
			}
			if tc.dlqFile {
				for id := uint32(1); id <= n; id++ {
					if onTopic[id]+dead[id] != 1 {
						t.Fatalf("eventId %d: %d times on the topic, %d times in the dead-letter file, want once in all", id, onTopic[id], dead[id])
					}
				}
			}
			t.Logf("sent %d; %d read after the failure; %d delivered (%d on the topic), %d dead-lettered, %d failed",
				sent, after, sum.Delivered, len(onTopic), sum.DeadLettered, sum.Failed)

			// Logged once, not once per line.
			counts := map[string]int{}
			var errorsLogged int
			for _, rec := range logRecords(t, bytes.NewBuffer(logs.Bytes())) {
				if lvl := rec["level"]; lvl == "ERROR" || lvl == "WARN" {
					counts[rec["msg"].(string)]++
					if lvl == "ERROR" {
						errorsLogged++
					}
				}
			}
			for msg, c := range counts {
				if c > 1 {
					t.Errorf("logged %d times: %q", c, msg)
				}
			}
			if counts["kafka client failed: reading stopped; the reader exits with an error after the drain so that it is replaced"] != 1 {
				t.Errorf("no log line says that reading stopped on the fatal error: %v", counts)
			}
			if errorsLogged > 5 {
				t.Errorf("%d ERROR lines, want the failure logged once: %v", errorsLogged, counts)
			}
		})
	}
}

// eventID parses a line's eventId.
func eventID(t *testing.T, line []byte) uint32 {
	t.Helper()
	var ev struct {
		EventID uint32 `json:"eventId"`
	}
	if err := json.Unmarshal(line, &ev); err != nil || ev.EventID == 0 {
		t.Fatalf("not an event: %q: %v", line, err)
	}
	return ev.EventID
}

// tcpRmemMax is the most a TCP socket's receive buffer can grow to (net.ipv4.tcp_rmem's maximum).
func tcpRmemMax(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/sys/net/ipv4/tcp_rmem")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b))
	n, err := strconv.ParseUint(f[len(f)-1], 10, 64)
	if err != nil {
		t.Fatalf("tcp_rmem %q: %v", b, err)
	}
	return n
}
