package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// env is what the integration tests take from the local stack.
type env struct {
	url, user, password string
	// brokers is the listener the engine's Kafka tables use (SASL_SSL; the credentials and CA reach the
	// engine through the named collection Apply creates, never through its configuration).
	brokers string
	// plaintext is where the tests create topics and produce.
	plaintext string
	// kafkaUser and kafkaPassword are the broker's SASL credentials, caPEM the CA that signed its
	// certificate; testUser and testPassword the broker's second user.
	kafkaUser, kafkaPassword, caPEM string
	testUser, testPassword          string
	// engineLog is the engine's own log.
	engineLog string
}

func loadEnv(t testing.TB) env {
	t.Helper()
	s := stacktest.Load(t)
	pem, err := os.ReadFile(s.Get(t, "KAFKA_CA_FILE"))
	if err != nil {
		t.Fatalf("reading the stack's CA: %v", err)
	}
	return env{
		url:           s.Get(t, "CLICKHOUSE_URL"),
		user:          s.Get(t, "CLICKHOUSE_USER"),
		password:      s.Get(t, "CLICKHOUSE_PASSWORD"),
		brokers:       s.Get(t, "CLICKHOUSE_KAFKA_BROKERS"),
		plaintext:     s.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"),
		kafkaUser:     s.Get(t, "KAFKA_SASL_USERNAME"),
		kafkaPassword: s.Get(t, "KAFKA_SASL_PASSWORD"),
		testUser:      s.Get(t, "KAFKA_SASL_TEST_USERNAME"),
		testPassword:  s.Get(t, "KAFKA_SASL_TEST_PASSWORD"),
		caPEM:         string(pem),
		engineLog:     s.Get(t, "CLICKHOUSE_ENGINE_LOG"),
	}
}

// auth is the stack's Kafka credentials as the bootstrap passes them to Apply, with the stack's CA inline.
func (e env) auth(t *testing.T) clickhouse.KafkaAuth {
	return clickhouse.KafkaAuth{Username: e.kafkaUser, Password: e.kafkaPassword, CAPEM: e.caPEM, Source: "test " + t.Name()}
}

func (e env) client(t testing.TB, db string) *clickhouse.Client {
	t.Helper()
	opts := []clickhouse.ClientOption{clickhouse.WithCredentials(e.user, e.password)}
	if db != "" {
		opts = append(opts, clickhouse.WithDatabase(db))
	}
	c, err := clickhouse.NewClient(e.url, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// freshDatabase returns a database name no other run uses, dropped (with its Kafka consumers) at the end.
func freshDatabase(t testing.TB, c *clickhouse.Client, prefix string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(db)+" SYNC"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
		if err := c.Exec(ctx, "DROP NAMED COLLECTION IF EXISTS "+clickhouse.QuoteIdent(db+"_kafka")); err != nil {
			t.Errorf("dropping the named collection of %s: %v", db, err)
		}
	})
	return db
}

// freshSchema returns the pipeline's schema pointed at a fresh database and a fresh topic (with partitions),
// both named after name, the topic's name doubling as the consumer group.
func freshSchema(t *testing.T, e env, c *clickhouse.Client, name string, partitions int) clickhouse.Schema {
	t.Helper()
	topic := kafkatest.UniqueTopic(name)
	kafkatest.CreateTopic(t, e.plaintext, topic, partitions)
	s := clickhouse.NewSchema(e.brokers)
	s.Database, s.Topic, s.Group = freshDatabase(t, c, name), topic, topic
	s.Auth = e.auth(t)
	return s
}

func allNames(db string) []string {
	return []string{db, db + ".logs", db + ".logs_errors", "named collection " + db + "_kafka", db + ".logs_queue", db + ".logs_mv", db + ".logs_errors_mv"}
}

func scalar[T any](t testing.TB, ctx context.Context, c *clickhouse.Client, sql string) T {
	t.Helper()
	rows, err := clickhouse.QueryRows[struct {
		V T `json:"v"`
	}](ctx, c, clickhouse.Query{SQL: sql})
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1", sql, len(rows))
	}
	return rows[0].V
}

