// Package clickhouse holds the ClickHouse side of the pipeline: the DDL as embedded files (database, the logs
// ReplacingMergeTree table, the logs_queue Kafka engine table, the logs_mv materialized view, plus logs_errors
// and logs_errors_mv for messages that do not parse), an idempotent applier that talks to ClickHouse's
// HTTP(S) interface and puts the Kafka secret's broker list and credentials into a named collection (never
// into the server's configuration files), the consumer status of the Kafka table, and the three example
// queries.
package clickhouse

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"
	"text/template"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// Defaults of Schema: the names the deployment uses (the reader produces to DefaultTopic).
const (
	DefaultDatabase     = "KafkaEngine"
	DefaultTopic        = readerspec.Topic
	DefaultGroup        = "logs_consumer"
	DefaultNumConsumers = 1
)

//go:embed ddl/*.sql
var ddlFiles embed.FS

// Schema parameterizes the DDL. The zero value is not valid; start from NewSchema.
type Schema struct {
	// Database holds every object. Default KafkaEngine.
	Database string
	// Brokers is the Kafka engine's broker list (host:port, comma separated). Required: it is the
	// deployment's bootstrap server, which the secret also holds.
	Brokers string
	// Topic is the topic logs_queue consumes. Default readerspec.Topic.
	Topic string
	// Group is the consumer group of logs_queue. Default (empty): DefaultGroupFor(Database), a group of the
	// database's own; see ConsumerGroup.
	Group string
	// NumConsumers is kafka_num_consumers: consumers of this table on one server, useful up to the topic's
	// partition count. Default 1.
	NumConsumers int
	// Cluster, when set, runs every statement ON CLUSTER (a self-managed cluster without a Replicated
	// database): each server gets the objects, and its own consumers in the same group.
	Cluster string
	// Auth is how logs_queue authenticates (the named collection Collection()). Statements need only its
	// Source and CA (for the comment); Apply needs all of it.
	Auth KafkaAuth
}

// Collection names the named collection that holds the Kafka credentials: <database>_kafka. Named
// collections are server-wide, so the name carries the database.
func (s Schema) Collection() string { return s.Database + "_kafka" }

// CredentialsComment is logs_queue's comment: which credentials it was created with (never the password).
func (s Schema) CredentialsComment() string { return s.connectionMarker() }

// OnCluster is the ON CLUSTER clause, or "".
func (s Schema) OnCluster() string {
	if s.Cluster == "" {
		return ""
	}
	return " ON CLUSTER " + QuoteIdent(s.Cluster)
}

// NewSchema returns a Schema with the defaults and the given broker list.
func NewSchema(brokers string) Schema {
	return Schema{
		Database:     DefaultDatabase,
		Brokers:      brokers,
		Topic:        DefaultTopic,
		NumConsumers: DefaultNumConsumers,
	}
}

// Validate reports the first field that cannot go into the DDL.
func (s Schema) Validate() error {
	switch {
	case s.Database == "":
		return fmt.Errorf("database: %w", ErrEmpty)
	case s.Brokers == "":
		return fmt.Errorf("brokers: %w", ErrEmpty)
	case s.Topic == "":
		return fmt.Errorf("topic: %w", ErrEmpty)
	case s.NumConsumers < 1 || s.NumConsumers > 64:
		return fmt.Errorf("num consumers %d: %w", s.NumConsumers, ErrOutOfRange)
	}
	for _, f := range []struct{ name, v string }{{"database", s.Database}, {"brokers", s.Brokers}, {"topic", s.Topic}, {"group", s.Group}, {"cluster", s.Cluster}} {
		if strings.ContainsAny(f.v, "\x00\n\r") {
			return fmt.Errorf("%s %q: %w", f.name, f.v, ErrControlChar)
		}
	}
	return nil
}

// Kind says what a Statement creates.
type Kind string

// The kinds of object the DDL creates.
const (
	KindDatabase Kind = "database"
	KindTable    Kind = "table"
	KindView     Kind = "view"
)

// Statement is one CREATE of the DDL.
type Statement struct {
	// Name is the object's name: the database itself, or database.table.
	Name string
	// Table is the bare table name (empty for the database).
	Table string
	Kind  Kind
	// SQL is the statement to run (with ON CLUSTER when Schema.Cluster is set).
	SQL string
	// Compare is the statement as the server stores it (no ON CLUSTER), which Apply compares with.
	Compare string
}

// Statements renders the DDL in the order it must run: the database, the two MergeTree tables, the Kafka
// table, then the views that read it (a Kafka table starts consuming once a view is attached, so the
// targets exist before).
func (s Schema) Statements() ([]Statement, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	names, err := fs.Glob(ddlFiles, "ddl/*.sql")
	if err != nil {
		return nil, fmt.Errorf("listing embedded DDL: %w", err)
	}
	sort.Strings(names)
	out := make([]Statement, 0, len(names))
	for _, n := range names {
		src, err := ddlFiles.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", n, err)
		}
		t, err := template.New(path.Base(n)).Funcs(template.FuncMap{"ident": QuoteIdent, "str": QuoteString}).Parse(string(src))
		if err != nil {
			return nil, fmt.Errorf("parsing %s: %w", n, err)
		}
		render := func(s Schema) (string, error) {
			var b bytes.Buffer
			if err := t.Execute(&b, s); err != nil {
				return "", fmt.Errorf("rendering %s: %w", n, err)
			}
			return strings.TrimSpace(b.String()), nil
		}
		var st Statement
		if st.SQL, err = render(s); err != nil {
			return nil, err
		}
		local := s
		local.Cluster = ""
		if st.Compare, err = render(local); err != nil {
			return nil, err
		}
		base := strings.TrimSuffix(path.Base(n), ".sql")
		_, table, _ := strings.Cut(base, "_")
		switch {
		case table == "database":
			st.Kind, st.Name = KindDatabase, s.Database
		case strings.HasSuffix(table, "_mv"):
			st.Kind, st.Table, st.Name = KindView, table, s.Database+"."+table
		default:
			st.Kind, st.Table, st.Name = KindTable, table, s.Database+"."+table
		}
		out = append(out, st)
	}
	return out, nil
}

// QuoteIdent quotes a ClickHouse identifier with backticks.
func QuoteIdent(s string) string {
	r := strings.NewReplacer(`\`, `\\`, "`", "\\`")
	return "`" + r.Replace(s) + "`"
}

// QuoteString quotes a ClickHouse string literal.
func QuoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
