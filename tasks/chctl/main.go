// Command chctl reaches the ClickHouse side of the pipeline from a shell: it runs the bootstrap (the same
// handler the bootstrap Lambda runs, Kafka credentials read from the MWAA_Secrets secret into a named
// collection), runs a query, prints the three example queries, reports the Kafka table's consumers, and
// counts the copies of events in logs that re-consumed messages left, and checks that a range of eventIds is in
// logs exactly once (make demo's reconciliation of its own run).
//
//	chctl bootstrap  [--url U] [--user U] [--database D] [--secret-name N] [--brokers B] [--topic T]
//	                 [--group G] [--num-consumers N] [--ca-file F | --ca-location P] [--cluster C] [--dry-run]
//	chctl query      [--url U] [--user U] [--database D] [--format F] 'SQL; SQL...' | -
//	chctl queries    [--url U] [--user U] [--database D]
//	chctl consumers  [--url U] [--user U] [--database D] [--stale-after D]
//	chctl duplicates [--url U] [--user U] [--database D] [--since T] [--until T] [--top N] [--json]
//	chctl reconcile  [--url U] [--user U] [--database D] --first ID --last ID
//
// The ClickHouse password comes from CLICKHOUSE_PASSWORD only (never a flag, so it stays out of ps); the
// Kafka credentials only from the secret (Secrets Manager, or the emulator AWS_ENDPOINT_URL_SECRETSMANAGER
// names). Defaults come from the local stack's variables: CLICKHOUSE_URL, CLICKHOUSE_USER, KAFKA_CA_FILE.
// Without CLICKHOUSE_PASSWORD, a command that talks to the local stack's ClickHouse (the URL in the stack's
// env file, .cache/stack/stack.env or STACK_ENV) takes the password from that file, so that
// `bin/chctl query 'SQL'` works from the repository without sourcing it first.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "chctl:", err)
	}
	os.Exit(flagenv.ExitCode(err))
}

const usage = "usage: chctl bootstrap|query|queries|consumers|duplicates|reconcile [flags] (chctl CMD -h for the flags)"

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return fmt.Errorf("%w: %s", flagenv.ErrUsage, usage)
	}
	// parse parses a command's flags: help to stdout, mistakes to stderr (see flagenv).
	parse := func(fs *flag.FlagSet, args []string) error { return flagenv.Parse(fs, args, "", nil, stdout, stderr) }
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return flag.ErrHelp
	case "bootstrap":
		return bootstrap(ctx, args[1:], stdout, parse)
	case "query":
		return query(ctx, args[1:], stdout, parse)
	case "queries":
		return queries(ctx, args[1:], stdout, parse)
	case "consumers":
		return consumers(ctx, args[1:], stdout, parse)
	case "duplicates":
		return duplicates(ctx, args[1:], stdout, parse)
	case "reconcile":
		return reconcile(ctx, args[1:], stdout, parse)
	default:
		return fmt.Errorf("%w: unknown command %q; %s", flagenv.ErrUsage, args[0], usage)
	}
}

// parseFunc parses a command's flag set.
type parseFunc func(fs *flag.FlagSet, args []string) error

type conn struct {
	url, user, database string
	timeout             time.Duration
}

func connFlags(fs *flag.FlagSet) *conn {
	c := &conn{}
	fs.StringVar(&c.url, "url", envOr("CLICKHOUSE_URL", "http://127.0.0.1:18123"), "ClickHouse HTTP(S) endpoint (CLICKHOUSE_URL)")
	fs.StringVar(&c.user, "user", envOr("CLICKHOUSE_USER", "default"), "ClickHouse user (CLICKHOUSE_USER); the password comes from CLICKHOUSE_PASSWORD")
	fs.StringVar(&c.database, "database", envOr("CLICKHOUSE_DATABASE", clickhouse.DefaultDatabase), "database (CLICKHOUSE_DATABASE)")
	fs.DurationVar(&c.timeout, "timeout", time.Minute, "bound on the whole command")
	return c
}

func (c *conn) client(db string) (*clickhouse.Client, error) {
	opts := []clickhouse.ClientOption{clickhouse.WithCredentials(c.user, c.password())}
	if db != "" {
		opts = append(opts, clickhouse.WithDatabase(db))
	}
	return clickhouse.NewClient(c.url, opts...)
}

// password is CLICKHOUSE_PASSWORD; unset, and when the connection goes to the local stack's ClickHouse (the
// URL its env file names), the stack's password. It is never sent to another URL than the stack's.
func (c *conn) password() string {
	if p := os.Getenv("CLICKHOUSE_PASSWORD"); p != "" {
		return p
	}
	path := os.Getenv("STACK_ENV")
	if path == "" {
		root, err := stacktest.FindRepoRoot()
		if err != nil {
			return ""
		}
		path = filepath.Join(root, ".cache", "stack", "stack.env")
	}
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	vars, err := stacktest.ParseEnv(f)
	if err != nil || vars["CLICKHOUSE_URL"] != c.url {
		return ""
	}
	return vars["CLICKHOUSE_PASSWORD"]
}