func TestIntegrationApply(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_apply", 1)
	db, topic := s.Database, s.Topic

	first, err := clickhouse.Apply(ctx, c, s)
	if err != nil {
		t.Fatalf("first Apply: %v", err)
	}
	if got, want := first.Created, allNames(db); !equal(got, want) {
		t.Errorf("first Apply created %q, want %q", got, want)
	}
	if len(first.Kept) != 0 || len(first.Different) != 0 {
		t.Errorf("first Apply kept %q, different %q; want none", first.Kept, first.Different)
	}

	second, err := clickhouse.Apply(ctx, c, s)
	if err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if got, want := second.Kept, allNames(db); !equal(got, want) {
		t.Errorf("second Apply kept %q, want %q", got, want)
	}
	if len(second.Created) != 0 || len(second.Different) != 0 {
		t.Errorf("second Apply created %q, different %q; want none", second.Created, second.Different)
	}

	// Drift: a column added by hand to logs, and logs_queue re-created on another topic with its views gone.
	for _, q := range []string{
		"ALTER TABLE " + db + ".logs ADD COLUMN extra String",
		"DROP VIEW " + db + ".logs_mv SYNC",
		"DROP VIEW " + db + ".logs_errors_mv SYNC",
		"DROP TABLE " + db + ".logs_queue SYNC",
		strings.Replace(mustStatement(t, s, "logs_queue"), clickhouse.QuoteString(topic), "'another_topic'", 1),
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	third, err := clickhouse.Apply(ctx, c, s)
	if !errors.Is(err, clickhouse.ErrDrift) {
		t.Fatalf("third Apply error = %v, want ErrDrift", err)
	}
	wantDiff := []string{db + ".logs", db + ".logs_queue", db + ".logs_mv", db + ".logs_errors_mv"}
	if !equal(third.Different, wantDiff) {
		t.Errorf("third Apply different = %q, want %q", third.Different, wantDiff)
	}
	if want := []string{db, db + ".logs_errors", "named collection " + db + "_kafka"}; !equal(third.Kept, want) {
		t.Errorf("third Apply kept = %q, want %q", third.Kept, want)
	}
	if len(third.Created) != 0 {
		t.Errorf("third Apply created %q; views over a differing Kafka table must not be created", third.Created)
	}
	if d := third.Diffs[0]; !strings.Contains(d.Have, "extra") || strings.Contains(d.Want, "extra") {
		t.Errorf("diff of logs: want %q, have %q; want the stored side to show the extra column", d.Want, d.Have)
	}
	if d := third.Diffs[0]; !strings.Contains(d.Diff, "\n+    `extra` String\n") || !strings.HasPrefix(d.Diff, "--- ddl "+db+".logs\n+++ server "+db+".logs\n@@ ") {
		t.Errorf("unified diff of logs =\n%s\nwant the added column as a + line", d.Diff)
	}
	if d := third.Diffs[1]; !strings.Contains(d.Diff, "-SETTINGS kafka_topic_list") || !strings.Contains(d.Diff, "another_topic") {
		t.Errorf("unified diff of logs_queue =\n%s\nwant the changed topic", d.Diff)
	}
	// The Result is what the Lambda returns: it must survive JSON.
	b, err := json.Marshal(third)
	if err != nil {
		t.Fatalf("json.Marshal(Result): %v", err)
	}
	var back clickhouse.Result
	if err := json.Unmarshal(b, &back); err != nil || !equal(back.Different, third.Different) {
		t.Errorf("Result JSON round trip = %+v, %v", back, err)
	}
	// The views were not created over the differing table: nothing of the schema exists beyond what we saw.
	n := scalar[int](t, ctx, c, "SELECT count() AS v FROM system.tables WHERE database = '"+db+"'")
	if n != 3 {
		t.Errorf("tables in %s = %d, want 3 (logs, logs_errors, logs_queue)", db, n)
	}
}

func mustStatement(t testing.TB, s clickhouse.Schema, table string) string {
	t.Helper()
	sts, err := s.Statements()
	if err != nil {
		t.Fatalf("Statements: %v", err)
	}
	for _, st := range sts {
		if st.Table == table {
			return st.SQL
		}
	}
	t.Fatalf("no statement for %s", table)
	return ""
}

// waitCount polls sql (a count() AS v) until it reaches want.
func waitCount(t *testing.T, ctx context.Context, c *clickhouse.Client, sql string, want int) {
	t.Helper()
	var got int
	for {
		got = scalar[int](t, ctx, c, sql)
		if got >= want {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s = %d, want %d before the deadline", sql, got, want)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if got != want {
		t.Fatalf("%s = %d, want %d", sql, got, want)
	}
}

func TestIntegrationKafkaEndToEnd(t *testing.T) {
	e := loadEnv(t)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 55*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_e2e", 3)
	db, topic := s.Database, s.Topic
	s.NumConsumers = 1
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}

	// N events from the generator, 20 minutes old so all of them fall into every query's window. Most
	// messages carry one event; every tenth carries five newline-joined events, as the reader's batched
	// framing sends them.
	const n = 5000
	g := event.NewGenerator(42, 1_000_000, time.Now().UTC().Add(-20*time.Minute))
	events := make([]event.Event, 0, n)
	var msgs [][]byte
	for len(events) < n {
		k := 1
		if len(msgs)%10 == 9 {
			k = min(5, n-len(events))
		}
		var m []byte
		for j := 0; j < k; j++ {
			ev := g.Next()
			events = append(events, ev)
			if j > 0 {
				m = append(m, '\n')
			}
			m = ev.AppendJSON(m)
		}
		msgs = append(msgs, m)
	}
	kafkatest.Produce(t, e.plaintext, topic, msgs)
	produced := time.Now()

	dc := e.client(t, db)
	waitCount(t, ctx, dc, "SELECT count() AS v FROM logs", n)
	t.Logf("%d events in %d messages: produced in %v, all in ClickHouse %v later", n, len(msgs), produced.Sub(start).Round(time.Millisecond), time.Since(produced).Round(time.Millisecond))

	if u := scalar[int](t, ctx, dc, "SELECT uniqExact(eventId) AS v FROM logs"); u != n {
		t.Errorf("distinct eventIds = %d, want %d (duplicates or losses)", u, n)
	}
	if e := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs_errors"); e != 0 {
		t.Errorf("logs_errors has %d rows, want 0", e)
	}

	// Timestamps keep their microseconds: the sum of epoch microseconds and a direct comparison of some rows.
	var sumMicros int64
	byID := make(map[uint32]event.Event, n)
	for _, ev := range events {
		sumMicros += ev.Timestamp.UnixMicro()
		byID[ev.EventID] = ev
	}
	if got := scalar[int64](t, ctx, dc, "SELECT sum(toUnixTimestamp64Micro(timestamp)) AS v FROM logs"); got != sumMicros {
		t.Errorf("sum of timestamps in µs = %d, want %d", got, sumMicros)
	}
	type row struct {
		EventID   uint32 `json:"eventId"`
		Level     string `json:"level"`
		Source    string `json:"source"`
		Timestamp string `json:"timestamp"`
		Computer  string `json:"computer"`
		User      string `json:"user"`
		Message   string `json:"message"`
	}
	sample, err := clickhouse.QueryRows[row](ctx, dc, clickhouse.Query{SQL: "SELECT * FROM logs ORDER BY eventId LIMIT 200",
		Settings: map[string]string{"date_time_output_format": "simple"}})
	if err != nil {
		t.Fatalf("reading rows back: %v", err)
	}
	for _, r := range sample {
		ev := byID[r.EventID]
		want := row{ev.EventID, ev.Level, ev.Source, ev.Timestamp.UTC().Format("2006-01-02 15:04:05.000000"), ev.Computer, ev.User, ev.Message}
		if r != want {
			t.Fatalf("row %d = %+v, want %+v", r.EventID, r, want)
		}
	}

	checkExampleQueries(t, ctx, dc, events)
}

