package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationChctl runs chctl's bootstrap, dry run and consumers against the local stack as a person
// would (configuration from the stack's variables, credentials from the emulator's MWAA_Secrets), and checks
// that the Kafka password appears in none of what it prints.
func TestIntegrationChctl(t *testing.T) {
	st := stacktest.Load(t)
	st.SetAWSEnv(t)
	for _, k := range []string{"CLICKHOUSE_URL", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "KAFKA_CA_FILE", "SECRET_NAME"} {
		t.Setenv(k, st.Get(t, k))
	}
	password := st.Get(t, "KAFKA_SASL_PASSWORD")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := clickhouse.NewClient(st.Get(t, "CLICKHOUSE_URL"), clickhouse.WithCredentials(st.Get(t, "CLICKHOUSE_USER"), st.Get(t, "CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("it_chctl_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
		if err := c.Exec(ctx, "DROP NAMED COLLECTION IF EXISTS "+db+"_kafka"); err != nil {
			t.Errorf("dropping %s_kafka: %v", db, err)
		}
	})
	topic := kafkatest.UniqueTopic("it_chctl")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 1)

	var printed []string
	chctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out, &out)
		printed = append(printed, out.String(), fmt.Sprint(err))
		return out.String(), err
	}
	decode := func(out string) clickhouse.BootstrapResponse {
		t.Helper()
		var r clickhouse.BootstrapResponse
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("decoding chctl's output %q: %v", out, err)
		}
		return r
	}
	base := []string{"--database", db, "--topic", topic, "--group", topic}

	out, err := chctl(append([]string{"bootstrap"}, base...)...)
	if r := decode(out); err != nil || !r.OK || len(r.Created) != 7 {
		t.Fatalf("chctl bootstrap = %s, %v; want 7 objects created", out, err)
	}
	out, err = chctl(append([]string{"bootstrap", "--dry-run"}, base...)...)
	if r := decode(out); err != nil || !r.DryRun || len(r.Kept) != 7 {
		t.Fatalf("chctl bootstrap --dry-run = %s, %v; want 7 objects kept", out, err)
	}
	// The consumer joins within seconds; then chctl consumers reports it and exits 0.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = chctl("consumers", "--database", db)
		if err == nil && strings.Contains(out, topic+"/0@") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chctl consumers = %s, %v; want the consumer holding %s/0", out, err, topic)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(out, "logs_errors holds 0 row(s)") {
		t.Errorf("chctl consumers = %s, want the logs_errors count", out)
	}
	// A drifted table: not ok, the diff, a non-zero exit.
	if err := c.Exec(ctx, "ALTER TABLE "+db+".logs MODIFY SETTING merge_with_ttl_timeout = 3600"); err != nil {
		t.Fatal(err)
	}
	out, err = chctl(append([]string{"bootstrap"}, base...)...)
	if r := decode(out); !errors.Is(err, clickhouse.ErrDrift) || r.OK || len(r.Diffs) != 1 || !strings.Contains(r.Diffs[0].Diff, "merge_with_ttl_timeout = 3600") {
		t.Errorf("chctl bootstrap on a drifted table = %s, %v; want ErrDrift and the settings diff", out, err)
	}
	// A bad flag, a missing database.
	_, err = chctl("consumers", "--database", "no_such_db_"+db)
	if err == nil {
		t.Error("chctl consumers on a missing database succeeded")
	}
	for i, p := range printed {
		if strings.Contains(p, password) {
			t.Errorf("chctl output %d carries the Kafka password", i)
		}
	}
}
