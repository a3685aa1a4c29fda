package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// sqlBlock is a fenced ```sql block of a Markdown file, indented or not.
var sqlBlock = regexp.MustCompile("(?ms)^[ \t]*```sql\n(.*?)^[ \t]*```")

// readmesWithSQL are the documents whose SQL examples a reader copies into `chctl query`.
var readmesWithSQL = []string{"README.md", "internal/clickhouse/README.md"}

// TestIntegrationReadmeSQL runs every SQL block of the READMEs with chctl query, as written, in a freshly
// bootstrapped database (the same objects KafkaEngine holds), so an example that names a table wrongly or no
// longer parses fails here.
func TestIntegrationReadmeSQL(t *testing.T) {
	st := stacktest.Load(t)
	st.SetAWSEnv(t)
	for _, k := range []string{"CLICKHOUSE_URL", "CLICKHOUSE_USER", "KAFKA_CA_FILE", "SECRET_NAME"} {
		t.Setenv(k, st.Get(t, k))
	}
	// The password comes from the stack's env file, as for a user who did not source it.
	t.Setenv("CLICKHOUSE_PASSWORD", "")
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	db := fmt.Sprintf("it_readme_%d", time.Now().UnixNano())
	c, err := clickhouse.NewClient(st.Get(t, "CLICKHOUSE_URL"), clickhouse.WithCredentials(st.Get(t, "CLICKHOUSE_USER"), st.Get(t, "CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for _, q := range []string{"DROP DATABASE IF EXISTS " + db + " SYNC", "DROP NAMED COLLECTION IF EXISTS " + db + "_kafka"} {
			if err := c.Exec(ctx, q); err != nil {
				t.Errorf("%s: %v", q, err)
			}
		}
	})
	topic := kafkatest.UniqueTopic("it_readme")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 1)
	var out bytes.Buffer
	if err := run(ctx, []string{"bootstrap", "--database", db, "--topic", topic, "--group", topic}, &out, &out); err != nil {
		t.Fatalf("chctl bootstrap: %v: %s", err, out.String())
	}
	// A few rows, so that the examples return something to look at.
	var msgs [][]byte
	for i := 1; i <= 5; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf(`{"eventId":%d,"level":"Error","source":"s%d","timestamp":"%s","computer":"c","user":"u","message":"m"}`,
			i, i%2, time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"))))
	}
	kafkatest.Produce(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, msgs)
	for {
		rows, err := clickhouse.QueryRows[struct {
			N int `json:"n"`
		}](ctx, c, clickhouse.Query{SQL: "SELECT count() AS n FROM " + db + ".logs"})
		if err != nil {
			t.Fatalf("counting rows: %v", err)
		}
		if rows[0].N == len(msgs) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d of %d rows arrived in %s.logs", rows[0].N, len(msgs), db)
		}
		time.Sleep(200 * time.Millisecond)
	}

	root := stacktest.RepoRoot(t)
	blocks := 0
	for _, doc := range readmesWithSQL {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range sqlBlock.FindAllStringSubmatch(string(b), -1) {
			blocks++
			var out bytes.Buffer
			if err := run(ctx, []string{"query", "--database", db, m[1]}, &out, &out); err != nil {
				t.Errorf("%s: chctl query %q: %v\n%s", doc, m[1], err, out.String())
			}
			t.Logf("%s: %d statement(s) printed:\n%s", doc, len(clickhouse.SplitStatements(m[1])), out.String())
		}
	}
	if blocks < 2 {
		t.Fatalf("found %d SQL blocks in %v, want the examples of both", blocks, readmesWithSQL)
	}
}