// checkExampleQueries runs the three example queries the documented way (clickhouse.LevelCounts & co.)
// and compares each answer with the aggregate computed here from events: every event counted once.
func checkExampleQueries(t *testing.T, ctx context.Context, dc *clickhouse.Client, events []event.Event) {
	t.Helper()
	levels := map[string]uint64{}
	errSources := map[string]uint64{}
	minutes := map[time.Time]uint64{}
	for _, ev := range events {
		levels[ev.Level]++
		if ev.Level == "Error" {
			errSources[ev.Source]++
		}
		minutes[ev.Timestamp.UTC().Truncate(time.Minute)]++
	}
	gotLevels, err := clickhouse.LevelCounts(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotLevels) != len(levels) {
		t.Errorf("LevelCounts has %d rows, want %d", len(gotLevels), len(levels))
	}
	for i, r := range gotLevels {
		if levels[r.Level] != r.Count {
			t.Errorf("LevelCounts[%s] = %d, want %d", r.Level, r.Count, levels[r.Level])
		}
		if i > 0 && gotLevels[i-1].Count < r.Count {
			t.Errorf("LevelCounts not ordered by count descending: %+v", gotLevels)
		}
	}
	gotSources, err := clickhouse.TopErrorSources(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	wantTop := make([]uint64, 0, len(errSources))
	for _, v := range errSources {
		wantTop = append(wantTop, v)
	}
	sort.Slice(wantTop, func(i, j int) bool { return wantTop[i] > wantTop[j] })
	if len(wantTop) > 10 {
		wantTop = wantTop[:10]
	}
	if len(gotSources) != len(wantTop) {
		t.Errorf("TopErrorSources has %d rows, want %d", len(gotSources), len(wantTop))
	}
	for i, r := range gotSources {
		if errSources[r.Source] != r.ErrorCount || i < len(wantTop) && wantTop[i] != r.ErrorCount {
			t.Errorf("TopErrorSources[%d] = %+v, want count %d (Go: %d)", i, r, wantTop[i], errSources[r.Source])
		}
	}
	if len(gotSources) == 0 {
		t.Error("TopErrorSources returned nothing; the generator makes Error events")
	}
	gotMinutes, err := clickhouse.LogsPerMinute(ctx, dc)
	if err != nil {
		t.Fatal(err)
	}
	if len(gotMinutes) != len(minutes) {
		t.Errorf("LogsPerMinute has %d rows, want %d", len(gotMinutes), len(minutes))
	}
	for i, r := range gotMinutes {
		if minutes[r.Minute] != r.Count {
			t.Errorf("LogsPerMinute[%s] = %d, want %d", r.Minute, r.Count, minutes[r.Minute])
		}
		if i > 0 && !gotMinutes[i-1].Minute.Before(r.Minute) {
			t.Errorf("LogsPerMinute not ordered by minute: %v then %v", gotMinutes[i-1].Minute, r.Minute)
		}
	}
}

func TestIntegrationBrokenMessage(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_broken", 1)
	db, topic := s.Database, s.Topic
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	g := event.NewGenerator(7, 1, time.Now().UTC().Add(-time.Minute))
	var msgs [][]byte
	for i := 0; i < 50; i++ {
		msgs = append(msgs, g.Next().AppendJSON(nil))
	}
	broken := []byte(`{"eventId": "not a number", "level": "Info"`)
	msgs = append(msgs, broken)
	for i := 0; i < 50; i++ {
		msgs = append(msgs, g.Next().AppendJSON(nil))
	}
	// A batched message (newline-joined events) with a broken line between two good ones.
	mixed := g.Next().AppendJSON(nil)
	mixed = append(mixed, "\n{not json}\n"...)
	mixed = g.Next().AppendJSON(mixed)
	msgs = append(msgs, mixed)
	for i := 0; i < 10; i++ {
		msgs = append(msgs, g.Next().AppendJSON(nil))
	}
	kafkatest.Produce(t, e.plaintext, topic, msgs) // one partition: offsets 0-49 good, 50 broken, 51-100 good, 101 mixed, 102-111 good

	dc := e.client(t, db)
	// Everything but the broken message and the batched message holding a broken line arrives: 50 + 50 + 10.
	waitCount(t, ctx, dc, "SELECT count() AS v FROM logs", 110)
	waitCount(t, ctx, dc, "SELECT count() AS v FROM logs_errors", 2)
	type errRow struct {
		Topic     string `json:"topic"`
		Partition uint64 `json:"partition"`
		Offset    uint64 `json:"offset"`
		Error     string `json:"error"`
		Raw       string `json:"raw_message"`
	}
	rows, err := clickhouse.QueryRows[errRow](ctx, dc, clickhouse.Query{SQL: "SELECT topic, partition, offset, error, raw_message FROM logs_errors ORDER BY offset"})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows[0]; got.Raw != string(broken) || got.Topic != topic || got.Partition != 0 || got.Offset != 50 || got.Error == "" {
		t.Errorf("logs_errors row 1 = %+v, want the broken message at %s/0@50 with an error", got, topic)
	}
	// In stream mode a message is the unit: the good events of a batched message with a broken line stay in
	// raw_message, not in logs. The recovery query of the README finds them.
	if got := rows[1]; got.Raw != string(mixed) || got.Offset != 101 || !strings.Contains(got.Error, "row 2") {
		t.Errorf("logs_errors row 2 = %+v, want the batched message at offset 101, failing at row 2", got)
	}
	if n := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs WHERE eventId IN (101, 102)"); n != 0 {
		t.Errorf("%d events of the batched message reached logs; want 0 (the message is the unit)", n)
	}
	recovered, err := clickhouse.QueryRows[struct {
		Line string `json:"line"`
	}](ctx, dc, clickhouse.Query{SQL: clickhouse.RecoverableLinesSQL})
	if err != nil {
		t.Fatalf("RecoverableLinesSQL: %v", err)
	}
	if len(recovered) != 2 || !strings.Contains(recovered[0].Line, `"eventId":101`) || !strings.Contains(recovered[1].Line, `"eventId":102`) {
		t.Errorf("recoverable lines = %q, want the events 101 and 102", recovered)
	}
	if maxID := scalar[int](t, ctx, dc, "SELECT max(eventId) AS v FROM logs"); maxID != 112 {
		t.Errorf("max eventId = %d, want 112: the rows after the broken messages must arrive", maxID)
	}
}

// lambdaEnv points the test's process at the stack's Secrets Manager emulator and returns a client built as
// functions/bootstrap builds it.
func lambdaEnv(t *testing.T, ctx context.Context) (*secretsmanager.Client, *stacktest.Stack) {
	t.Helper()
	st := stacktest.Load(t)
	for _, k := range []string{"AWS_ENDPOINT_URL_SECRETSMANAGER", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, st.Get(t, k))
	}
	sm, err := clickhouse.NewSecretsManagerClient(ctx)
	if err != nil {
		t.Fatalf("NewSecretsManagerClient: %v", err)
	}
	return sm, st
}

// putSecret creates a secret of the test's own in the emulator, deleted at the end.
func putSecret(t *testing.T, ctx context.Context, sm *secretsmanager.Client, prefix, value string) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano())
	if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
		t.Fatalf("creating secret %s in the emulator: %v", name, err)
	}
	t.Cleanup(func() {
		sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
	})
	return name
}

func kafkaSecretJSON(brokers, user, password string) string {
	b, _ := json.Marshal(map[string]string{"KAFKA_BOOTSTRAP_SERVER": brokers, "KAFKA_SASL_USERNAME": user, "KAFKA_SASL_PASSWORD": password})
	return string(b)
}

// invoker runs the bootstrap handler through aws-lambda-go's own dispatch, as the console does.
type invoker struct {
	t   *testing.T
	ctx context.Context
	h   lambda.Handler
	// outputs collects every answer and error text, for the secret-absence checks.
	outputs *[]string
}

func (iv invoker) invoke(payload string) clickhouse.BootstrapResponse {
	iv.t.Helper()
	out, err := iv.h.Invoke(iv.ctx, []byte(payload))
	if err != nil {
		iv.t.Fatalf("Invoke(%s): %v", payload, err)
	}
	*iv.outputs = append(*iv.outputs, string(out))
	var r clickhouse.BootstrapResponse
	if err := json.Unmarshal(out, &r); err != nil {
		iv.t.Fatalf("decoding %s: %v", out, err)
	}
	pretty, _ := json.MarshalIndent(r, "", "  ")
	iv.t.Logf("bootstrap %s ->\n%s", payload, pretty)
	return r
}

// bootstrapConfig is the Lambda's configuration from its environment, as infra sets it, for the stack.
func bootstrapConfig(t *testing.T, e env, vars map[string]string) clickhouse.BootstrapConfig {
	t.Helper()
	all := map[string]string{clickhouse.EnvURL: e.url, clickhouse.EnvUser: e.user, clickhouse.EnvCAPEM: e.caPEM}
	for k, v := range vars {
		all[k] = v
	}
	cfg, err := clickhouse.BootstrapConfigFromEnv(func(k string) (string, bool) { v, ok := all[k]; return v, ok })
	if err != nil {
		t.Fatalf("BootstrapConfigFromEnv: %v", err)
	}
	return cfg
}

