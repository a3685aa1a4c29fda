package clickhouse

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"text/template"
	"time"
)

// The seed's logs and logs_mv (a plain MergeTree ORDER BY eventId whose rows carry no Kafka coordinates),
// which earlier versions of the DDL created. Apply recognizes them and migrates logs (see Migration).
//
//go:embed ddl/seed/*.sql
var seedFiles embed.FS

// MigratedPartition is the kafka_partition of the rows a migration copies from a seed-style logs: their
// coordinates are unknown, so each gets this partition (no topic has that many) and, as kafka_offset, its
// number in the copy. Every copied row thus stays a row of its own, copies the seed table already held
// included: the migration changes no count. Kafka partitions are below 2^31.
const MigratedPartition = 1<<32 - 1

// Migration describes the migration of a seed-style logs to the DDL's: what Apply did, or, in a dry run,
// would do.
type Migration struct {
	// Table is the migrated table (database.logs).
	Table string `json:"table"`
	// Rows is the number of rows copied (in a dry run: the rows logs holds now).
	Rows uint64 `json:"rows"`
	// Backup is the name the seed-style table keeps, with its rows, once the new one has taken its place.
	// Nothing drops it: a person does, once satisfied.
	Backup string `json:"backup"`
	// Steps are the statements' purposes, in order.
	Steps []string `json:"steps"`
}

// migrationTable is where the new logs is built before it takes the old one's place; a leftover of an
// interrupted run is found there.
const migrationTable = "logs_migration"

// seedStatement renders the seed's DDL of table (logs or logs_mv) for s, as the server stores it (no ON
// CLUSTER).
func seedStatement(s Schema, table string) (string, error) {
	name := "ddl/seed/" + map[string]string{"logs": "10_logs.sql", "logs_mv": "40_logs_mv.sql"}[table]
	src, err := seedFiles.ReadFile(name)
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", name, err)
	}
	t, err := template.New(table).Funcs(template.FuncMap{"ident": QuoteIdent, "str": QuoteString}).Parse(string(src))
	if err != nil {
		return "", fmt.Errorf("parsing %s: %w", name, err)
	}
	local := s
	local.Cluster = ""
	var b bytes.Buffer
	if err := t.Execute(&b, local); err != nil {
		return "", fmt.Errorf("rendering %s: %w", name, err)
	}
	return strings.TrimSpace(b.String()), nil
}

// isSeed reports whether have (canonical, as object.have) is the seed's definition of table.
func isSeed(ctx context.Context, c *Client, s Schema, table, have string) (bool, error) {
	seed, err := seedStatement(s, table)
	if err != nil {
		return false, err
	}
	want, err := normalize(ctx, c, seed)
	if err != nil {
		return false, fmt.Errorf("normalizing the seed's DDL of %s: %w", table, err)
	}
	return canonicalEngine(want) == have, nil
}

// migrationQueryID names the copy's query, so that a second bootstrap finds it running (a copy outlives
// the HTTP request that started it) and waits instead of starting another.
func migrationQueryID(s Schema) string { return "migrate " + s.Database + ".logs" }

// planMigration fills a Migration for s: the backup's name (logs_seed_backup_<UTC time>), the rows and the
// steps.
func planMigration(ctx context.Context, c *Client, s Schema, queueExists bool, views []string, now time.Time) (*Migration, error) {
	db := s.Database
	rows, err := countRows(ctx, c, db, "logs")
	if err != nil {
		return nil, err
	}
	m := &Migration{Table: db + ".logs", Rows: rows, Backup: db + ".logs_seed_backup_" + now.UTC().Format("20060102150405")}
	if queueExists {
		m.Steps = append(m.Steps, "detach "+db+".logs_queue: its consumers stop and leave the group, whose committed offsets stay")
	}
	for _, v := range views {
		m.Steps = append(m.Steps, "drop view "+db+"."+v)
	}
	if queueExists {
		m.Steps = append(m.Steps, "attach "+db+".logs_queue: without a view it reads nothing")
	}
	m.Steps = append(m.Steps,
		"create "+db+"."+migrationTable+" with the DDL of logs (ReplacingMergeTree with Kafka coordinates)",
		fmt.Sprintf("copy the %d rows of %s.logs into it, each with kafka_partition %d and its number in the copy as kafka_offset, and check the count", rows, db, uint64(MigratedPartition)),
		"exchange "+db+".logs and "+db+"."+migrationTable,
		"rename "+db+"."+migrationTable+" (the seed-style table, rows kept) to "+m.Backup,
		"create "+db+".logs_mv and "+db+".logs_errors_mv: consumption resumes from the committed offsets",
	)
	return m, nil
}

// migrate builds the new logs beside the seed-style one, copies every row, and exchanges the two; the
// views over the Kafka table are dropped already (nothing writes to logs). A leftover of an interrupted run
// is used when it holds every row, else copied again, unless a copy into it is still running; when the
// leftover is the seed-style table itself (the run stopped between the exchange and the rename), logs is
// new already and only the rename is left, which apply does instead of calling migrate.
func migrate(ctx context.Context, c *Client, s Schema, logs Statement, m *Migration) error {
	db := QuoteIdent(s.Database)
	from, into := db+".logs", db+"."+migrationTable
	running, err := queryRunning(ctx, c, migrationQueryID(s))
	if err != nil {
		return err
	}
	if running {
		return fmt.Errorf("a copy into %s.%s is still running (query %q): run the bootstrap again once it ends: %w", s.Database, migrationTable, migrationQueryID(s), ErrMigrationRunning)
	}
	before, err := countRows(ctx, c, s.Database, "logs")
	if err != nil {
		return err
	}
	// A leftover holding as many rows as logs is a finished copy whose exchange did not happen (nothing
	// writes to logs meanwhile: the views are gone); anything else is dropped and copied again.
	_, leftover, err := storedCreate(ctx, c, s.Database, migrationTable)
	if err != nil {
		return err
	}
	done := false
	if leftover {
		n, err := countRows(ctx, c, s.Database, migrationTable)
		if err != nil {
			return err
		}
		done = n == before
	}
	if !done {
		if err := copyLogs(ctx, c, s, logs); err != nil {
			return err
		}
	}
	after, err := countRows(ctx, c, s.Database, migrationTable)
	if err != nil {
		return err
	}
	if after != before {
		return fmt.Errorf("copied %d rows of %s's %d; logs is unchanged and %s is left for a look: %w", after, from, before, into, ErrMigrationCount)
	}
	m.Rows = after
	if err := c.Exec(ctx, "EXCHANGE TABLES "+from+" AND "+into+s.OnCluster()); err != nil {
		return fmt.Errorf("exchanging %s and %s: %w", from, into, err)
	}
	return renameBackup(ctx, c, s, m.Backup)
}

// copyLogs (re)creates logs_migration with the DDL of logs and copies every row of logs into it, each with
// kafka_partition MigratedPartition, its number in the copy as kafka_offset, and the key logs_mv gives a
// message without one, built from those two. The copy is one statement
// under the query id migrationQueryID.
func copyLogs(ctx context.Context, c *Client, s Schema, logs Statement) error {
	db := QuoteIdent(s.Database)
	from, into := db+".logs", db+"."+migrationTable
	if err := c.Exec(ctx, "DROP TABLE IF EXISTS "+into+s.OnCluster()+" SYNC"); err != nil {
		return fmt.Errorf("dropping the leftover %s: %w", into, err)
	}
	prefix := "CREATE TABLE " + from
	if !strings.HasPrefix(logs.SQL, prefix) {
		return fmt.Errorf("the DDL of logs does not start with %q", prefix)
	}
	if err := c.Exec(ctx, "CREATE TABLE "+into+strings.TrimPrefix(logs.SQL, prefix)); err != nil {
		return fmt.Errorf("creating %s: %w", into, err)
	}
	part := strconv.FormatUint(MigratedPartition, 10)
	copySQL := "INSERT INTO " + into + " (eventId, level, source, timestamp, computer, user, message, kafka_partition, kafka_offset, kafka_key) " +
		"SELECT eventId, level, source, timestamp, computer, user, message, " + part + ", n, concat('@" + part + ":', toString(n)) " +
		"FROM (SELECT *, rowNumberInAllBlocks() AS n FROM " + from + ")"
	if err := execWithID(ctx, c, copySQL, migrationQueryID(s)); err != nil {
		return fmt.Errorf("copying %s into %s (logs is unchanged and nothing consumes until the bootstrap runs again; a large table needs a longer timeout): %w", from, into, err)
	}
	return nil
}

// renameBackup gives the seed-style table, which the exchange left as logs_migration, its backup name.
func renameBackup(ctx context.Context, c *Client, s Schema, backup string) error {
	db := QuoteIdent(s.Database)
	_, table, _ := strings.Cut(backup, s.Database+".")
	if err := c.Exec(ctx, "RENAME TABLE "+db+"."+migrationTable+" TO "+db+"."+QuoteIdent(table)+s.OnCluster()); err != nil {
		return fmt.Errorf("renaming the seed-style table to %s: %w", backup, err)
	}
	return nil
}

func countRows(ctx context.Context, c *Client, db, table string) (uint64, error) {
	rows, err := QueryRows[struct {
		N uint64 `json:"n"`
	}](ctx, c, Query{SQL: "SELECT count() AS n FROM " + QuoteIdent(db) + "." + QuoteIdent(table)})
	if err != nil {
		return 0, fmt.Errorf("counting the rows of %s.%s: %w", db, table, err)
	}
	if len(rows) != 1 {
		return 0, fmt.Errorf("counting the rows of %s.%s: %d answers", db, table, len(rows))
	}
	return rows[0].N, nil
}

// execWithID runs sql under the query id id (system.processes shows it).
func execWithID(ctx context.Context, c *Client, sql, id string) error {
	body, err := c.do(ctx, sql, url.Values{"query_id": {id}})
	if err != nil {
		return err
	}
	return body.Close()
}

func queryRunning(ctx context.Context, c *Client, id string) (bool, error) {
	rows, err := QueryRows[struct {
		N int `json:"n"`
	}](ctx, c, Query{SQL: "SELECT count() AS n FROM system.processes WHERE query_id = {id:String}", Params: map[string]string{"id": id}})
	if err != nil {
		return false, fmt.Errorf("looking for the running query %q: %w", id, err)
	}
	return len(rows) == 1 && rows[0].N > 0, nil
}

// migrationDecision is what apply does about a seed-style logs.
type migrationDecision struct {
	// migrate: logs has the seed's definition and may be migrated.
	migrate bool
	// blocked says why a seed-style logs is not migrated ("" when it is, or is not seed-style).
	blocked string
	// finishBackup: logs has the DDL's definition and logs_migration is the seed-style table an
	// interrupted migration exchanged but did not rename.
	finishBackup bool
}

// decideMigration looks at logs and its neighbours: a seed-style logs migrates when the Kafka table matches
// (or only its credentials changed: rotate), logs_mv is the seed's or the DDL's or absent, logs_errors_mv
// matches or is absent, and no cluster is named (the copy, an INSERT SELECT, would run on one server only).
func decideMigration(ctx context.Context, c *Client, s Schema, objs map[string]*object, rotate, dbExists bool) (migrationDecision, error) {
	var d migrationDecision
	if !dbExists {
		return d, nil
	}
	logs := objs["logs"]
	leftover, leftoverExists, err := storedCreate(ctx, c, s.Database, migrationTable)
	if err != nil {
		return d, err
	}
	if logs.exists && logs.same {
		if leftoverExists {
			norm, err := normalize(ctx, c, leftover)
			if err != nil {
				return d, fmt.Errorf("normalizing the stored definition of %s.%s: %w", s.Database, migrationTable, err)
			}
			seedLogs := strings.Replace(canonicalEngine(norm), "."+migrationTable+" ", ".logs ", 1)
			if d.finishBackup, err = isSeed(ctx, c, s, "logs", seedLogs); err != nil {
				return d, err
			}
		}
		return d, nil
	}
	if !logs.exists {
		return d, nil
	}
	seed, err := isSeed(ctx, c, s, "logs", logs.have)
	if err != nil || !seed {
		return d, err
	}
	queue, mv, emv := objs["logs_queue"], objs["logs_mv"], objs["logs_errors_mv"]
	switch {
	case s.Cluster != "":
		d.blocked = "with ON CLUSTER the copy would run on one server only; migrate each server's logs by hand (internal/clickhouse/README.md)"
	case queue.exists && !queue.same && !rotate:
		d.blocked = s.Database + ".logs_queue differs from the DDL"
	case emv.exists && !emv.same:
		d.blocked = s.Database + ".logs_errors_mv differs from the DDL"
	case mv.exists && !mv.same:
		seedMV, err := isSeed(ctx, c, s, "logs_mv", mv.have)
		if err != nil {
			return d, err
		}
		if !seedMV {
			d.blocked = s.Database + ".logs_mv differs from the DDL and from the seed's"
		}
	}
	d.migrate = d.blocked == ""
	return d, nil
}
