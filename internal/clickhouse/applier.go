package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Result says what Apply did (or, for a dry run, would do) with each object, by name: the database,
// database.table, and "named collection <name>".
type Result struct {
	// DryRun is true when nothing was changed: the lists then say what Apply would do.
	DryRun bool `json:"dryRun"`
	// Created lists the objects Apply created.
	Created []string `json:"created"`
	// Kept lists the objects that existed with the DDL's definition.
	Kept []string `json:"kept"`
	// Updated lists what a credentials rotation changed in place: the named collection (altered), and
	// logs_queue with its two views (dropped and created again; they hold no data, and the consumer group's
	// committed offsets carry over); and what a migration changed: logs (see Migration) and the views it
	// recreated. logs_errors is never touched.
	Updated []string `json:"updated"`
	// Different lists the objects that exist with another definition, and the views Apply did not create
	// because a table they read or write differs. Apply neither keeps such objects silently nor drops them:
	// a person decides (a Kafka table or view dropped at the wrong time loses messages).
	Different []string `json:"different"`
	// Diffs explains each entry of Different.
	Diffs []Difference `json:"diffs,omitempty"`
	// Migration is set when logs had the seed's definition (a MergeTree without Kafka coordinates) and
	// was, or in a dry run would be, migrated to the DDL's; or when a migration's last step (the backup's
	// rename) was left by an interrupted run and is done now.
	Migration *Migration `json:"migration,omitempty"`
}

// Difference explains one entry of Result.Different. No field holds a credential: the Kafka table names its
// named collection, whose values are never read back.
type Difference struct {
	Name string `json:"name"`
	// Reason says why, in words.
	Reason string `json:"reason"`
	// Diff is the unified diff from the DDL's definition (---) to the server's (+++), both formatted by the
	// server after undoing its engine rewrites (see canonicalEngine); empty for a view left uncreated.
	Diff string `json:"diff,omitempty"`
	// Want and Have are the two compared statements on one line; Have is empty for a view left uncreated.
	Want string `json:"want"`
	Have string `json:"have"`
}

// Apply makes the server hold the schema's objects: it creates what is missing, keeps what matches,
// rotates the Kafka credentials in place when they changed, and reports what differs. It returns an error
// wrapping ErrDrift, with the Result filled in, when an object differs. Objects after it are still compared
// or created, except a missing view whose Kafka source or target table differs: creating it would start
// consuming into a definition nobody checked.
//
// An object matches when ClickHouse's own normalization of the stored CREATE (system.tables
// create_table_query) equals that of the DDL's statement, both through formatQuerySingleLine and with the
// engine rewrites of ClickHouse Cloud and replicated setups undone (canonicalEngine): spacing, quoting,
// keyword case and SharedMergeTree/ReplicatedMergeTree do not count, while columns, types, engine, keys
// and settings do.
//
// Rotation: logs_queue's comment names the credentials' version (KafkaAuth.Source). When only that differs,
// Apply alters the named collection and recreates logs_queue and its views (in that order: views dropped,
// Kafka table dropped, collection altered, table and views created), never logs or logs_errors.
//
// Migration: a logs with the seed's definition (MergeTree ORDER BY eventId, no Kafka coordinates) is
// migrated without losing a row, when the other objects match (or are the seed's logs_mv, or rotate) and
// no cluster is named: the views are dropped (the Kafka table stops, its committed offsets stay), a new
// logs is built beside the old one, every row copied and counted, the two exchanged, the old one kept
// under a backup name (Result.Migration), and the views created again. A migration that cannot run is
// reported as drift with the reason.
//
// Apply is idempotent: a second run with the same credentials creates and changes nothing.
func Apply(ctx context.Context, c *Client, s Schema) (Result, error) {
	return apply(ctx, c, s, false)
}

// DryRun compares like Apply and returns what Apply would do, changing nothing.
func DryRun(ctx context.Context, c *Client, s Schema) (Result, error) {
	return apply(ctx, c, s, true)
}

// object is one table or view of the DDL with what the server holds for it.
type object struct {
	st      Statement
	exists  bool
	want    string // canonical single-line DDL (comment removed for logs_queue)
	have    string // canonical single-line stored definition (likewise)
	comment string // the stored comment of logs_queue
	same    bool
}