// TestIntegrationBootstrapLambda runs the bootstrap as the Lambda runs it: Kafka credentials from the
// stack's MWAA_Secrets, the ClickHouse password from a secret, the CA inline. A fresh database, a second
// run, a dry run, a drifted table; then it checks that the Kafka password appears nowhere the tool or
// ClickHouse shows.
func TestIntegrationBootstrapLambda(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sm, st := lambdaEnv(t, ctx)
	good := putSecret(t, ctx, sm, "clickhouse-bootstrap", `{"CLICKHOUSE_PASSWORD":"`+e.password+`"}`)

	c := e.client(t, "")
	db := freshDatabase(t, c, "it_lambda")
	topic := kafkatest.UniqueTopic("it_lambda")
	kafkatest.CreateTopic(t, e.plaintext, topic, 1)
	// No KAFKA_BROKERS: the brokers come from the secret, like the credentials.
	cfg := bootstrapConfig(t, e, map[string]string{
		clickhouse.EnvPasswordSecret: good, clickhouse.EnvKafkaSecret: st.Get(t, "SECRET_NAME"),
		clickhouse.EnvTopic: topic, clickhouse.EnvGroup: topic, clickhouse.EnvDatabase: "not_this_one",
	})
	var outputs []string
	var logged strings.Builder // the function's log
	iv := invoker{t, ctx, lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm, Report: &logged}.Handle), &outputs}
	payload := `{"database":"` + db + `"}` // the event overrides CLICKHOUSE_DATABASE

	dry := iv.invoke(`{"database":"` + db + `","dryRun":true}`)
	if !dry.OK || !dry.DryRun || !equal(dry.Created, allNames(db)) {
		t.Errorf("dry run on a fresh database = %+v, want ok, dryRun, everything to be created", dry)
	}
	if n := scalar[int](t, ctx, c, "SELECT count() AS v FROM system.databases WHERE name = '"+db+"'"); n != 0 {
		t.Errorf("the dry run created the database")
	}
	first := iv.invoke(payload)
	if !first.OK || first.Database != db || !equal(first.Created, allNames(db)) {
		t.Errorf("first invocation = %+v, want ok with everything created in %s", first, db)
	}
	if !strings.Contains(first.Credentials, "secret "+st.Get(t, "SECRET_NAME")+" version ") || !strings.Contains(first.Credentials, "CA: PEM sha256:") {
		t.Errorf("credentials = %q, want the secret's name and version and the inline CA", first.Credentials)
	}
	second := iv.invoke(payload)
	if !second.OK || len(second.Created) != 0 || len(second.Updated) != 0 || !equal(second.Kept, allNames(db)) {
		t.Errorf("second invocation = %+v, want ok with everything kept", second)
	}
	dry2 := iv.invoke(`{"database":"` + db + `","dryRun":true}`)
	if !dry2.OK || !dry2.DryRun || !equal(dry2.Kept, allNames(db)) {
		t.Errorf("dry run after the bootstrap = %+v, want everything kept", dry2)
	}

	// The table consumes with the secret's credentials: messages arrive.
	g := event.NewGenerator(3, 1, time.Now().UTC().Add(-time.Minute))
	var msgs [][]byte
	for i := 0; i < 100; i++ {
		msgs = append(msgs, g.Next().AppendJSON(nil))
	}
	kafkatest.Produce(t, e.plaintext, topic, msgs)
	dc := e.client(t, db)
	waitCount(t, ctx, dc, "SELECT count() AS v FROM logs", 100)

	// Drift: logs gets a column by hand. The dry run and the real run both fail the invocation (the console
	// shows a failed invocation), with the summary as the error's message and the whole report, diff
	// included, in the error; they change nothing.
	if err := c.Exec(ctx, "ALTER TABLE "+db+".logs ADD COLUMN note String DEFAULT ''"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{`{"database":"` + db + `","dryRun":true}`, payload} {
		out, err := iv.h.Invoke(ctx, []byte(p))
		outputs = append(outputs, string(out), fmt.Sprint(err))
		var be *clickhouse.BootstrapError
		if !errors.As(err, &be) || !errors.Is(err, clickhouse.ErrDrift) || out != nil {
			t.Fatalf("drifted invocation %s = %s, %v; want a BootstrapError wrapping ErrDrift and no answer", p, out, err)
		}
		t.Logf("drifted invocation %s -> error %q", p, err)
		if msg := err.Error(); !strings.Contains(msg, db+".logs: the stored definition differs from the DDL") || !strings.Contains(msg, "kept 6") {
			t.Errorf("error message %q, want the summary: %s.logs differs, 6 objects kept", msg, db)
		}
		d := be.Response
		if d.OK || !equal(d.Different, []string{db + ".logs"}) || len(d.Diffs) != 1 || !strings.Contains(d.Diffs[0].Diff, "+    `note` String DEFAULT ''") {
			t.Errorf("drifted invocation %s = %+v, want not ok, logs different with a diff adding note", p, d)
		}
	}
	// The function's log holds both reports, one JSON line each, diffs included.
	if lines := strings.Split(strings.TrimSpace(logged.String()), "\n"); len(lines) != 2 || !strings.Contains(lines[1], `"different":["`+db+`.logs"]`) || !strings.Contains(lines[1], "note") {
		t.Errorf("the function's log = %q, want the two drift reports with the diff", logged.String())
	}
	outputs = append(outputs, logged.String())

	// Secret absence: every answer, what ClickHouse shows of the table and the collection, the engine's log.
	shown, err := clickhouse.QueryRows[struct {
		S string `json:"statement"`
	}](ctx, c, clickhouse.Query{SQL: "SHOW CREATE TABLE " + db + ".logs_queue"})
	if err != nil || len(shown) != 1 {
		t.Fatalf("SHOW CREATE TABLE: %v, %d rows", err, len(shown))
	}
	show := shown[0].S
	tables, err := clickhouse.QueryRows[map[string]any](ctx, c, clickhouse.Query{SQL: "SELECT * FROM system.tables WHERE database = {db:String}", Params: map[string]string{"db": db}})
	if err != nil {
		t.Fatal(err)
	}
	colls, err := clickhouse.QueryRows[map[string]any](ctx, c, clickhouse.Query{SQL: "SELECT * FROM system.named_collections WHERE name = {n:String}", Params: map[string]string{"n": db + "_kafka"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(colls) != 1 || !strings.Contains(fmt.Sprint(colls[0]["collection"]), "kafka.sasl_password") {
		t.Fatalf("system.named_collections = %v, want the collection with a kafka.sasl_password key", colls)
	}
	if !strings.Contains(show, "ENGINE = Kafka("+db+"_kafka)") {
		t.Errorf("SHOW CREATE TABLE logs_queue = %s, want the Kafka engine over the named collection", show)
	}
	tj, _ := json.Marshal(tables)
	cj, _ := json.Marshal(colls)
	engineLog, err := os.ReadFile(e.engineLog)
	if err != nil {
		t.Fatalf("reading the engine's log: %v", err)
	}
	assertNoSecret(t, e.kafkaPassword, map[string]string{
		"SHOW CREATE TABLE": show, "system.tables": string(tj), "system.named_collections": string(cj),
		"bootstrap answers": strings.Join(outputs, "\n"), "engine log": string(engineLog),
	})

	// A wrong ClickHouse password in the secret fails the invocation with ClickHouse's authentication error.
	cfg.PasswordSecret = putSecret(t, ctx, sm, "clickhouse-bootstrap", "not-the-password")
	bad := lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm}.Handle)
	_, badErr := bad.Invoke(ctx, []byte(payload))
	if badErr == nil || !strings.Contains(badErr.Error(), "AUTHENTICATION_FAILED") {
		t.Errorf("Invoke with a wrong password: err = %v, want AUTHENTICATION_FAILED", badErr)
	}
	if strings.Contains(fmt.Sprint(badErr), "not-the-password") {
		t.Error("the error carries the password")
	}
	assertNoSecret(t, e.kafkaPassword, map[string]string{"error": fmt.Sprint(badErr)})
}

func assertNoSecret(t *testing.T, secret string, where map[string]string) {
	t.Helper()
	if len(secret) < 8 {
		t.Fatalf("the secret to look for is too short (%d) to mean anything", len(secret))
	}
	for name, text := range where {
		if strings.Contains(text, secret) {
			t.Errorf("the Kafka password appears in %s", name)
		}
	}
}

// TestIntegrationCredentialsRotation rotates the Kafka credentials in the secret and reruns the bootstrap:
// the named collection is altered and logs_queue recreated with its views, logs is kept, and ingestion
// resumes from the consumer group's committed offsets with no lost and no duplicated rows. The rotation goes
// from the broker's user pipeline to its second user, then to a wrong password (ingestion stops, the table
// is reported stuck), then back to a valid one. The broker's users are not changed.
func TestIntegrationCredentialsRotation(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	sm, _ := lambdaEnv(t, ctx)
	c := e.client(t, "")
	db := freshDatabase(t, c, "it_rotate")
	topic := kafkatest.UniqueTopic("it_rotate")
	kafkatest.CreateTopic(t, e.plaintext, topic, 2)
	secret := putSecret(t, ctx, sm, "kafka-rotation", kafkaSecretJSON(e.brokers, e.kafkaUser, e.kafkaPassword))
	cfg := bootstrapConfig(t, e, map[string]string{clickhouse.EnvKafkaSecret: secret, clickhouse.EnvTopic: topic, clickhouse.EnvGroup: topic})
	cfg.Password = e.password
	var outputs []string
	iv := invoker{t, ctx, lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm}.Handle), &outputs}
	payload := `{"database":"` + db + `"}`
	dc := e.client(t, db)

	g := event.NewGenerator(11, 1, time.Now().UTC().Add(-time.Minute))
	total := 0
	batch := func(n int) {
		t.Helper()
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = g.Next().AppendJSON(nil)
		}
		kafkatest.Produce(t, e.plaintext, topic, msgs)
		total += n
	}
	rotate := func(user, password string) clickhouse.BootstrapResponse {
		t.Helper()
		if _, err := sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(secret),
			SecretString: aws.String(kafkaSecretJSON(e.brokers, user, password))}); err != nil {
			t.Fatalf("PutSecretValue: %v", err)
		}
		start := time.Now()
		r := iv.invoke(payload)
		t.Logf("rotation to %s: bootstrap took %v", user, time.Since(start).Round(time.Millisecond))
		wantUpdated := []string{"named collection " + db + "_kafka", db + ".logs_queue", db + ".logs_mv", db + ".logs_errors_mv"}
		if !r.OK || !equal(r.Updated, wantUpdated) || !equal(r.Kept, []string{db, db + ".logs", db + ".logs_errors"}) || len(r.Created) != 0 {
			t.Fatalf("bootstrap after the rotation = %+v, want %q updated and logs kept", r, wantUpdated)
		}
		return r
	}
	exact := func(want int) {
		t.Helper()
		start := time.Now()
		waitCount(t, ctx, dc, "SELECT count() AS v FROM logs", want)
		t.Logf("all %d rows in logs after %v, each eventId once", want, time.Since(start).Round(time.Millisecond))
		if u := scalar[int](t, ctx, dc, "SELECT uniqExact(eventId) AS v FROM logs"); u != want {
			t.Fatalf("distinct eventIds = %d, want %d", u, want)
		}
	}

	first := iv.invoke(payload)
	if !first.OK || !equal(first.Created, allNames(db)) {
		t.Fatalf("first bootstrap = %+v", first)
	}
	batch(1000)
	exact(total)
	logsUUID := scalar[string](t, ctx, c, "SELECT toString(uuid) AS v FROM system.tables WHERE database = '"+db+"' AND name = 'logs'")

	// 1. To the second user: the table reads with its credentials.
	rotate(e.testUser, e.testPassword)
	batch(1000)
	exact(total)

	// 2. To a wrong password: nothing more arrives, and the consumer reports the authentication failure.
	wrong := "wrong-" + e.testPassword
	rotate(e.testUser, wrong)
	batch(500)
	deadline := time.Now().Add(40 * time.Second)
	var stuck error
	for time.Now().Before(deadline) {
		st, err := clickhouse.KafkaStatus(ctx, c, db)
		if err != nil {
			t.Fatal(err)
		}
		if stuck = st.Check(time.Now(), 5*time.Minute, clickhouse.Progress{}); stuck != nil && strings.Contains(stuck.Error(), "SASL authentication error") {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !errors.Is(stuck, clickhouse.ErrKafkaTableStuck) || !strings.Contains(stuck.Error(), "SASL authentication error") {
		t.Fatalf("status with a wrong password: %v, want ErrKafkaTableStuck naming the authentication failure", stuck)
	}
	t.Logf("with a wrong password: %v", stuck)
	if n := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs"); n != total-500 {
		t.Fatalf("logs has %d rows with a wrong password, want %d", n, total-500)
	}

	// 3. Back to valid credentials: the 500 messages waiting arrive, once.
	rotate(e.kafkaUser, e.kafkaPassword)
	exact(total)
	batch(500)
	exact(total)

	if got := scalar[string](t, ctx, c, "SELECT toString(uuid) AS v FROM system.tables WHERE database = '"+db+"' AND name = 'logs'"); got != logsUUID {
		t.Errorf("logs was recreated (uuid %s, was %s)", got, logsUUID)
	}
	assertNoSecret(t, e.kafkaPassword, map[string]string{"bootstrap answers": strings.Join(outputs, "\n"), "stuck error": stuck.Error()})
	assertNoSecret(t, e.testPassword, map[string]string{"bootstrap answers": strings.Join(outputs, "\n"), "stuck error": stuck.Error()})
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestIntegrationClientErrors(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c := e.client(t, "")
	if err := c.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	tests := []struct {
		name       string
		client     *clickhouse.Client
		sql        string
		code, http int
	}{
		{"syntax", c, "SELEC 1", 62, 400},
		{"unknown table", c, "SELECT * FROM system.no_such_table", 60, 404},
		{"unknown database", e.client(t, "no_such_database"), "SELECT 1", 81, 404},
		{"wrong password", func() *clickhouse.Client {
			w, err := clickhouse.NewClient(e.url, clickhouse.WithCredentials(e.user, "wrong"))
			if err != nil {
				t.Fatal(err)
			}
			return w
		}(), "SELECT 1", clickhouse.CodeAuthenticationFailed, 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.client.Exec(ctx, tt.sql)
			var se *clickhouse.ServerError
			if !errors.As(err, &se) || se.Code != tt.code || se.Status != tt.http || !strings.Contains(se.Message, "DB::Exception") {
				t.Errorf("Exec(%q) error = %v, want a ServerError with code %d, HTTP %d and ClickHouse's text", tt.sql, err, tt.code, tt.http)
			}
		})
	}
	// Query parameters carry any text, newlines and backslashes included.
	const tricky = "line1\nline2\t\\end 'q'"
	rows, err := clickhouse.QueryRows[struct {
		V string `json:"v"`
	}](ctx, c, clickhouse.Query{SQL: "SELECT {s:String} AS v", Params: map[string]string{"s": tricky}})
	if err != nil || len(rows) != 1 || rows[0].V != tricky {
		t.Errorf("query parameter round trip = %+v, %v; want %q", rows, err, tricky)
	}
}

