// Command chctl reaches the ClickHouse side of the pipeline without AWS: it applies the DDL (the same
// applier the bootstrap Lambda runs), prints the three example queries, and writes the <kafka> section of
// config.xml from the Kafka credentials.
//
//	chctl bootstrap   [--url U] [--user U] [--database D] [--brokers B] [--topic T] [--group G]
//	chctl queries     [--url U] [--user U] [--database D]
//	chctl config-xml  [--credentials env|secretsmanager] [--secret-name N] [--region R] [--ca-file F] [--out F]
//
// The ClickHouse password comes from CLICKHOUSE_PASSWORD only (never a flag, so it stays out of ps).
// Defaults come from the local stack's variables: CLICKHOUSE_URL, CLICKHOUSE_USER, KAFKA_BOOTSTRAP_SERVER.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
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

const usage = "usage: chctl bootstrap|queries|config-xml [flags] (chctl CMD -h for the flags)"

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
	case "queries":
		return queries(ctx, args[1:], stdout, parse)
	case "config-xml":
		return configXML(ctx, args[1:], stdout, parse)
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
	opts := []clickhouse.ClientOption{clickhouse.WithCredentials(c.user, os.Getenv("CLICKHOUSE_PASSWORD"))}
	if db != "" {
		opts = append(opts, clickhouse.WithDatabase(db))
	}
	return clickhouse.NewClient(c.url, opts...)
}

func bootstrap(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("bootstrap", flag.ContinueOnError)
	c := connFlags(fs)
	s := clickhouse.NewSchema(envOr("KAFKA_BOOTSTRAP_SERVER", ""))
	fs.StringVar(&s.Brokers, "brokers", s.Brokers, "Kafka broker list for logs_queue (KAFKA_BOOTSTRAP_SERVER)")
	fs.StringVar(&s.Topic, "topic", s.Topic, "topic logs_queue consumes")
	fs.StringVar(&s.Group, "group", s.Group, "consumer group of logs_queue")
	fs.IntVar(&s.NumConsumers, "num-consumers", s.NumConsumers, "kafka_num_consumers")
	if err := parse(fs, args); err != nil {
		return err
	}
	s.Database = c.database
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl, err := c.client("")
	if err != nil {
		return err
	}
	res, applyErr := clickhouse.Apply(ctx, cl, s)
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(res); err != nil {
		return fmt.Errorf("writing result: %w", err)
	}
	return applyErr
}

func queries(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("queries", flag.ContinueOnError)
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

func configXML(ctx context.Context, args []string, stdout io.Writer, parse parseFunc) error {
	fs := flag.NewFlagSet("config-xml", flag.ContinueOnError)
	source := secrets.SourceEnv
	fs.Var(&source, "credentials", "where the Kafka credentials come from: env (KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD) or secretsmanager")
	secretName := fs.String("secret-name", secrets.DefaultSecretName, "Secrets Manager secret (with --credentials secretsmanager)")
	region := fs.String("region", "", "AWS region (default: the SDK's, else us-east-1)")
	var o clickhouse.KafkaXMLOptions
	fs.StringVar(&o.CAFile, "ca-file", "", "CA PEM that verifies the brokers (ssl_ca_location); empty uses the default trust store")
	fs.StringVar(&o.SecurityProtocol, "security-protocol", "sasl_ssl", "security_protocol")
	out := fs.String("out", "", "write to this file (mode 0600) instead of stdout")
	if err := parse(fs, args); err != nil {
		return err
	}
	var k secrets.Kafka
	var err error
	if source == secrets.SourceEnv {
		k, err = secrets.FromEnv(os.LookupEnv)
	} else {
		k, err = secrets.FromSecretsManager(ctx, secrets.Options{SecretName: *secretName, Region: *region,
			Endpoint: os.Getenv(clickhouse.EnvSecretsManagerEndpoint)})
	}
	if err != nil {
		return fmt.Errorf("loading kafka credentials: %w", err)
	}
	b, err := clickhouse.KafkaConfigXML(k, o)
	if err != nil {
		return err
	}
	if *out == "" {
		_, err = stdout.Write(b)
		return err
	}
	return writePrivate(*out, b)
}

// writePrivate writes b to path through a temporary file and a rename, readable by the owner only.
func writePrivate(path string, b []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("renaming %s: %w", tmp, err)
	}
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
