package clickhouse

import (
	"context"
	"fmt"
	"strings"
)

// Result says what Apply did with each object of the DDL, by name (database or database.table).
type Result struct {
	// Created lists the objects Apply created.
	Created []string `json:"created"`
	// Kept lists the objects that existed with the DDL's definition.
	Kept []string `json:"kept"`
	// Different lists the objects that exist with another definition, and the views Apply did not create
	// because a table they read or write differs. Apply neither keeps such objects silently nor drops them:
	// a person decides (a Kafka table or view dropped at the wrong time loses messages).
	Different []string `json:"different"`
	// Diffs explains each entry of Different.
	Diffs []Difference `json:"diffs,omitempty"`
}

// Difference explains one entry of Result.Different.
type Difference struct {
	Name string `json:"name"`
	// Want and Have are the normalized CREATE statements (formatQuerySingleLine of each); Have is empty for a
	// view left uncreated.
	Want string `json:"want"`
	Have string `json:"have"`
	// Reason says why, in words.
	Reason string `json:"reason"`
}

// Apply makes the server hold the schema's objects: it creates what is missing, keeps what matches, and
// reports what differs. It returns an error wrapping ErrDrift, with the Result filled in, when an object
// differs. Objects after it are still compared or created, except a missing view whose Kafka source or
// target table differs: creating it would start consuming into a definition nobody checked.
//
// An object matches when ClickHouse's own normalization of the stored CREATE (system.tables
// create_table_query) equals that of the DDL's statement: both go through formatQuerySingleLine, so
// spacing, quoting and keyword case do not count, while columns, types, engine, keys and settings do.
// Apply is idempotent: a second run creates nothing.
func Apply(ctx context.Context, c *Client, s Schema) (Result, error) {
	res := Result{Created: []string{}, Kept: []string{}, Different: []string{}}
	differs := map[string]bool{} // tables found different, by bare name
	stmts, err := s.Statements()
	if err != nil {
		return res, err
	}
	for _, st := range stmts {
		switch st.Kind {
		case KindDatabase:
			exists, err := databaseExists(ctx, c, s.Database)
			if err != nil {
				return res, err
			}
			if exists {
				res.Kept = append(res.Kept, st.Name)
				continue
			}
			if err := c.Exec(ctx, st.SQL); err != nil && !IsCode(err, CodeDatabaseAlreadyExists) {
				return res, fmt.Errorf("creating database %s: %w", s.Database, err)
			}
			res.Created = append(res.Created, st.Name)
		default:
			have, exists, err := storedCreate(ctx, c, s.Database, st.Table)
			if err != nil {
				return res, err
			}
			if !exists {
				if st.Kind == KindView {
					if dep := viewDependency(st.Table, differs); dep != "" {
						res.Different = append(res.Different, st.Name)
						res.Diffs = append(res.Diffs, Difference{Name: st.Name, Want: st.SQL,
							Reason: "not created: it depends on " + s.Database + "." + dep + ", whose definition differs"})
						continue
					}
				}
				if err := c.Exec(ctx, st.SQL); err != nil {
					return res, fmt.Errorf("creating %s: %w", st.Name, err)
				}
				res.Created = append(res.Created, st.Name)
				continue
			}
			want, err := normalize(ctx, c, st.SQL)
			if err != nil {
				return res, fmt.Errorf("normalizing the DDL of %s: %w", st.Name, err)
			}
			have, err = normalize(ctx, c, have)
			if err != nil {
				return res, fmt.Errorf("normalizing the stored definition of %s: %w", st.Name, err)
			}
			if want == have {
				res.Kept = append(res.Kept, st.Name)
			} else {
				differs[st.Table] = true
				res.Different = append(res.Different, st.Name)
				res.Diffs = append(res.Diffs, Difference{Name: st.Name, Want: want, Have: have,
					Reason: "the stored definition differs from the DDL"})
			}
		}
	}
	if len(res.Different) > 0 {
		return res, fmt.Errorf("%s: %w", strings.Join(res.Different, ", "), ErrDrift)
	}
	return res, nil
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

// normalize asks the server for its single-line formatting of a statement.
func normalize(ctx context.Context, c *Client, sql string) (string, error) {
	rows, err := QueryRows[struct {
		Q string `json:"q"`
	}](ctx, c, Query{SQL: "SELECT formatQuerySingleLine({sql:String}) AS q", Params: map[string]string{"sql": sql}})
	if err != nil {
		return "", err
	}
	if len(rows) != 1 {
		return "", fmt.Errorf("formatQuerySingleLine returned %d rows", len(rows))
	}
	return rows[0].Q, nil
}
