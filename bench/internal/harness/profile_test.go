package harness

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/bench/internal/topiccheck"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/logsource"
	"github.com/mwaa-kafka/pipeline/internal/pipeline"
)

// BenchmarkReaderPipeline runs the whole reader (framing, validation, producing, delivery accounting)
// in-process against a broker, so `go test -cpuprofile` profiles the hot path the benchmark measures:
//
//	BENCH_KAFKA=127.0.0.1:29092 go test -run '^$' -bench ReaderPipeline -benchtime 1x \
//	    -cpuprofile cpu.out ./bench/internal/harness/
//
// BENCH_READER (highperf|basic), BENCH_EVENTS_PER_MESSAGE and BENCH_EVENTS (default 1000000) vary it.
func BenchmarkReaderPipeline(b *testing.B) {
	bootstrap := kafkatest.BenchBootstrap(b)
	kind := envOr("BENCH_READER", "highperf")
	per := envOr("BENCH_EVENTS_PER_MESSAGE", "1")
	count, err := strconv.ParseUint(envOr("BENCH_EVENTS", "1000000"), 10, 64)
	if err != nil {
		b.Fatalf("BENCH_EVENTS: %v", err)
	}
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		topic := fmt.Sprintf("bench_profile_%d", time.Now().UnixNano())
		if err := topiccheck.CreateTopic(ctx, bootstrap, topic, 3); err != nil {
			b.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		srcDone := make(chan error, 1)
		go func() {
			_, err := logsource.Serve(ctx, ln, logsource.Config{Count: count, FirstID: 1, Seed: 42})
			srcDone <- err
		}()
		cfg, err := pipeline.ParseConfig([]string{"--source-addr", ln.Addr().String(), "--reader", kind,
			"--events-per-message", per, "--security-protocol", "plaintext", "--bootstrap", bootstrap, "--topic", topic,
			"--dlq-file", b.TempDir() + "/dlq", "--max-events", strconv.FormatUint(count, 10), "--metrics-addr", ""},
			func(string) string { return "" }, io.Discard, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		s, err := pipeline.Run(ctx, cfg, io.Discard, slog.New(slog.DiscardHandler))
		if err != nil {
			b.Fatalf("pipeline.Run: %v", err)
		}
		if err := <-srcDone; err != nil {
			b.Fatalf("log source: %v", err)
		}
		if s.Delivered != count {
			b.Fatalf("delivered %d of %d", s.Delivered, count)
		}
		b.ReportMetric(float64(count)/time.Since(start).Seconds(), "events/s")
		dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		_ = kafkatest.DeleteTopic(dctx, bootstrap, topic)
		cancel()
	}
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