func apply(ctx context.Context, c *Client, s Schema, dry bool) (Result, error) {
	res := Result{DryRun: dry, Created: []string{}, Kept: []string{}, Updated: []string{}, Different: []string{}}
	if err := s.Auth.Validate(); err != nil {
		return res, err
	}
	stmts, err := s.Statements()
	if err != nil {
		return res, err
	}
	auth := s.Auth
	collName := "named collection " + s.Collection()

	// Look at everything first, so that a dry run and a real run decide alike.
	dbExists, err := databaseExists(ctx, c, s.Database)
	if err != nil {
		return res, err
	}
	collKeys, collExists, err := collectionKeys(ctx, c, s.Collection())
	if err != nil {
		return res, err
	}
	var dbStmt Statement
	objs := map[string]*object{}
	var order []string
	for _, st := range stmts {
		if st.Kind == KindDatabase {
			dbStmt = st
			continue
		}
		o := &object{st: st}
		objs[st.Table] = o
		order = append(order, st.Table)
		if !dbExists {
			continue
		}
		have, exists, err := storedCreate(ctx, c, s.Database, st.Table)
		if err != nil {
			return res, err
		}
		if !exists {
			continue
		}
		o.exists = true
		if o.want, err = normalize(ctx, c, st.Compare); err != nil {
			return res, fmt.Errorf("normalizing the DDL of %s: %w", st.Name, err)
		}
		if o.have, err = normalize(ctx, c, have); err != nil {
			return res, fmt.Errorf("normalizing the stored definition of %s: %w", st.Name, err)
		}
		o.want, o.have = canonicalEngine(o.want), canonicalEngine(o.have)
		if st.Table == "logs_queue" {
			var wantComment string
			o.want, wantComment = splitComment(o.want)
			o.have, o.comment = splitComment(o.have)
			var legacy bool
			o.have, legacy = dropLegacyBrokerList(o.have)
			o.same = o.want == o.have && o.comment == wantComment && !legacy
		} else {
			o.same = o.want == o.have
		}
	}

	// Decide.
	queue := objs["logs_queue"]
	views := []string{"logs_mv", "logs_errors_mv"}
	rotate := queue.exists && !queue.same && queue.want == queue.have
	mig, err := decideMigration(ctx, c, s, objs, rotate, dbExists)
	if err != nil {
		return res, err
	}
	migrateLogs := mig.migrate
	differs := map[string]bool{}
	diff := func(o *object, reason string) error {
		differs[o.st.Table] = true
		res.Different = append(res.Different, o.st.Name)
		d := Difference{Name: o.st.Name, Reason: reason, Want: o.want, Have: o.have}
		if o.exists {
			w, err := formatPretty(ctx, c, o.want)
			if err != nil {
				return err
			}
			h, err := formatPretty(ctx, c, o.have)
			if err != nil {
				return err
			}
			d.Diff = auth.redact(unifiedDiff("ddl "+o.st.Name, "server "+o.st.Name, w, h))
		}
		d.Want, d.Have = auth.redact(d.Want), auth.redact(d.Have)
		res.Diffs = append(res.Diffs, d)
		return nil
	}
	if rotate {
		for _, v := range views {
			if o := objs[v]; o.exists && !o.same && (!migrateLogs || v != "logs_mv") {
				rotate = false
			}
		}
		if !rotate {
			if err := diff(queue, "its credentials changed, but a view over it differs: not recreated"); err != nil {
				return res, err
			}
		}
	}

	exec := func(sql string) error {
		if dry {
			return nil
		}
		return auth.redactErr(c.Exec(ctx, sql))
	}

	// The database.
	if dbExists {
		res.Kept = append(res.Kept, dbStmt.Name)
	} else {
		if err := exec(dbStmt.SQL); err != nil && !IsCode(err, CodeDatabaseAlreadyExists) {
			return res, fmt.Errorf("creating database %s: %w", s.Database, err)
		}
		res.Created = append(res.Created, dbStmt.Name)
	}

	// Rotation and migration first drop what they recreate: the views, then, for a rotation, the Kafka
	// table. The Kafka table is detached while the views go: with one view dropped and the other still
	// there, it would go on consuming into the other alone, whose filter drops what the first one keeps,
	// and commit those messages (good rows lost from logs). Detached, it consumes nothing, its consumers
	// have left the group and the group's committed offsets stay; attached again without views, it
	// consumes nothing either until a view reads it.
	if (rotate || migrateLogs) && !dry {
		if err := dropViewsPaused(ctx, exec, s, queue.exists, views, objs); err != nil {
			return res, err
		}
	}
	if rotate && !dry {
		if err := exec("DROP TABLE " + QuoteIdent(s.Database) + ".logs_queue" + s.OnCluster() + " SYNC"); err != nil {
			return res, fmt.Errorf("dropping %s for the credentials rotation: %w", queue.st.Name, err)
		}
	}
	switch {
	case migrateLogs:
		var existing []string
		for _, v := range views {
			if objs[v].exists {
				existing = append(existing, v)
			}
		}
		plan, err := planMigration(ctx, c, s, queue.exists, existing, time.Now())
		if err != nil {
			return res, err
		}
		res.Migration = plan
		if !dry {
			if err := migrate(ctx, c, s, objs["logs"].st, plan); err != nil {
				return res, auth.redactErr(fmt.Errorf("migrating %s.logs: %w", s.Database, err))
			}
		}
	case mig.finishBackup:
		plan := &Migration{Table: s.Database + ".logs", Backup: s.Database + ".logs_seed_backup_" + time.Now().UTC().Format("20060102150405")}
		plan.Steps = []string{"rename " + s.Database + "." + migrationTable + " (the seed-style table an interrupted migration left) to " + plan.Backup}
		if plan.Rows, err = countRows(ctx, c, s.Database, migrationTable); err != nil {
			return res, err
		}
		res.Migration = plan
		if !dry {
			if err := renameBackup(ctx, c, s, plan.Backup); err != nil {
				return res, err
			}
		}
	}

	for _, name := range order {
		o := objs[name]
		if name == "logs_queue" {
			// The named collection goes right before the table that names it.
			switch {
			case !collExists:
				if err := exec("CREATE NAMED COLLECTION " + QuoteIdent(s.Collection()) + s.OnCluster() + " AS " + s.collectionAssignments()); err != nil {
					return res, fmt.Errorf("creating %s: %w", collName, err)
				}
				res.Created = append(res.Created, collName)
			case rotate || !queue.exists:
				// New credentials, or a Kafka table about to be created: the collection gets the current ones.
				if err := alterCollection(exec, s, collKeys); err != nil {
					return res, fmt.Errorf("updating %s: %w", collName, err)
				}
				res.Updated = append(res.Updated, collName)
			default:
				res.Kept = append(res.Kept, collName)
			}
		}
		switch {
		case differs[name]:
			// Reported already (a rotation that a differing view prevents).
		case migrateLogs && name == "logs":
			res.Updated = append(res.Updated, o.st.Name)
		case rotate && name == "logs_queue", (rotate || migrateLogs) && o.st.Kind == KindView && o.exists:
			if err := exec(o.st.SQL); err != nil {
				return res, fmt.Errorf("creating %s again: %w", o.st.Name, err)
			}
			res.Updated = append(res.Updated, o.st.Name)
		case o.exists && o.same:
			res.Kept = append(res.Kept, o.st.Name)
		case o.exists:
			reason := "the stored definition differs from the DDL"
			if name == "logs" && mig.blocked != "" {
				reason = "the seed's logs (a MergeTree without Kafka coordinates), not migrated: " + mig.blocked
			}
			if err := diff(o, reason); err != nil {
				return res, err
			}
		case o.st.Kind == KindView && viewDependency(name, differs) != "":
			differs[name] = true
			res.Different = append(res.Different, o.st.Name)
			res.Diffs = append(res.Diffs, Difference{Name: o.st.Name, Want: auth.redact(o.st.Compare),
				Reason: "not created: it depends on " + s.Database + "." + viewDependency(name, differs) + ", whose definition differs"})
		default:
			if err := exec(o.st.SQL); err != nil {
				return res, fmt.Errorf("creating %s: %w", o.st.Name, err)
			}
			res.Created = append(res.Created, o.st.Name)
		}
	}
	if len(res.Different) > 0 {
		return res, fmt.Errorf("%s: %w", strings.Join(res.Different, ", "), ErrDrift)
	}
	return res, nil
}

// alterCollection sets the collection's values to the current credentials and deletes the kafka. keys the
// credentials no longer have (a CA given another way).
func alterCollection(exec func(string) error, s Schema, have []string) error {
	name := QuoteIdent(s.Collection()) + s.OnCluster()
	if err := exec("ALTER NAMED COLLECTION " + name + " SET " + s.collectionAssignments()); err != nil {
		return err
	}
	want := s.collectionValues()
	var gone []string
	for _, k := range have {
		if _, ok := want[k]; !ok && strings.HasPrefix(k, "kafka.") {
			gone = append(gone, QuoteIdent(k))
		}
	}
	if len(gone) == 0 {
		return nil
	}
	sort.Strings(gone)
	return exec("ALTER NAMED COLLECTION " + name + " DELETE " + strings.Join(gone, ", "))
}

// viewDependency returns the table a view reads (logs_queue) or writes (its name without _mv) when that
// table differs, else "".
func viewDependency(view string, differs map[string]bool) string {
	for _, t := range []string{"logs_queue", strings.TrimSuffix(view, "_mv")} {
		if differs[t] {
			return t
		}
	}
	return ""
}

func databaseExists(ctx context.Context, c *Client, db string) (bool, error) {
	rows, err := QueryRows[struct {
		N int `json:"n"`
	}](ctx, c, Query{SQL: "SELECT count() AS n FROM system.databases WHERE name = {db:String}", Params: map[string]string{"db": db}})
	if err != nil {
		return false, fmt.Errorf("looking up database %s: %w", db, err)
	}
	return len(rows) == 1 && rows[0].N > 0, nil
}

// collectionKeys returns the keys of a named collection (system.named_collections shows its values only as
// [HIDDEN] to users without show_named_collections_secrets; only the keys are read).
func collectionKeys(ctx context.Context, c *Client, name string) ([]string, bool, error) {
	rows, err := QueryRows[struct {
		Keys []string `json:"keys"`
	}](ctx, c, Query{SQL: "SELECT mapKeys(collection) AS keys FROM system.named_collections WHERE name = {n:String}",
		Params: map[string]string{"n": name}})
	if err != nil {
		return nil, false, fmt.Errorf("looking up named collection %s: %w", name, err)
	}
	if len(rows) == 0 {
		return nil, false, nil
	}
	return rows[0].Keys, true, nil
}

// storedCreate returns the CREATE statement the server holds for db.table.
func storedCreate(ctx context.Context, c *Client, db, table string) (string, bool, error) {
	rows, err := QueryRows[struct {
		Q string `json:"create_table_query"`
	}](ctx, c, Query{SQL: "SELECT create_table_query FROM system.tables WHERE database = {db:String} AND name = {t:String}",
		Params: map[string]string{"db": db, "t": table}})
	if err != nil {
		return "", false, fmt.Errorf("looking up %s.%s: %w", db, table, err)
	}
	if len(rows) == 0 {
		return "", false, nil
	}
	return rows[0].Q, true, nil
}

// normalize asks the server for its single-line formatting of a statement. Only statements without
// credentials go through it (the server does not mask them in formatQuery's result).
func normalize(ctx context.Context, c *Client, sql string) (string, error) {
	return format(ctx, c, "formatQuerySingleLine", sql)
}

// formatPretty asks the server for its multi-line formatting, for diffs a person reads.
func formatPretty(ctx context.Context, c *Client, sql string) (string, error) {
	return format(ctx, c, "formatQuery", sql)
}

func format(ctx context.Context, c *Client, fn, sql string) (string, error) {
	rows, err := QueryRows[struct {
		Q string `json:"q"`
	}](ctx, c, Query{SQL: "SELECT " + fn + "({sql:String}) AS q", Params: map[string]string{"sql": sql}})
	if err != nil {
		return "", fmt.Errorf("%s: %w", fn, err)
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("%s returned %d rows", fn, len(rows))
	}
	return rows[0].Q, nil
}

// dropViewsPaused drops the existing views among views with the Kafka table detached (when it exists), and
// attaches it again, also when a drop fails.
func dropViewsPaused(ctx context.Context, exec func(string) error, s Schema, queueExists bool, views []string, objs map[string]*object) (err error) {
	queue := QuoteIdent(s.Database) + ".logs_queue" + s.OnCluster()
	if queueExists {
		if err := exec("DETACH TABLE " + queue + " SYNC"); err != nil {
			return fmt.Errorf("detaching %s.logs_queue to stop its consumers: %w", s.Database, err)
		}
		defer func() {
			if aerr := exec("ATTACH TABLE " + queue); aerr != nil {
				err = errors.Join(err, fmt.Errorf("attaching %s.logs_queue again: %w", s.Database, aerr))
			}
		}()
	}
	for _, v := range views {
		if objs[v].exists {
			if err := exec("DROP VIEW " + QuoteIdent(s.Database) + "." + QuoteIdent(v) + s.OnCluster() + " SYNC"); err != nil {
				return fmt.Errorf("dropping %s to recreate it: %w", objs[v].st.Name, err)
			}
		}
	}
	return nil
}
