package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// TestIntegrationCAFormsKeepCredentials: the CA as a file holds (ending in a newline, as every PEM writer
// ends it), inline without the final newline, and with CRLF line ends is one CA: after Apply with the file's
// form, a dry run and a real run with the other forms keep everything instead of rotating the credentials.
func TestIntegrationCAFormsKeepCredentials(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_caforms", 1)
	if !strings.HasSuffix(s.Auth.CAPEM, "-----\n") {
		t.Fatalf("the stack's CA file does not end in a newline; the test needs that form to start from")
	}
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for name, pem := range map[string]string{
		"inline, no final newline": strings.TrimRight(e.caPEM, "\n"),
		"CRLF line ends":           strings.ReplaceAll(e.caPEM, "\n", "\r\n"),
		"blank lines around it":    "\n\n" + e.caPEM + "\n\n",
	} {
		other := s
		other.Auth.CAPEM = pem
		for _, run := range []func(context.Context, *clickhouse.Client, clickhouse.Schema) (clickhouse.Result, error){clickhouse.DryRun, clickhouse.Apply} {
			r, err := run(ctx, c, other)
			if err != nil || len(r.Updated) != 0 || len(r.Created) != 0 || !equal(r.Kept, allNames(s.Database)) {
				t.Errorf("CA %s (dry run %v): %+v, %v; want everything kept, no credentials change", name, r.DryRun, r, err)
			}
		}
	}
}

// TestIntegrationConsoleDatabaseOwnGroup: the console's {"database": "X"} option bootstraps a second database
// beside the configured one. Its Kafka table must read the whole topic in a consumer group of its own, not
// join the configured database's group (where the two tables would split the partitions between them, each
// database getting part of the events). Both databases get every event.
func TestIntegrationConsoleDatabaseOwnGroup(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	sm, st := lambdaEnv(t, ctx)
	c := e.client(t, "")
	prod, console := freshDatabase(t, c, "it_group_prod"), freshDatabase(t, c, "it_group_console")
	topic := kafkatest.UniqueTopic("it_group")
	kafkatest.CreateTopic(t, e.plaintext, topic, 2)
	// The deployment's configuration: its database and its consumer group (named like the topic here, so the
	// test shares no group with anything else).
	cfg := bootstrapConfig(t, e, map[string]string{
		clickhouse.EnvKafkaSecret: st.Get(t, "SECRET_NAME"), clickhouse.EnvBrokers: e.brokers,
		clickhouse.EnvDatabase: prod, clickhouse.EnvTopic: topic, clickhouse.EnvGroup: topic,
	})
	cfg.Password = e.password
	var outputs []string
	iv := invoker{t, ctx, lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm}.Handle), &outputs}
	if r := iv.invoke(`{}`); !r.OK || r.Database != prod {
		t.Fatalf("{} = %+v, want %s bootstrapped", r, prod)
	}
	if r := iv.invoke(`{"database":"` + console + `"}`); !r.OK || r.Database != console {
		t.Fatalf(`{"database":%q} = %+v, want it bootstrapped`, console, r)
	}
	groups := map[string]string{}
	for _, db := range []string{prod, console} {
		q := scalar[string](t, ctx, c, "SELECT create_table_query AS v FROM system.tables WHERE database = "+clickhouse.QuoteString(db)+" AND name = 'logs_queue'")
		_, rest, _ := strings.Cut(q, "kafka_group_name = '")
		groups[db], _, _ = strings.Cut(rest, "'")
	}
	t.Logf("consumer groups: %v", groups)
	if groups[prod] != topic || groups[console] != "logs_consumer_"+console {
		t.Errorf("consumer groups %v, want %s in the configured %q and %s in logs_consumer_%[4]s", groups, prod, topic, console)
	}

	// Both tables have joined their groups (each consumer holds partitions) before anything is produced, so
	// a shared group would have split the partitions by now.
	deadline := time.Now().Add(60 * time.Second)
	for {
		held := map[string]int{}
		for _, db := range []string{prod, console} {
			st, err := clickhouse.KafkaStatus(ctx, c, db)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range st.Consumers {
				held[db] += len(k.Assignments)
			}
		}
		if held[prod] > 0 && held[console] > 0 {
			t.Logf("partitions held: %v", held)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions held %v after 60 s; want both tables consuming", held)
		}
		time.Sleep(500 * time.Millisecond)
	}

	const n = 400
	g := event.NewGenerator(5, 1, time.Now().UTC().Add(-time.Minute))
	msgs := make([][]byte, n)
	for i := range msgs {
		msgs[i] = g.Next().AppendJSON(nil)
	}
	kafkatest.Produce(t, e.plaintext, topic, msgs)
	for _, db := range []string{prod, console} {
		dc := e.client(t, db)
		wctx, wcancel := context.WithTimeout(ctx, 40*time.Second)
		waitCount(t, wctx, dc, "SELECT count() AS v FROM logs", n)
		wcancel()
		if u := scalar[int](t, ctx, dc, "SELECT uniqExact(eventId) AS v FROM logs"); u != n {
			t.Errorf("%s.logs holds %d distinct events, want %d", db, u, n)
		}
	}
}
