package chaos

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// TestHealthClickHouseAfterBrokerOutage: a Kafka table has read every message of its topic when the broker
// is killed and, 10 s later, started again, with nothing produced meanwhile. Its consumer keeps the
// outage's exceptions and has nothing to commit after them. Once the broker is back, the health check's
// clickhouse check passes: the table's consumer group has committed up to the topic's end offsets, so the
// table is caught up, not stuck.
func TestHealthClickHouseAfterBrokerOutage(t *testing.T) {
	ensureBroker(t)
	topic, _ := topics(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for _, k := range []string{"AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL_SECRETSMANAGER"} {
		t.Setenv(k, stack.Get(k))
	}
	c, err := clickhouse.NewClient(stack.Get("CLICKHOUSE_URL"), clickhouse.WithCredentials(stack.Get("CLICKHOUSE_USER"), stack.Get("CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("chaos_health_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{"DROP DATABASE IF EXISTS " + db + " SYNC", "DROP NAMED COLLECTION IF EXISTS " + db + "_kafka"} {
			if err := c.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	pem, err := os.ReadFile(stack.Get("KAFKA_CA_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	s := clickhouse.NewSchema(stack.Get("CLICKHOUSE_KAFKA_BROKERS"))
	s.Database, s.Topic = db, topic
	s.Auth = clickhouse.KafkaAuth{Username: stack.Get("KAFKA_SASL_USERNAME"), Password: stack.Get("KAFKA_SASL_PASSWORD"), CAPEM: string(pem), Source: "chaos"}
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("bootstrapping %s: %v", db, err)
	}

	const n = 300
	g := event.NewGenerator(21, 1, time.Now().UTC().Add(-time.Minute))
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next().AppendJSON(nil)
	}
	kafkatest.Produce(t, stack.PlaintextBootstrap(), topic, msgs)

	// The health check as the Lambda runs it on this stack: the Kafka secret, the topic, the Kafka table.
	sm, err := clickhouse.NewSecretsManagerClient(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pwSecret := fmt.Sprintf("chaos-clickhouse-%d", time.Now().UnixNano())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(pwSecret),
		SecretString: aws.String(`{"CLICKHOUSE_PASSWORD":"` + stack.Get("CLICKHOUSE_PASSWORD") + `"}`)}); err != nil {
		t.Fatalf("creating the ClickHouse password's secret: %v", err)
	}
	t.Cleanup(func() {
		sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(pwSecret), ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	env := map[string]string{
		"HEALTH_SECRET_NAME": stack.Get("SECRET_NAME"), "AWS_REGION": stack.Get("AWS_REGION"),
		"AWS_ENDPOINT_URL_SECRETSMANAGER": stack.Get("AWS_ENDPOINT_URL_SECRETSMANAGER"),
		"HEALTH_TOPIC":                    topic, "HEALTH_DLQ_TOPIC": "-", "HEALTH_CA_FILE": stack.Get("KAFKA_CA_FILE"), "HEALTH_READER_CHECK": "off",
		"HEALTH_CLICKHOUSE_URL": stack.Get("CLICKHOUSE_URL"), "HEALTH_CLICKHOUSE_USER": stack.Get("CLICKHOUSE_USER"),
		"HEALTH_CLICKHOUSE_PASSWORD_SECRET": pwSecret, "HEALTH_CLICKHOUSE_DATABASE": db,
	}
	cfg, err := health.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("health config: %v", err)
	}
	checker := health.NewChecker(cfg, secrets.FromSecretsManager)
	// check runs the health check until the Kafka checks pass (the broker answers, the topic's end offsets
	// are known) and returns that verdict's clickhouse check.
	check := func(what string) (health.Result, *clickhouse.KafkaTableStatus) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			v := checker.Run(ctx)
			topicOK, _ := v.Check(health.CheckTopic)
			if r, ok := v.Check(health.CheckClickHouse); ok && topicOK.OK && v.ClickHouse != nil {
				return r, v.ClickHouse
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: no verdict with the Kafka checks passing within 90 s: %+v", what, v.Checks)
			}
			time.Sleep(time.Second)
		}
	}

	// Before the outage: every message in the table and committed.
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, st := check("before the outage")
		if r.OK && st.Progress != nil && st.Progress.CaughtUp() {
			t.Logf("before the outage: clickhouse check ok, group %s committed %v of ends %v", st.Group, st.Progress.Committed, st.Progress.End)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("before the outage: clickhouse check %+v, progress %+v; want ok and committed up to the end", r, st.Progress)
		}
		time.Sleep(time.Second)
	}

	// The outage: the broker is killed; the consumer's exceptions show it took hold.
	outage := time.Now()
	if err := stack.KillBroker(ctx); err != nil {
		t.Fatalf("killing the broker: %v", err)
	}
	var during clickhouse.KafkaConsumer
	for {
		st, err := clickhouse.KafkaStatus(ctx, c, db)
		if err != nil {
			t.Fatal(err)
		}
		if len(st.Consumers) == 1 && st.Consumers[0].LastException != "" && !st.Consumers[0].LastExceptionTime.Before(outage.Truncate(time.Second)) {
			during = st.Consumers[0]
			t.Logf("during the outage: %s %s", during.LastExceptionTime.Format(time.TimeOnly), during.LastException)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the Kafka table recorded no exception after the broker was killed: %+v", st.Consumers)
		case <-time.After(500 * time.Millisecond):
		}
	}
	time.Sleep(time.Until(outage.Add(10 * time.Second)))
	if err := stack.StartBroker(ctx); err != nil {
		t.Fatalf("starting the broker again: %v", err)
	}

	// After it: the Kafka checks pass again, the table holds the outage's exception with no commit since (the
	// state the check used to call stuck), and the clickhouse check passes.
	r, st := check("after the outage")
	k := st.Consumers[0]
	t.Logf("after the outage: clickhouse check ok=%v %q; last exception %s (%s), last commit %s; committed %v, ends %v",
		r.OK, r.Error, k.LastExceptionTime.Format(time.TimeOnly), firstLine(k.LastException), k.LastCommit.Format(time.TimeOnly), st.Progress.Committed, st.Progress.End)
	if k.LastException == "" || k.LastCommit.After(k.LastExceptionTime) || time.Since(k.LastExceptionTime) >= cfg.ClickHouseStaleAfter {
		t.Fatalf("after the outage the consumer holds no exception newer than its last commit (%+v): the scenario did not reach the state it is about", k)
	}
	if !r.OK || !st.Progress.CaughtUp() {
		t.Errorf("after the outage: clickhouse check %+v with committed %v and ends %v; want ok: the table is caught up", r, st.Progress.Committed, st.Progress.End)
	}
	if n := uint64(n); st.Progress.Committed != nil {
		var sum uint64
		for _, off := range st.Progress.Committed {
			sum += uint64(off)
		}
		if sum != n {
			t.Errorf("committed offsets %v sum to %d, want %d (every message)", st.Progress.Committed, sum, n)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }
