package clickhouse_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	// brokers is the listener the engine's Kafka tables use (SASL_SSL, configured in its config.xml).
	brokers string
	// plaintext is where the tests create topics and produce.
	plaintext string
}

func loadEnv(t *testing.T) env {
	t.Helper()
	s := stacktest.Load(t)
	return env{
		url:       s.Get(t, "CLICKHOUSE_URL"),
		user:      s.Get(t, "CLICKHOUSE_USER"),
		password:  s.Get(t, "CLICKHOUSE_PASSWORD"),
		brokers:   s.Get(t, "CLICKHOUSE_KAFKA_BROKERS"),
		plaintext: s.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"),
	}
}

func (e env) client(t *testing.T, db string) *clickhouse.Client {
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
func freshDatabase(t *testing.T, c *clickhouse.Client, prefix string) string {
	t.Helper()
	db := fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(db)+" SYNC"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
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
	return s
}

func allNames(db string) []string {
	return []string{db, db + ".logs", db + ".logs_errors", db + ".logs_queue", db + ".logs_mv", db + ".logs_errors_mv"}
}

func scalar[T any](t *testing.T, ctx context.Context, c *clickhouse.Client, sql string) T {
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
	if want := []string{db, db + ".logs_errors"}; !equal(third.Kept, want) {
		t.Errorf("third Apply kept = %q, want %q", third.Kept, want)
	}
	if len(third.Created) != 0 {
		t.Errorf("third Apply created %q; views over a differing Kafka table must not be created", third.Created)
	}
	if d := third.Diffs[0]; !strings.Contains(d.Have, "extra") || strings.Contains(d.Want, "extra") {
		t.Errorf("diff of logs: want %q, have %q; want the stored side to show the extra column", d.Want, d.Have)
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

func mustStatement(t *testing.T, s clickhouse.Schema, table string) string {
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

	// The three example queries against aggregates computed here from the generated events.
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
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
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

func TestIntegrationBootstrapLambda(t *testing.T) {
	e := loadEnv(t)
	st := stacktest.Load(t)
	for _, k := range []string{"AWS_ENDPOINT_URL_SECRETSMANAGER", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} {
		t.Setenv(k, st.Get(t, k))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Second)
	defer cancel()
	sm, err := clickhouse.NewSecretsManagerClient(ctx) // as functions/bootstrap builds it
	if err != nil {
		t.Fatalf("NewSecretsManagerClient: %v", err)
	}
	putSecret := func(value string) string {
		name := fmt.Sprintf("clickhouse-bootstrap-%d", time.Now().UnixNano())
		if _, err := sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(value)}); err != nil {
			t.Fatalf("creating secret %s in the emulator: %v", name, err)
		}
		t.Cleanup(func() {
			sm.DeleteSecret(context.Background(), &secretsmanager.DeleteSecretInput{SecretId: aws.String(name), ForceDeleteWithoutRecovery: aws.Bool(true)})
		})
		return name
	}
	good := putSecret(`{"CLICKHOUSE_PASSWORD":"` + e.password + `"}`)

	c := e.client(t, "")
	db := freshDatabase(t, c, "it_lambda")
	topic := kafkatest.UniqueTopic("it_lambda")
	kafkatest.CreateTopic(t, e.plaintext, topic, 1)
	envVars := map[string]string{
		clickhouse.EnvURL: e.url, clickhouse.EnvUser: e.user, clickhouse.EnvPasswordSecret: good,
		clickhouse.EnvBrokers: e.brokers, clickhouse.EnvTopic: topic, clickhouse.EnvGroup: topic,
		clickhouse.EnvDatabase: "not_this_one",
	}
	cfg, err := clickhouse.BootstrapConfigFromEnv(func(k string) (string, bool) { v, ok := envVars[k]; return v, ok })
	if err != nil {
		t.Fatalf("BootstrapConfigFromEnv: %v", err)
	}
	h := lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm}.Handle)
	payload := []byte(`{"database":"` + db + `"}`) // the event overrides CLICKHOUSE_DATABASE

	invoke := func() clickhouse.BootstrapResponse {
		t.Helper()
		out, err := h.Invoke(ctx, payload)
		if err != nil {
			t.Fatalf("Invoke: %v", err)
		}
		var r clickhouse.BootstrapResponse
		if err := json.Unmarshal(out, &r); err != nil {
			t.Fatalf("decoding %s: %v", out, err)
		}
		return r
	}
	first := invoke()
	if !first.OK || first.Database != db || !equal(first.Created, allNames(db)) {
		t.Errorf("first invocation = %+v, want ok with everything created in %s", first, db)
	}
	second := invoke()
	if !second.OK || len(second.Created) != 0 || !equal(second.Kept, allNames(db)) {
		t.Errorf("second invocation = %+v, want ok with everything kept", second)
	}

	// A wrong password in the secret fails the invocation with ClickHouse's authentication error.
	cfg.PasswordSecret = putSecret("not-the-password")
	bad := lambda.NewHandler(clickhouse.BootstrapHandler{Config: cfg, Secrets: sm}.Handle)
	_, badErr := bad.Invoke(ctx, payload)
	if badErr == nil || !strings.Contains(badErr.Error(), "AUTHENTICATION_FAILED") {
		t.Errorf("Invoke with a wrong password: err = %v, want AUTHENTICATION_FAILED", badErr)
	}
	if strings.Contains(fmt.Sprint(badErr), "not-the-password") {
		t.Error("the error carries the password")
	}
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
