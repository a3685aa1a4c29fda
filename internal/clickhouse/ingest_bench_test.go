package clickhouse_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// BenchmarkIngest measures the Kafka table's ingest rate into the seed's logs (a MergeTree without Kafka
// coordinates) and into the DDL's (a ReplacingMergeTree with them) on the local stack: one topic of three
// partitions filled with INGEST_EVENTS events (300,000; one event per message), then, for each table in
// turn, a fresh database whose Kafka table reads the whole topic in a group of its own. It reports rows/s
// from the first row's arrival to the last (the group's join excluded), and the seconds in all.
//
//	go test ./internal/clickhouse -run '^$' -bench Ingest -benchtime 1x
func BenchmarkIngest(b *testing.B) {
	e := loadEnv(b)
	const n = 300_000
	topic := kafkatest.UniqueTopic("bench_ingest")
	kafkatest.CreateTopic(b, e.plaintext, topic, 3)
	g := event.NewGenerator(5, 1, time.Now().UTC().Add(-30*time.Minute))
	for sent := 0; sent < n; sent += 50_000 {
		msgs := make([][]byte, 50_000)
		for i := range msgs {
			msgs[i] = g.AppendNext(nil)
		}
		kafkatest.Produce(b, e.plaintext, topic, msgs)
	}
	for _, variant := range []string{"seed", "exact"} {
		b.Run(variant, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				rate, all := ingestOnce(b, e, topic, variant, n)
				b.ReportMetric(rate, "rows/s")
				b.ReportMetric(all.Seconds(), "s")
			}
		})
	}
}

func ingestOnce(b *testing.B, e env, topic, variant string, n int) (float64, time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c := e.client(b, "")
	s := clickhouse.NewSchema(e.brokers)
	s.Database = freshDatabase(b, c, "bench_"+variant)
	s.Topic, s.Group, s.Auth = topic, s.Database, clickhouse.KafkaAuth{Username: e.kafkaUser, Password: e.kafkaPassword, CAPEM: e.caPEM, Source: "bench"}
	if variant == "seed" {
		// The DDL's objects on an empty topic (the named collection among them), then the seed's logs and
		// logs_mv over a Kafka table on the filled topic.
		empty := kafkatest.UniqueTopic("bench_empty")
		kafkatest.CreateTopic(b, e.plaintext, empty, 1)
		on := s
		on.Topic = empty
		if _, err := clickhouse.Apply(ctx, c, on); err != nil {
			b.Fatal(err)
		}
		db := s.Database
		for _, q := range []string{"DROP VIEW " + db + ".logs_mv SYNC", "DROP VIEW " + db + ".logs_errors_mv SYNC", "DROP TABLE " + db + ".logs_queue SYNC", "DROP TABLE " + db + ".logs SYNC",
			fmt.Sprintf(seedLogsSQL, db), strings.Replace(mustStatement(b, s, "logs_queue"), clickhouse.QuoteString(empty), clickhouse.QuoteString(topic), 1),
			mustStatement(b, s, "logs_errors_mv")} {
			if err := c.Exec(ctx, q); err != nil {
				b.Fatalf("%s: %v", q, err)
			}
		}
		b.ResetTimer()
		if err := c.Exec(ctx, fmt.Sprintf(seedLogsMVSQL, db)); err != nil {
			b.Fatal(err)
		}
	} else {
		b.ResetTimer()
		if _, err := clickhouse.Apply(ctx, c, s); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	dc := e.client(b, s.Database)
	var first time.Time
	var atFirst int
	for {
		got := scalar[int](b, ctx, dc, "SELECT count() AS v FROM logs")
		if got > 0 && first.IsZero() {
			first, atFirst = time.Now(), got
		}
		if got >= n {
			break
		}
		if ctx.Err() != nil {
			b.Fatalf("%d of %d rows arrived", got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.StopTimer()
	end := time.Now()
	return float64(n-atFirst) / end.Sub(first).Seconds(), end.Sub(start)
}
