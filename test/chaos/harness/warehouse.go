package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// Warehouse is the suite's ClickHouse engine (the stack's own): the pipeline's schema in a fresh database
// per scenario, the engine's faults (SIGKILL, a clean stop for a while, a restart), and the reconciliation
// of the table users query against the stream.
type Warehouse struct {
	stack *Stack
	url   string
	user  string
	pass  string
}

// Warehouse returns the suite stack's ClickHouse engine.
func (s *Stack) Warehouse(tb testing.TB) *Warehouse {
	tb.Helper()
	w := &Warehouse{stack: s, url: s.Get("CLICKHOUSE_URL"), user: s.Get("CLICKHOUSE_USER"), pass: s.Get("CLICKHOUSE_PASSWORD")}
	if w.url == "" || w.pass == "" {
		tb.Fatalf("the stack env of %s names no ClickHouse engine (CLICKHOUSE_URL, CLICKHOUSE_PASSWORD)", s.Dir)
	}
	return w
}

// Client returns a client of the engine whose unqualified table names resolve in db ("" for none).
func (w *Warehouse) Client(tb testing.TB, db string) *clickhouse.Client {
	tb.Helper()
	opts := []clickhouse.ClientOption{clickhouse.WithCredentials(w.user, w.pass)}
	if db != "" {
		opts = append(opts, clickhouse.WithDatabase(db))
	}
	c, err := clickhouse.NewClient(w.url, opts...)
	if err != nil {
		tb.Fatalf("ClickHouse client: %v", err)
	}
	return c
}

// Auth returns the Kafka credentials the bootstrap would put into the named collection: the broker's
// pipeline user, or its second (test) user when second is true, with the stack's CA inline. version names
// them in logs_queue's comment, as a secret's version would.
func (w *Warehouse) Auth(tb testing.TB, second bool, version string) clickhouse.KafkaAuth {
	tb.Helper()
	pem, err := os.ReadFile(w.stack.Get("KAFKA_CA_FILE"))
	if err != nil {
		tb.Fatalf("reading the stack's CA: %v", err)
	}
	user, pass := w.stack.Get("KAFKA_SASL_USERNAME"), w.stack.Get("KAFKA_SASL_PASSWORD")
	if second {
		user, pass = w.stack.Get("KAFKA_SASL_TEST_USERNAME"), w.stack.Get("KAFKA_SASL_TEST_PASSWORD")
	}
	if user == "" || pass == "" {
		tb.Fatalf("the stack env of %s lacks the broker's SASL users", w.stack.Dir)
	}
	return clickhouse.KafkaAuth{Username: user, Password: pass, CAPEM: string(pem), Source: "chaos " + version}
}

// Bootstrap applies the pipeline's schema (as chctl bootstrap does) in a fresh database that consumes
// topic in a consumer group of its own, with numConsumers consumers, and drops the database and its named
// collection when the test ends. It returns the schema (Database and Group name what it created).
func (w *Warehouse) Bootstrap(tb testing.TB, topic string, numConsumers int) clickhouse.Schema {
	tb.Helper()
	c := w.Client(tb, "")
	brokers := w.stack.Get("CLICKHOUSE_KAFKA_BROKERS")
	if brokers == "" {
		brokers = w.stack.Get("KAFKA_BOOTSTRAP_SERVER")
	}
	s := clickhouse.NewSchema(brokers)
	s.Database = fmt.Sprintf("chaos_%d", time.Now().UnixNano())
	s.Topic, s.Group, s.NumConsumers = topic, s.Database+"_group", numConsumers
	s.Auth = w.Auth(tb, false, "v1")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// The engine may be down or restarting when a failed scenario ends: bring it back first.
		if err := w.Start(ctx); err != nil {
			tb.Errorf("restarting ClickHouse after the scenario: %v", err)
			return
		}
		c := w.Client(tb, "")
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+clickhouse.QuoteIdent(s.Database)+" SYNC"); err != nil {
			tb.Errorf("dropping %s: %v", s.Database, err)
		}
		if err := c.Exec(ctx, "DROP NAMED COLLECTION IF EXISTS "+clickhouse.QuoteIdent(s.Collection())); err != nil {
			tb.Errorf("dropping the named collection %s: %v", s.Collection(), err)
		}
	})
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		tb.Fatalf("bootstrapping ClickHouse database %s on %s: %v", s.Database, topic, err)
	}
	return s
}

// Reapply runs the bootstrap again with s (e.g. other credentials: a rotation) and returns what it did.
func (w *Warehouse) Reapply(ctx context.Context, tb testing.TB, s clickhouse.Schema) clickhouse.Result {
	tb.Helper()
	res, err := clickhouse.Apply(ctx, w.Client(tb, ""), s)
	if err != nil {
		tb.Fatalf("re-running the bootstrap on %s: %v", s.Database, err)
	}
	return res
}