// TestIntegrationReconsumedMessages causes what a failed offset commit causes, on purpose and for certain:
// the Kafka table reads messages it has already written to logs again. It pauses consumption (drops the
// views and the Kafka table, so the group has no member), sets the consumer group's offsets back to the
// start of each partition, produces more, and bootstraps again. The messages carry one event or several
// newline-joined events, and some distinct events share an eventId, in one message and across messages.
// With merges stopped, logs then holds every re-read row twice (the precondition, checked exactly), while
// the documented reads (FROM logs FINAL, the three example queries) count each event once, the events
// sharing an eventId included; the duplicates report finds the copies; a merge removes them.
func TestIntegrationReconsumedMessages(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := e.client(t, "")
	const partitions = 3
	s := freshSchema(t, e, c, "it_reread", partitions)
	db, topic := s.Database, s.Topic
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	dc := e.client(t, db)
	// Copies stay until the test has counted them: a background merge would remove them at a time of its own.
	if err := c.Exec(ctx, "SYSTEM STOP MERGES "+clickhouse.QuoteIdent(db)+".logs"); err != nil {
		t.Fatal(err)
	}

	g := event.NewGenerator(21, 5_000_000, time.Now().UTC().Add(-20*time.Minute))
	var events []event.Event
	// messages makes n messages: every third carries four events; every tenth of those also carries a
	// twin of its first event (same eventId, another source); every seventh message is a twin on its own
	// of the event before it.
	messages := func(n int) [][]byte {
		msgs := make([][]byte, 0, n)
		for i := 0; len(msgs) < n; i++ {
			var m []byte
			switch {
			case i%7 == 6 && len(events) > 0:
				twin := events[len(events)-1]
				twin.Source = "twin-of-" + twin.Source
				events = append(events, twin)
				m = twin.AppendJSON(m)
			case i%3 == 2:
				first := g.Next()
				events = append(events, first)
				m = first.AppendJSON(m)
				for j := 0; j < 3; j++ {
					ev := g.Next()
					events = append(events, ev)
					m = ev.AppendJSON(append(m, '\n'))
				}
				if i%30 == 29 {
					twin := first
					twin.Source = "twin-of-" + twin.Source
					events = append(events, twin)
					m = twin.AppendJSON(append(m, '\n'))
				}
			default:
				ev := g.Next()
				events = append(events, ev)
				m = ev.AppendJSON(m)
			}
			msgs = append(msgs, m)
		}
		return msgs
	}
	countSQL := "SELECT count() AS v FROM logs"
	exactSQL := "SELECT count() AS v FROM logs FINAL"

	kafkatest.Produce(t, e.plaintext, topic, messages(1500))
	first := len(events)
	waitCount(t, ctx, dc, countSQL, first)
	before := kafkatest.GroupOffsets(t, e.plaintext, s.Group, topic, partitions)
	t.Logf("%d events consumed once; committed offsets %v", first, before)

	// Pause: without views and Kafka table the group has no member, and its offsets can be set back.
	for _, q := range []string{"DROP VIEW " + db + ".logs_mv SYNC", "DROP VIEW " + db + ".logs_errors_mv SYNC", "DROP TABLE " + db + ".logs_queue SYNC"} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	start := map[int32]int64{}
	for p := int32(0); p < partitions; p++ {
		start[p] = 0
	}
	kafkatest.SetGroupOffsets(t, e.plaintext, s.Group, topic, start, 60*time.Second)
	if got := kafkatest.GroupOffsets(t, e.plaintext, s.Group, topic, partitions); fmt.Sprint(got) != fmt.Sprint(start) {
		t.Fatalf("committed offsets after the reset = %v, want %v", got, start)
	}
	kafkatest.Produce(t, e.plaintext, topic, messages(500))
	second := len(events) - first
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply after the reset: %v", err)
	}

	// The precondition: every event of the first batch is in logs twice now, the second batch's once.
	waitCount(t, ctx, dc, countSQL, 2*first+second)
	n := len(events)
	t.Logf("logs holds %d rows for %d events: %d copies", 2*first+second, n, first)
	if got := scalar[int](t, ctx, dc, exactSQL); got != n {
		t.Errorf("%s = %d, want %d (each event once)", exactSQL, got, n)
	}
	twins := 0
	for _, ev := range events {
		if strings.HasPrefix(ev.Source, "twin-of-") {
			twins++
		}
	}
	if got := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs FINAL WHERE startsWith(source, 'twin-of-')"); got != twins || twins == 0 {
		t.Errorf("twins (distinct events sharing an eventId) in logs FINAL = %d, want %d", got, twins)
	}
	// The plain read is wrong while the copies are there: the reason the documented read says FINAL.
	if got := scalar[int](t, ctx, dc, "SELECT toInt64(sum(count)) AS v FROM ("+strings.Replace(clickhouse.LevelCountsSQL, "FROM logs FINAL", "FROM logs", 1)+")"); got == n {
		t.Errorf("LevelCounts without FINAL sums to %d = the events; the copies should show", got)
	}
	checkExampleQueries(t, ctx, dc, events)

	perID := map[uint32]int{}
	for _, ev := range events {
		perID[ev.EventID]++
	}
	shared := 0
	for _, k := range perID {
		if k > 1 {
			shared++
		}
	}
	rep, err := clickhouse.Duplicates(ctx, dc, time.Now().Add(-time.Hour), time.Now(), 5)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("duplicates report: %+v", rep)
	if rep.Rows != uint64(2*first+second) || rep.Events != uint64(n) || rep.Copies != uint64(first) || rep.SharedIDs != uint64(shared) ||
		rep.EventIDs != uint64(len(perID)) || len(rep.Top) != 5 || rep.Top[0].Rows <= rep.Top[0].Events {
		t.Errorf("Duplicates = %+v, want %d rows, %d events, %d copies, %d eventIds, %d shared, five duplicated eventIds", rep, 2*first+second, n, first, len(perID), shared)
	}

	// A merge removes the copies and keeps the twins: the plain count is exact again.
	if err := c.Exec(ctx, "SYSTEM START MERGES "+clickhouse.QuoteIdent(db)+".logs"); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, "OPTIMIZE TABLE "+clickhouse.QuoteIdent(db)+".logs FINAL"); err != nil {
		t.Fatal(err)
	}
	if got := scalar[int](t, ctx, dc, countSQL); got != n {
		t.Errorf("after OPTIMIZE FINAL %s = %d, want %d", countSQL, got, n)
	}
}