// query runs the statements of one SQL argument (or of stdin for "-") in --database, one after the other,
// and prints each answer as ClickHouse formats it; it stops at the first error.
func query(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl query", flag.ContinueOnError)
	c := connFlags(fs)
	format := fs.String("format", "PrettyCompactMonoBlock", "ClickHouse output format of the answers (a statement's own FORMAT wins)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: chctl query [flags] 'SQL' (or - to read the SQL from stdin); statements separated by ;")
		fs.PrintDefaults()
	}
	var script string
	if n := len(args); n > 0 && (args[n-1] == "-" || !strings.HasPrefix(args[n-1], "-")) {
		script, args = args[n-1], args[:n-1]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if script == "-" {
		b, err := io.ReadAll(os.Stdin)
		if err != nil {
			return fmt.Errorf("reading the SQL from stdin: %w", err)
		}
		script = string(b)
	}
	stmts := clickhouse.SplitStatements(script)
	if len(stmts) == 0 {
		return fmt.Errorf("%w: no SQL given (chctl query [flags] 'SQL', the SQL last)", flagenv.ErrUsage)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(c.database)
	if err != nil {
		return err
	}
	for i, s := range stmts {
		if err := cl.Copy(ctx, stdout, s, *format); err != nil {
			return fmt.Errorf("statement %d of %d: %w", i+1, len(stmts), err)
		}
	}
	return nil
}

func bootstrap(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl bootstrap", flag.ContinueOnError)
	c := connFlags(fs)
	cfg := clickhouse.BootstrapConfig{Schema: clickhouse.NewSchema("")}
	s := &cfg.Schema
	fs.StringVar(&cfg.KafkaSecret, "secret-name", envOr("SECRET_NAME", readerspec.SecretName), "secret with the Kafka credentials and bootstrap servers (SECRET_NAME)")
	fs.StringVar(&s.Brokers, "brokers", "", "Kafka broker list for logs_queue (default: the secret's KAFKA_BOOTSTRAP_SERVER)")
	fs.StringVar(&s.Topic, "topic", s.Topic, "topic logs_queue consumes")
	fs.StringVar(&s.Group, "group", "", "consumer group of logs_queue (default: "+clickhouse.DefaultGroup+" for the database "+clickhouse.DefaultDatabase+", "+clickhouse.DefaultGroup+"_<database> for any other)")
	fs.IntVar(&s.NumConsumers, "num-consumers", s.NumConsumers, "kafka_num_consumers")
	fs.StringVar(&s.Cluster, "cluster", "", "run the DDL ON CLUSTER this cluster (self-managed clusters)")
	caFile := fs.String("ca-file", os.Getenv("KAFKA_CA_FILE"), "PEM file of the CA that verifies the brokers, sent to ClickHouse inline (KAFKA_CA_FILE); empty: the default trust store")
	fs.StringVar(&s.Auth.CALocation, "ca-location", "", "path of a CA bundle on the ClickHouse server, instead of --ca-file")
	dryRun := fs.Bool("dry-run", false, "compare and report what would be done, changing nothing")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *caFile != "" && s.Auth.CALocation == "" {
		pem, err := os.ReadFile(*caFile)
		if err != nil {
			return fmt.Errorf("reading the CA file: %w", err)
		}
		s.Auth.CAPEM = string(pem)
	}
	s.Database = c.database
	cfg.URL, cfg.User, cfg.Password, cfg.Timeout = c.url, c.user, c.password(), c.timeout
	// No credentials at all (a first run without the stack's env file) is one plain error, as the reader's.
	if err := secrets.CheckCredentials(ctx, cfg.KafkaSecret); err != nil {
		if errors.Is(err, secrets.ErrNoCredentials) {
			return fmt.Errorf("%w; to use the local stack, run `source .cache/stack/stack.env` first (it sets the emulator's endpoint, region and keys)", err)
		}
		return err
	}
	sm, err := clickhouse.NewSecretsManagerClient(ctx)
	if err != nil {
		return err
	}
	// No per-request limit: a migration's copy of a large logs is one long statement; --timeout bounds
	// the whole command.
	resp, err := clickhouse.BootstrapHandler{Config: cfg, Secrets: sm, HTTP: &http.Client{}}.Handle(ctx, clickhouse.BootstrapEvent{DryRun: *dryRun})
	var notOK *clickhouse.BootstrapError
	if errors.As(err, &notOK) {
		// Drift: the report (with the diffs) still goes to stdout; the error (the summary) makes the exit 1.
		resp = notOK.Response
	} else if err != nil {
		return err
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(resp); err != nil {
		return fmt.Errorf("writing result: %w", err)
	}
	return err
}

func queries(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl queries", flag.ContinueOnError)
	c := connFlags(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(c.database)
	if err != nil {
		return err
	}
	levels, err := clickhouse.LevelCounts(ctx, cl)
	if err != nil {
		return err
	}
	sources, err := clickhouse.TopErrorSources(ctx, cl)
	if err != nil {
		return err
	}
	minutes, err := clickhouse.LogsPerMinute(ctx, cl)
	if err != nil {
		return err
	}
	return printSections(stdout, levels, sources, minutes)
}

func printSections(w io.Writer, levels []clickhouse.LevelCount, sources []clickhouse.SourceErrors, minutes []clickhouse.MinuteCount) error {
	h1, r1 := clickhouse.LevelCountsTable(levels)
	h2, r2 := clickhouse.TopErrorSourcesTable(sources)
	h3, r3 := clickhouse.LogsPerMinuteTable(minutes)
	for i, s := range []struct {
		title string
		head  []string
		rows  [][]string
	}{
		{"Logs by level, last hour", h1, r1},
		{"Top error sources", h2, r2},
		{"Logs per minute, last day", h3, r3},
	} {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s (%d rows)\n", s.title, len(s.rows))
		if err := clickhouse.WriteTable(w, s.head, s.rows); err != nil {
			return err
		}
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

func consumers(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl consumers", flag.ContinueOnError)
	c := connFlags(fs)
	stale := fs.Duration("stale-after", 5*time.Minute, "a consumer with no poll for this long, or an exception this recent with no commit since, is stuck")
	asJSON := fs.Bool("json", false, "print JSON instead of a table")
	if err := parse(fs, args); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client("")
	if err != nil {
		return err
	}
	st, err := clickhouse.KafkaStatus(ctx, cl, c.database)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(st); err != nil {
			return fmt.Errorf("writing status: %w", err)
		}
	} else if err := clickhouse.WriteKafkaStatus(stdout, st); err != nil {
		return err
	}
	return st.Check(time.Now(), *stale, clickhouse.Progress{})
}

// duplicates reports raw rows against events in logs for a time range of the events' timestamps. Copies
// are not an error (reads with FINAL count each event once): it exits 0 whatever it finds.
func duplicates(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl duplicates", flag.ContinueOnError)
	c := connFlags(fs)
	since := fs.String("since", "24h", "start of the range (events' timestamp, inclusive): a time (2006-01-02 15:04:05 in UTC, or RFC 3339) or a duration before --until")
	until := fs.String("until", "", "end of the range (exclusive): a time as --since takes it; default now")
	top := fs.Int("top", 10, "list this many eventIds with the most copies")
	asJSON := fs.Bool("json", false, "print JSON instead of text")
	if err := parse(fs, args); err != nil {
		return err
	}
	end := time.Now().UTC()
	if *until != "" {
		t, err := parseTime(*until)
		if err != nil {
			return fmt.Errorf("%w: --until: %w", flagenv.ErrUsage, err)
		}
		end = t
	}
	start, err := parseTime(*since)
	if d, derr := time.ParseDuration(*since); derr == nil {
		start, err = end.Add(-d), nil
	}
	if err != nil {
		return fmt.Errorf("%w: --since: %w", flagenv.ErrUsage, err)
	}
	if !start.Before(end) {
		return fmt.Errorf("%w: --since %s is not before --until %s", flagenv.ErrUsage, start.Format(time.RFC3339), end.Format(time.RFC3339))
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(c.database)
	if err != nil {
		return err
	}
	rep, err := clickhouse.Duplicates(ctx, cl, start, end, *top)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("writing the report: %w", err)
		}
		return nil
	}
	return clickhouse.WriteDuplicates(stdout, c.database, rep)
}

// reconcile checks that logs FINAL holds every eventId from --first to --last exactly once: no gap, no
// duplicate. It prints the figures and then "exact", or fails saying what is missing or extra.
func reconcile(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("chctl reconcile", flag.ContinueOnError)
	c := connFlags(fs)
	first := fs.Uint64("first", 0, "the run's first eventId (required)")
	last := fs.Uint64("last", 0, "the run's last eventId (required)")
	if err := parse(fs, args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["first"] || !set["last"] {
		return fmt.Errorf("%w: chctl reconcile needs --first and --last", flagenv.ErrUsage)
	}
	if *first > *last || *last > 1<<32-1 {
		return fmt.Errorf("%w: --first %d --last %d: want 0 <= first <= last <= 4294967295 (eventId is a UInt32)", flagenv.ErrUsage, *first, *last)
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client(c.database)
	if err != nil {
		return err
	}
	r, err := clickhouse.CheckRange(ctx, cl, uint32(*first), uint32(*last))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%s.logs FINAL, %s\n", c.database, r)
	if err := r.Err(); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "exact: every eventId %d..%d once, no gaps, no duplicates\n", r.First, r.Last)
	return nil
}

// parseTime reads a time in UTC as "2006-01-02 15:04:05" (fractions allowed), "2006-01-02", or RFC 3339.
func parseTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999", time.DateOnly} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a time (2006-01-02 15:04:05, RFC 3339) nor a duration", s)
}
