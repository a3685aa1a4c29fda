package health_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// bootstrapClickHouse applies the pipeline's schema to a fresh database of the stack's ClickHouse, its Kafka
// table reading f.topic with the given Kafka password (the stack's user), and returns the database.
func (f *fixture) bootstrapClickHouse(t *testing.T, kafkaPassword string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := clickhouse.NewClient(f.stack.Get(t, "CLICKHOUSE_URL"), clickhouse.WithCredentials(f.stack.Get(t, "CLICKHOUSE_USER"), f.stack.Get(t, "CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("health_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{"DROP DATABASE IF EXISTS " + db + " SYNC", "DROP NAMED COLLECTION IF EXISTS " + db + "_kafka"} {
			if err := c.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	pem, err := os.ReadFile(f.stack.Get(t, "KAFKA_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	s := clickhouse.NewSchema(f.stack.Get(t, "KAFKA_BOOTSTRAP_SERVER"))
	s.Database, s.Topic, s.Group = db, f.topic, db
	s.Auth = clickhouse.KafkaAuth{Username: f.stack.Get(t, "KAFKA_SASL_USERNAME"), Password: kafkaPassword, CAPEM: string(pem), Source: "test"}
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	return db
}

// clickhouseConfig is f.config with the clickhouse check on db, the ClickHouse password in a secret.
func (f *fixture) clickhouseConfig(t *testing.T, db string) health.Config {
	cfg := f.config(t, f.secret(t, f.goodSecret(t)))
	cfg.ClickHouseURL = f.stack.Get(t, "CLICKHOUSE_URL")
	cfg.ClickHouseUser = f.stack.Get(t, "CLICKHOUSE_USER")
	cfg.ClickHousePasswordSecret = f.secret(t, map[string]string{"CLICKHOUSE_PASSWORD": f.stack.Get(t, "CLICKHOUSE_PASSWORD")})
	cfg.ClickHouseDatabase = db
	return cfg
}

// TestIntegrationClickHouseConsuming: a Kafka table that consumes passes the clickhouse check, and the
// verdict carries its consumer state from system.kafka_consumers and the logs_errors count.
func TestIntegrationClickHouseConsuming(t *testing.T) {
	f := newFixture(t)
	db := f.bootstrapClickHouse(t, f.stack.Get(t, "KAFKA_SASL_PASSWORD"))
	kafkatest.Produce(t, f.stack.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), f.topic, [][]byte{
		[]byte(`{"eventId":1,"level":"Info","source":"s","timestamp":"2026-01-01T00:00:00.000001Z","computer":"c","user":"u","message":"m"}`),
		[]byte(`{"eventId":"broken"`),
	})
	cfg := f.clickhouseConfig(t, db)
	deadline := time.Now().Add(40 * time.Second)
	for {
		v := run(t, cfg)
		r, _ := v.Check(health.CheckClickHouse)
		st := v.ClickHouse
		if v.OK && r.OK && st != nil && len(st.Consumers) == 1 && st.Consumers[0].MessagesRead == 2 && st.ErrorRows == 1 {
			k := st.Consumers[0]
			if len(k.Assignments) != 1 || k.Assignments[0].Topic != f.topic || k.Assignments[0].Offset != 2 || k.LastPoll.IsZero() {
				t.Errorf("consumer = %+v, want %s/0 at offset 2 and a last poll", k, f.topic)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("verdict ok %v, clickhouse check %+v, status %+v; want ok with 2 messages read and 1 error row", v.OK, r, st)
		}
		time.Sleep(time.Second)
	}
}

// TestIntegrationClickHouseStuck: a Kafka table whose credentials the broker rejects is the named failure
// clickhouse.ErrKafkaTableStuck, naming the SASL error, while the Kafka checks pass.
func TestIntegrationClickHouseStuck(t *testing.T) {
	f := newFixture(t)
	db := f.bootstrapClickHouse(t, "not-the-password")
	cfg := f.clickhouseConfig(t, db)
	deadline := time.Now().Add(40 * time.Second)
	for {
		v := run(t, cfg)
		r, _ := v.Check(health.CheckClickHouse)
		if !r.OK && strings.Contains(r.Error, "SASL authentication error") {
			if !errors.Is(r.Err(), clickhouse.ErrKafkaTableStuck) || v.OK {
				t.Errorf("clickhouse check = %+v, verdict ok %v; want ErrKafkaTableStuck and a failed verdict", r, v.OK)
			}
			for _, other := range v.Checks {
				if other.Name != health.CheckClickHouse && !other.OK {
					t.Errorf("check %s failed: %s; only clickhouse should", other.Name, other.Error)
				}
			}
			if strings.Contains(r.Error, "not-the-password") {
				t.Error("the check's error carries the password")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clickhouse check = %+v; want ErrKafkaTableStuck naming the SASL authentication error", r)
		}
		time.Sleep(time.Second)
	}
}