// TestIntegrationCopiesOfOneMessage: a message the producer wrote twice (librdkafka resending it after an
// in-flight timeout, or `reader replay` sending a dead letter the broker had stored after all) sits at two
// offsets with one key, and logs collapses it under FINAL; distinct messages never collapse, even with the
// same line: another key, no key at all (other producers: the coordinates tell them apart), or the same
// eventId with other content. Several events in one message stay several rows.
func TestIntegrationCopiesOfOneMessage(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_copies", 1)
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	dc := e.client(t, s.Database)
	if err := c.Exec(ctx, "SYSTEM STOP MERGES "+clickhouse.QuoteIdent(s.Database)+".logs"); err != nil {
		t.Fatal(err)
	}
	g := event.NewGenerator(31, 7_000_000, time.Now().UTC().Add(-10*time.Minute))
	a, b, c1, d := g.Next(), g.Next(), g.Next(), g.Next()
	other := a
	other.Source = "another-" + a.Source
	line := func(evs ...event.Event) []byte {
		var m []byte
		for i, ev := range evs {
			if i > 0 {
				m = append(m, '\n')
			}
			m = ev.AppendJSON(m)
		}
		return m
	}
	k1, k2, k3, k4 := []byte("instance1\x00\x00\x00\x00\x00\x00\x01"), []byte("instance1\x00\x00\x00\x00\x00\x00\x02"),
		[]byte("instance2\x00\x00\x00\x00\x00\x00\x01"), []byte("instance2\x00\x00\x00\x00\x00\x00\x02")
	keys := [][]byte{k1, k1, k2, k3, nil, nil, k4, k4}
	msgs := [][]byte{line(a), line(a), line(a), line(other), line(b), line(b), line(c1, d), line(c1, d)}
	kafkatest.ProduceKeyed(t, e.plaintext, s.Topic, keys, msgs)
	// The precondition: the Kafka table has consumed and committed all 8 messages. (A copy inserted in the
	// same block as its original is collapsed at insert already, so the stored count is no signal.)
	for kafkatest.GroupOffsets(t, e.plaintext, s.Group, s.Topic, 1)[0] < int64(len(msgs)) {
		if ctx.Err() != nil {
			t.Fatalf("the Kafka table did not commit the %d messages: %v", len(msgs), kafkatest.GroupOffsets(t, e.plaintext, s.Group, s.Topic, 1))
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, q := range []struct {
		sql  string
		want int
	}{
		// a under k1 once, a under k2, other under k3, b twice (no key, two offsets), c1 and d once each.
		{"SELECT count() AS v FROM logs FINAL", 7},
		{fmt.Sprintf("SELECT count() AS v FROM logs FINAL WHERE eventId = %d", a.EventID), 3},
		{fmt.Sprintf("SELECT count() AS v FROM logs FINAL WHERE eventId = %d", b.EventID), 2},
		{fmt.Sprintf("SELECT count() AS v FROM logs FINAL WHERE eventId IN (%d, %d)", c1.EventID, d.EventID), 2},
	} {
		if got := scalar[int](t, ctx, dc, q.sql); got != q.want {
			t.Errorf("%s = %d, want %d", q.sql, got, q.want)
		}
	}
	rep, err := clickhouse.Duplicates(ctx, dc, time.Now().Add(-time.Hour), time.Now(), 5)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 7 || rep.Copies != rep.Rows-7 {
		t.Errorf("Duplicates = %+v, want 7 events and the other rows copies", rep)
	}
}

// seedLogsSQL and seedLogsMVSQL are the seed's logs and logs_mv, as earlier versions of the DDL created
// them: a MergeTree ORDER BY eventId whose rows carry no Kafka coordinates.
const (
	seedLogsSQL = "CREATE TABLE %[1]s.logs (`eventId` UInt32, `level` LowCardinality(String), `source` LowCardinality(String), " +
		"`timestamp` DateTime64(6), `computer` LowCardinality(String), `user` LowCardinality(String), `message` String) " +
		"ENGINE = MergeTree PARTITION BY toYYYYMM(timestamp) ORDER BY eventId SETTINGS index_granularity = 8192"
	seedLogsMVSQL = "CREATE MATERIALIZED VIEW %[1]s.logs_mv TO %[1]s.logs (`eventId` UInt32, `level` LowCardinality(String), " +
		"`source` LowCardinality(String), `timestamp` DateTime64(6), `computer` LowCardinality(String), `user` LowCardinality(String), " +
		"`message` String) AS SELECT eventId, level, source, timestamp, computer, user, message FROM %[1]s.logs_queue WHERE length(_error) = 0"
)

// TestIntegrationMigrateSeedLogs: a deployment whose logs is the seed's, with rows in it (copies the seed
// table already held among them), is migrated by the bootstrap while its Kafka table is consuming: the
// dry run shows the plan and changes nothing; the real run pauses consumption mid-stream, copies every row,
// swaps the tables, keeps the old one under the backup name it reports, and resumes; every row of the old
// table and every event produced before, during and after is in logs once, and a second run keeps all.
func TestIntegrationMigrateSeedLogs(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_migrate", 3)
	db, topic := s.Database, s.Topic
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	// Turn the fresh deployment into a seed-style one before anything is produced.
	for _, q := range []string{
		"DROP VIEW " + db + ".logs_mv SYNC", "DROP VIEW " + db + ".logs_errors_mv SYNC", "DROP TABLE " + db + ".logs SYNC",
		fmt.Sprintf(seedLogsSQL, db), fmt.Sprintf(seedLogsMVSQL, db), mustStatement(t, s, "logs_errors_mv"),
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dc := e.client(t, db)
	g := event.NewGenerator(31, 7_000_000, time.Now().UTC().Add(-20*time.Minute))
	produced := 0
	produce := func(n, perMessage int) {
		t.Helper()
		msgs := make([][]byte, 0, n/perMessage+1)
		for i := 0; i < n; i += perMessage {
			var m []byte
			for j := 0; j < perMessage && i+j < n; j++ {
				if j > 0 {
					m = append(m, '\n')
				}
				m = g.AppendNext(m)
			}
			msgs = append(msgs, m)
		}
		kafkatest.Produce(t, e.plaintext, topic, msgs)
		produced += n
	}
	countSQL := "SELECT count() AS v FROM logs"

	produce(2000, 4)
	waitCount(t, ctx, dc, countSQL, 2000)
	// Copies the seed table holds already (from faults before the migration): rows the migration must keep.
	if err := c.Exec(ctx, "INSERT INTO "+db+".logs SELECT * FROM "+db+".logs WHERE eventId % 10 = 0"); err != nil {
		t.Fatal(err)
	}
	oldCopies := scalar[int](t, ctx, dc, countSQL) - 2000
	if oldCopies != 200 {
		t.Fatalf("the seed table holds %d copies, want 200", oldCopies)
	}

	dry, err := clickhouse.DryRun(ctx, c, s)
	if err != nil {
		t.Fatalf("DryRun: %v", err)
	}
	plan, _ := json.MarshalIndent(dry.Migration, "", "  ")
	t.Logf("dry run: updated %q, migration %s", dry.Updated, plan)
	if m := dry.Migration; m == nil || m.Rows != 2200 || len(m.Steps) != 9 || !strings.HasPrefix(m.Backup, db+".logs_seed_backup_") ||
		!equal(dry.Updated, []string{db + ".logs", db + ".logs_mv", db + ".logs_errors_mv"}) {
		t.Fatalf("dry run = %+v, want the migration of 2200 rows in 9 steps, logs and the views updated", dry)
	}
	if engine := scalar[string](t, ctx, c, "SELECT engine AS v FROM system.tables WHERE database = '"+db+"' AND name = 'logs'"); engine != "MergeTree" {
		t.Fatalf("after the dry run logs is a %s, want the seed's MergeTree untouched", engine)
	}

	// Migrate while the Kafka table is consuming: a stream of small batches runs before, during and after
	// the bootstrap, which starts once the stream's first rows are in logs.
	for scalar[int](t, ctx, dc, countSQL) == 2200 {
		produce(100, 1)
		time.Sleep(100 * time.Millisecond)
	}
	type outcome struct {
		res clickhouse.Result
		err error
	}
	done := make(chan outcome, 1)
	start, atStart := time.Now(), produced
	go func() {
		r, err := clickhouse.Apply(ctx, c, s)
		done <- outcome{r, err}
	}()
	var out outcome
	for waiting := true; waiting; {
		produce(100, 1)
		select {
		case out = <-done:
			waiting = false
		case <-time.After(100 * time.Millisecond):
		}
	}
	if out.err != nil {
		t.Fatalf("Apply (migration): %v", out.err)
	}
	res, m := out.res, out.res.Migration
	t.Logf("migration took %v while %d events were produced: %+v", time.Since(start).Round(time.Millisecond), produced-atStart, m)
	if m == nil || m.Rows <= 2200 || m.Rows >= uint64(produced+oldCopies) || !equal(res.Updated, []string{db + ".logs", db + ".logs_mv", db + ".logs_errors_mv"}) {
		t.Fatalf("Apply = %+v, want logs migrated mid-stream (more than 2200, fewer than %d rows copied) and the views recreated", res, produced+oldCopies)
	}
	produce(1000, 5)

	// Every row of the old table and every event produced, once: the plain count and FINAL agree (nothing
	// was read twice), the old table's copies are still there, and each event's eventId is.
	want := produced + oldCopies
	waitCount(t, ctx, dc, countSQL, want)
	if got := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs FINAL"); got != want {
		t.Errorf("logs FINAL has %d rows, want %d", got, want)
	}
	if got := scalar[int](t, ctx, dc, "SELECT uniqExact(eventId) AS v FROM logs"); got != produced {
		t.Errorf("distinct eventIds = %d, want %d", got, produced)
	}
	migrated := fmt.Sprintf("SELECT count() AS v FROM logs WHERE kafka_partition = %d", uint64(clickhouse.MigratedPartition))
	if got := scalar[int](t, ctx, dc, migrated); got != int(m.Rows) {
		t.Errorf("rows copied by the migration in logs = %d, want %d", got, m.Rows)
	}
	if got := scalar[int](t, ctx, c, "SELECT count() AS v FROM "+m.Backup); got != int(m.Rows) {
		t.Errorf("the backup %s holds %d rows, want %d", m.Backup, got, m.Rows)
	}

	again, err := clickhouse.Apply(ctx, c, s)
	if err != nil || again.Migration != nil || len(again.Created)+len(again.Updated)+len(again.Different) != 0 || !equal(again.Kept, allNames(db)) {
		t.Errorf("Apply after the migration = %+v, %v; want everything kept", again, err)
	}
}

// TestIntegrationMigrationResumes: a migration cut off leaves one of two states, and the next bootstrap
// finishes from either without losing a row: a partial copy in logs_migration (copied again), or the
// exchange done but not the rename (logs_migration is the seed-style table: renamed to the backup name).
func TestIntegrationMigrationResumes(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_resume", 1)
	db := s.Database
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	seedRows := "INSERT INTO " + db + ".logs SELECT toUInt32(number % 700), 'Info', 's', now64(6) - toIntervalSecond(number), 'c', 'u', 'm' FROM numbers(1000)"
	for _, q := range []string{
		"DROP VIEW " + db + ".logs_mv SYNC", "DROP VIEW " + db + ".logs_errors_mv SYNC", "DROP TABLE " + db + ".logs SYNC",
		fmt.Sprintf(seedLogsSQL, db), seedRows,
		// A copy cut off after 100 rows.
		strings.Replace(mustStatement(t, s, "logs"), db+"`.logs", db+"`.logs_migration", 1),
		"INSERT INTO " + db + ".logs_migration (eventId, kafka_partition, kafka_offset) SELECT number, 4294967295, number FROM numbers(100)",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	res, err := clickhouse.Apply(ctx, c, s)
	if err != nil || res.Migration == nil || res.Migration.Rows != 1000 {
		t.Fatalf("Apply over a partial copy = %+v, %v; want 1000 rows migrated", res, err)
	}
	dc := e.client(t, db)
	if n := scalar[int](t, ctx, dc, "SELECT count() AS v FROM logs FINAL"); n != 1000 {
		t.Errorf("logs FINAL after the resumed migration = %d rows, want 1000", n)
	}

	// The exchange done, the rename not: logs is the DDL's, logs_migration the seed-style table.
	for _, q := range []string{
		"RENAME TABLE " + db + ".logs TO " + db + ".logs_tmp",
		"RENAME TABLE " + res.Migration.Backup + " TO " + db + ".logs_migration",
		"RENAME TABLE " + db + ".logs_tmp TO " + db + ".logs",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dry, err := clickhouse.DryRun(ctx, c, s)
	if err != nil || dry.Migration == nil || len(dry.Migration.Steps) != 1 || !strings.HasPrefix(dry.Migration.Steps[0], "rename ") {
		t.Fatalf("DryRun with the rename left = %+v, %v; want the rename as the one step", dry, err)
	}
	res, err = clickhouse.Apply(ctx, c, s)
	if err != nil || res.Migration == nil || res.Migration.Rows != 1000 {
		t.Fatalf("Apply with the rename left = %+v, %v; want the backup renamed", res, err)
	}
	if n := scalar[int](t, ctx, c, "SELECT count() AS v FROM "+res.Migration.Backup); n != 1000 {
		t.Errorf("the backup %s holds %d rows, want 1000", res.Migration.Backup, n)
	}
	if n := scalar[int](t, ctx, c, "SELECT count() AS v FROM system.tables WHERE database = '"+db+"' AND name = 'logs_migration'"); n != 0 {
		t.Errorf("logs_migration is left")
	}
}