// RawRows counts the rows stored in db's logs table as they are, copies included: what the Kafka engine
// wrote, before any deduplication.
func (w *Warehouse) RawRows(ctx context.Context, tb testing.TB, db string) (uint64, error) {
	tb.Helper()
	return scalarU64(ctx, w.Client(tb, db), "SELECT count() AS v FROM logs")
}

// WaitRawRows waits until db's logs table holds at least want rows (consumption is under way), and fails tb
// after d.
func (w *Warehouse) WaitRawRows(tb testing.TB, db string, want uint64, d time.Duration) uint64 {
	tb.Helper()
	deadline := time.Now().Add(d)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, err := w.RawRows(ctx, tb, db)
		cancel()
		if err == nil && got >= want {
			return got
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ClickHouse %s.logs holds %d rows after %v, want at least %d (last error %v)", db, got, d, want, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// WaitAssigned waits until the Kafka table of db has been assigned partitions (a new consumer group's
// first assignment takes seconds), so a scenario's stream is consumed while it runs; it fails tb after d.
func (w *Warehouse) WaitAssigned(tb testing.TB, db string, d time.Duration) {
	tb.Helper()
	c := w.Client(tb, "")
	deadline := time.Now().Add(d)
	sql := "SELECT toUInt64(sum(length(assignments.partition_id))) AS v FROM system.kafka_consumers WHERE database = " + clickhouse.QuoteString(db)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		n, err := scalarU64(ctx, c, sql)
		cancel()
		if err == nil && n > 0 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("the Kafka table of %s has no partition assigned after %v (last error %v)", db, d, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// pid returns the engine's process id, checked against the stack directory (never a recycled pid).
func (w *Warehouse) pid() (int, error) {
	return w.stack.processPID("CLICKHOUSE_PID_FILE", "ClickHouse", w.stack.Dir+string(filepath.Separator))
}

// Kill SIGKILLs the engine (no shutdown: no flush, no offset commit) and waits until its process is gone.
func (w *Warehouse) Kill() error {
	pid, err := w.pid()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing ClickHouse (pid %d): %w", pid, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/cmdline", pid)); err != nil {
			return nil
		}
		if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); strings.Contains(string(b), ") Z ") {
			return nil // a zombie holds no engine any more
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ClickHouse (pid %d) still runs 10s after SIGKILL", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop stops the engine cleanly (dev/clickhouse.sh down: SIGTERM, the engine shuts its consumers down).
func (w *Warehouse) Stop(ctx context.Context) error { return w.clickhouseCmd(ctx, "down") }

// Start starts the engine again (or keeps it running) and waits until it answers: dev/clickhouse.sh up.
func (w *Warehouse) Start(ctx context.Context) error { return w.clickhouseCmd(ctx, "up") }

func (w *Warehouse) clickhouseCmd(ctx context.Context, arg string) error {
	if err := w.stack.guard(); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, filepath.Join(w.stack.Root, "dev", "clickhouse.sh"), arg)
	cmd.Env = stackEnv(w.stack.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("dev/clickhouse.sh %s: %w: %s", arg, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Answers reports whether the engine answers a ping within a second.
func (w *Warehouse) Answers(tb testing.TB) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	return w.Client(tb, "").Ping(ctx) == nil
}

// Settle waits until the Kafka table of s has committed everything the topic holds (its group's lag is 0,
// so nothing it read will be read again) and the logs table has stopped growing (two reads 2 s apart
// agree). It fails tb after d.
func (w *Warehouse) Settle(tb testing.TB, s clickhouse.Schema, d time.Duration) {
	tb.Helper()
	deadline := time.Now().Add(d)
	var last uint64
	var lastErr error
	stable := 0
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		lag, err := kafkatest.GroupLag(ctx, w.stack.PlaintextBootstrap(), s.Group, s.Topic)
		var rows uint64
		if err == nil {
			rows, err = w.RawRows(ctx, tb, s.Database)
		}
		cancel()
		switch {
		case err != nil:
			lastErr, stable = err, 0
		case lag == 0 && rows == last:
			stable++
		default:
			lastErr, stable = fmt.Errorf("group lag %d, rows %d (was %d)", lag, rows, last), 0
		}
		last = rows
		if stable >= 2 {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("ClickHouse %s did not settle within %v: %v", s.Database, d, lastErr)
		}
		time.Sleep(2 * time.Second)
	}
}

// TableTally is the reconciliation of a logs table with a stream of N events with sequential eventIds:
// what is stored (raw) and what users get when they read the documented way (answer).
type TableTally struct {
	N uint64
	// RawRows counts the stored rows, copies included; RawDistinct the distinct eventIds among them.
	RawRows, RawDistinct uint64
	// Rows and Distinct are the same counts in the answer users get (ExactFrom).
	Rows, Distinct uint64
	// Lost counts the stream's events missing from the answer, Duplicated the answer's extra rows.
	Lost, Duplicated uint64
	// OutOfRange counts answer rows whose eventId is not in the stream.
	OutOfRange uint64
	// Gaps says, when events are lost, which Kafka offsets no row came from.
	Gaps string
	// QueryErrors lists how each example query's answer differs from the one the stream implies; empty when
	// all three are exact.
	QueryErrors []string
}

// Exact reports whether users get exactly one row per event and the example queries' exact answers.
func (t TableTally) Exact() bool {
	return t.Lost == 0 && t.Duplicated == 0 && t.OutOfRange == 0 && t.Rows == t.N && len(t.QueryErrors) == 0
}

// String summarises the tally.
func (t TableTally) String() string {
	q := "exact"
	if len(t.QueryErrors) > 0 {
		q = strings.Join(t.QueryErrors, "; ")
	}
	s := fmt.Sprintf("stored %d rows (%d distinct); answer %d rows, %d distinct of %d, lost %d, duplicated %d, out of range %d; queries: %s",
		t.RawRows, t.RawDistinct, t.Rows, t.Distinct, t.N, t.Lost, t.Duplicated, t.OutOfRange, q)
	if t.Gaps != "" {
		s += "; " + t.Gaps
	}
	return s
}

// Reconcile compares db's logs table with the stream of n events that gen generates (eventIds gen.ID(0) up):
// counts raw and in the answer users get, and runs the three example queries through the clickhouse
// package (as chctl queries does) against the answers the stream implies.
func (w *Warehouse) Reconcile(tb testing.TB, db string, gen *event.Generator, n uint64) TableTally {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := w.Client(tb, db)
	first, last := gen.ID(0), gen.ID(n-1)
	var t TableTally
	t.N = n
	type counts struct {
		Rows     uint64 `json:"rows"`
		Distinct uint64 `json:"distinct"`
		InRange  uint64 `json:"in_range"`
	}
	read := func(from string) counts {
		sql := fmt.Sprintf("SELECT count() AS rows, uniqExact(eventId) AS distinct, uniqExactIf(eventId, eventId BETWEEN %d AND %d) AS in_range FROM %s",
			first, last, from)
		rows, err := clickhouse.QueryRows[counts](ctx, c, clickhouse.Query{SQL: sql})
		if err != nil || len(rows) != 1 {
			tb.Fatalf("%s: %v (%d rows)", sql, err, len(rows))
		}
		return rows[0]
	}
	raw := read("logs")
	t.RawRows, t.RawDistinct = raw.Rows, raw.Distinct
	ans := read(ExactFrom)
	t.Rows, t.Distinct = ans.Rows, ans.Distinct
	t.Lost = n - min(n, ans.InRange)
	t.OutOfRange = ans.Distinct - ans.InRange
	t.Duplicated = ans.Rows - ans.Distinct
	t.QueryErrors = checkQueries(ctx, tb, c, gen, n)
	if t.Lost > 0 {
		t.Gaps = offsetGaps(ctx, c)
	}
	return t
}

// offsetGaps describes where a loss sits in the topic: the Kafka offsets, per partition, that no row of logs
// came from (the first ten gaps), and how many rows logs_errors holds. "" when it cannot tell.
func offsetGaps(ctx context.Context, c *clickhouse.Client) string {
	type gap struct {
		Partition uint64 `json:"p"`
		From      uint64 `json:"from"`
		To        uint64 `json:"to"`
	}
	gaps, err := clickhouse.QueryRows[gap](ctx, c, clickhouse.Query{SQL: `SELECT p, expected AS from, o - 1 AS to FROM (
    SELECT p, o, lagInFrame(o + 1, 1, toUInt64(0)) OVER (PARTITION BY p ORDER BY o ROWS BETWEEN 1 PRECEDING AND CURRENT ROW) AS expected
    FROM (SELECT DISTINCT toUInt64(kafka_partition) AS p, kafka_offset AS o FROM logs))
WHERE o != expected ORDER BY p, o LIMIT 10`})
	if err != nil {
		return "offsets unknown: " + err.Error()
	}
	errRows, _ := scalarU64(ctx, c, "SELECT count() AS v FROM logs_errors")
	parts := make([]string, len(gaps))
	for i, g := range gaps {
		parts[i] = fmt.Sprintf("partition %d offsets %d-%d", g.Partition, g.From, g.To)
	}
	return fmt.Sprintf("no rows from %s; logs_errors holds %d rows", strings.Join(parts, ", "), errRows)
}

// ExactFrom is the FROM clause that reads the logs table the way the documentation tells users to: FINAL
// collapses the copies a re-consumed Kafka message left (the ReplacingMergeTree key holds its coordinates).
const ExactFrom = "logs FINAL"

// checkQueries runs the three example queries and compares each with the answer computed from the stream.
func checkQueries(ctx context.Context, tb testing.TB, c *clickhouse.Client, gen *event.Generator, n uint64) []string {
	tb.Helper()
	now := time.Now().UTC()
	levels := map[string]uint64{}
	errSources := map[string]uint64{}
	minutes := map[time.Time]uint64{}
	for i := uint64(0); i < n; i++ {
		ev := gen.At(i)
		if !ev.Timestamp.Before(now.Add(-time.Hour)) {
			levels[ev.Level]++
		}
		if ev.Level == "Error" {
			errSources[ev.Source]++
		}
		if !ev.Timestamp.Before(now.Add(-24 * time.Hour)) {
			minutes[ev.Timestamp.Truncate(time.Minute)]++
		}
	}
	var errs []string
	if got, err := clickhouse.LevelCounts(ctx, c); err != nil {
		errs = append(errs, err.Error())
	} else {
		m := map[string]uint64{}
		for _, r := range got {
			m[r.Level] = r.Count
		}
		if d := diffCounts(levels, m); d != "" {
			errs = append(errs, "count by level: "+d)
		}
	}
	if got, err := clickhouse.TopErrorSources(ctx, c); err != nil {
		errs = append(errs, err.Error())
	} else {
		m := map[string]uint64{}
		for _, r := range got {
			m[r.Source] = r.ErrorCount
		}
		if d := checkTop(errSources, m, 10); d != "" {
			errs = append(errs, "top error sources: "+d)
		}
	}
	if got, err := clickhouse.LogsPerMinute(ctx, c); err != nil {
		errs = append(errs, err.Error())
	} else {
		m := map[time.Time]uint64{}
		for _, r := range got {
			m[r.Minute.UTC()] = r.Count
		}
		if d := diffCounts(minutes, m); d != "" {
			errs = append(errs, "logs by minute: "+d)
		}
	}
	return errs
}

// diffCounts describes how got differs from want ("" when equal): how many keys differ and the first ones.
func diffCounts[K comparable](want, got map[K]uint64) string {
	var diffs []string
	var over, under uint64
	for k, w := range want {
		if g := got[k]; g != w {
			diffs = append(diffs, fmt.Sprintf("%v %d want %d", k, g, w))
			if g > w {
				over += g - w
			} else {
				under += w - g
			}
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, fmt.Sprintf("%v %d want none", k, g))
			over += g
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	sort.Strings(diffs)
	return fmt.Sprintf("%d of %d groups wrong (+%d/-%d rows), e.g. %s", len(diffs), len(want), over, under,
		strings.Join(diffs[:min(3, len(diffs))], ", "))
}

// checkTop checks a top-k answer: every row's count is the stream's count for that key, and no key left
// out has more than the smallest count shown (ties may be broken either way).
func checkTop(want, got map[string]uint64, k int) string {
	if len(got) != min(k, len(want)) {
		return fmt.Sprintf("%d rows, want %d", len(got), min(k, len(want)))
	}
	var diffs []string
	least := uint64(1<<63 - 1)
	for key, g := range got {
		if w := want[key]; g != w {
			diffs = append(diffs, fmt.Sprintf("%s %d want %d", key, g, w))
		}
		least = min(least, g)
	}
	for key, w := range want {
		if _, ok := got[key]; !ok && w > least {
			diffs = append(diffs, fmt.Sprintf("%s (%d) left out", key, w))
		}
	}
	if len(diffs) == 0 {
		return ""
	}
	slices.Sort(diffs)
	return strings.Join(diffs[:min(3, len(diffs))], ", ")
}

// EngineLogCount counts the lines of the engine's own log, from offset on, that contain substr (e.g. the
// Kafka table's failed commits), and returns the log's size for the next call.
func (w *Warehouse) EngineLogCount(substr string, offset int64) (count int, size int64, err error) {
	path := w.stack.Get("CLICKHOUSE_ENGINE_LOG")
	if path == "" {
		return 0, 0, errors.New("the stack env names no CLICKHOUSE_ENGINE_LOG")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("reading the engine log: %w", err)
	}
	if offset > int64(len(b)) {
		offset = 0 // the log was rotated or truncated
	}
	return strings.Count(string(b[offset:]), substr), int64(len(b)), nil
}

func scalarU64(ctx context.Context, c *clickhouse.Client, sql string) (uint64, error) {
	rows, err := clickhouse.QueryRows[struct {
		V uint64 `json:"v"`
	}](ctx, c, clickhouse.Query{SQL: sql})
	if err != nil {
		return 0, err
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("%s: %d rows, want 1", sql, len(rows))
	}
	return rows[0].V, nil
}
