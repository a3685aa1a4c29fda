package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationChctl runs chctl's bootstrap, dry run and consumers against the local stack as a person
// would (configuration from the stack's variables, credentials from the emulator's MWAA_Secrets), and checks
// that the Kafka password appears in none of what it prints.
func TestIntegrationChctl(t *testing.T) {
	st := stacktest.Load(t)
	st.SetAWSEnv(t)
	for _, k := range []string{"CLICKHOUSE_URL", "CLICKHOUSE_USER", "CLICKHOUSE_PASSWORD", "KAFKA_CA_FILE", "SECRET_NAME"} {
		t.Setenv(k, st.Get(t, k))
	}
	password := st.Get(t, "KAFKA_SASL_PASSWORD")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := clickhouse.NewClient(st.Get(t, "CLICKHOUSE_URL"), clickhouse.WithCredentials(st.Get(t, "CLICKHOUSE_USER"), st.Get(t, "CLICKHOUSE_PASSWORD")))
	if err != nil {
		t.Fatal(err)
	}
	db := fmt.Sprintf("it_chctl_%d", time.Now().UnixNano())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.Exec(ctx, "DROP DATABASE IF EXISTS "+db+" SYNC"); err != nil {
			t.Errorf("dropping %s: %v", db, err)
		}
		if err := c.Exec(ctx, "DROP NAMED COLLECTION IF EXISTS "+db+"_kafka"); err != nil {
			t.Errorf("dropping %s_kafka: %v", db, err)
		}
	})
	topic := kafkatest.UniqueTopic("it_chctl")
	kafkatest.CreateTopic(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, 1)

	var printed []string
	chctl := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(ctx, args, &out, &out)
		printed = append(printed, out.String(), fmt.Sprint(err))
		return out.String(), err
	}
	decode := func(out string) clickhouse.BootstrapResponse {
		t.Helper()
		var r clickhouse.BootstrapResponse
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("decoding chctl's output %q: %v", out, err)
		}
		return r
	}
	base := []string{"--database", db, "--topic", topic, "--group", topic}

	out, err := chctl(append([]string{"bootstrap"}, base...)...)
	if r := decode(out); err != nil || !r.OK || len(r.Created) != 7 {
		t.Fatalf("chctl bootstrap = %s, %v; want 7 objects created", out, err)
	}
	out, err = chctl(append([]string{"bootstrap", "--dry-run"}, base...)...)
	if r := decode(out); err != nil || !r.DryRun || len(r.Kept) != 7 {
		t.Fatalf("chctl bootstrap --dry-run = %s, %v; want 7 objects kept", out, err)
	}
	// The consumer joins within seconds; then chctl consumers reports it and exits 0.
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, err = chctl("consumers", "--database", db)
		if err == nil && strings.Contains(out, topic+"/0@") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chctl consumers = %s, %v; want the consumer holding %s/0", out, err, topic)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(out, "logs_errors holds 0 row(s)") {
		t.Errorf("chctl consumers = %s, want the logs_errors count", out)
	}
	// A drifted table: not ok, the diff, a non-zero exit.
	if err := c.Exec(ctx, "ALTER TABLE "+db+".logs MODIFY SETTING merge_with_ttl_timeout = 3600"); err != nil {
		t.Fatal(err)
	}
	out, err = chctl(append([]string{"bootstrap"}, base...)...)
	if r := decode(out); !errors.Is(err, clickhouse.ErrDrift) || r.OK || len(r.Diffs) != 1 || !strings.Contains(r.Diffs[0].Diff, "merge_with_ttl_timeout = 3600") {
		t.Errorf("chctl bootstrap on a drifted table = %s, %v; want ErrDrift and the settings diff", out, err)
	}
	// Duplicates: copies of half the rows (the same eventId, coordinates and content, as a re-consumed
	// message leaves them), kept from merging until counted.
	var msgs [][]byte
	for i := 1; i <= 40; i++ {
		msgs = append(msgs, []byte(fmt.Sprintf(`{"eventId":%d,"level":"Info","source":"s","timestamp":"%s","computer":"c","user":"u","message":"m"}`,
			i, time.Now().UTC().Add(-time.Duration(i)*time.Second).Format("2006-01-02T15:04:05.000000Z"))))
	}
	kafkatest.Produce(t, st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP"), topic, msgs)
	for n := 0; n < 40; {
		if time.Now().After(deadline.Add(30 * time.Second)) {
			t.Fatalf("%d of 40 rows arrived in %s.logs", n, db)
		}
		time.Sleep(200 * time.Millisecond)
		rows, err := clickhouse.QueryRows[struct {
			N int `json:"n"`
		}](ctx, c, clickhouse.Query{SQL: "SELECT count() AS n FROM " + db + ".logs"})
		if err != nil || len(rows) != 1 {
			t.Fatalf("counting rows: %v", err)
		}
		n = rows[0].N
	}
	for _, q := range []string{"SYSTEM STOP MERGES " + db + ".logs",
		"INSERT INTO " + db + ".logs (eventId, level, source, timestamp, computer, user, message, kafka_partition, kafka_offset, kafka_key) " +
			"SELECT eventId, level, source, timestamp, computer, user, message, kafka_partition, kafka_offset, kafka_key FROM " + db + ".logs WHERE eventId % 2 = 0"} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	out, err = chctl("duplicates", "--database", db, "--since", "1h", "--top", "3")
	for _, want := range []string{db + ".logs, events from ", "rows (SELECT count() FROM logs)                          60",
		"events (SELECT count() FROM logs FINAL)                  40", "copies (re-consumed rows not merged away yet)            20",
		"eventIds with copies                                     20", "eventId  rows  events\n-------  ----  ------\n      2     2       1\n"} {
		if err != nil || !strings.Contains(out, want) {
			t.Errorf("chctl duplicates = %s, %v; want %q", out, err, want)
		}
	}
	out, err = chctl("duplicates", "--database", db, "--since", time.Now().UTC().Add(-time.Hour).Format(time.DateTime), "--json")
	var rep clickhouse.DuplicateReport
	if jerr := json.Unmarshal([]byte(out), &rep); err != nil || jerr != nil || rep.Rows != 60 || rep.Events != 40 || rep.Copies != 20 || len(rep.Top) != 10 {
		t.Errorf("chctl duplicates --json = %s, %v; want 60 rows, 40 events, 20 copies, ten eventIds listed", out, err)
	}
	if _, err := chctl("duplicates", "--database", db, "--since", "yesterday"); !errors.Is(err, flagenv.ErrUsage) {
		t.Errorf("chctl duplicates --since yesterday: err = %v, want a usage error", err)
	}

	// A bad flag, a missing database.
	_, err = chctl("consumers", "--database", "no_such_db_"+db)
	if err == nil {
		t.Error("chctl consumers on a missing database succeeded")
	}
	for i, p := range printed {
		if strings.Contains(p, password) {
			t.Errorf("chctl output %d carries the Kafka password", i)
		}
	}
}

// TestReconcileUsage: chctl reconcile needs both ends of a range that fits eventId (a UInt32) and is in order;
// a mistake is a usage error (exit 2) before any connection.
func TestReconcileUsage(t *testing.T) {
	for _, args := range [][]string{
		{"reconcile"},
		{"reconcile", "--first", "1"},
		{"reconcile", "--last", "1"},
		{"reconcile", "--first", "5", "--last", "4"},
		{"reconcile", "--first", "1", "--last", "4294967296"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), append(args, "--url", "http://127.0.0.1:1"), &stdout, &stderr)
		if !errors.Is(err, flagenv.ErrUsage) {
			t.Errorf("chctl %v: %v, want a usage error", args, err)
		}
	}
}

// TestBootstrapWithoutAWSConfig: chctl bootstrap in an environment with no AWS configuration fails at once
// with one plain error that says what is missing and how to use the local stack, without the SDK's
// instance-metadata noise (the metadata service is a loopback server answering 403, as off EC2).
func TestBootstrapWithoutAWSConfig(t *testing.T) {
	imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "Forbidden", http.StatusForbidden)
	}))
	defer imds.Close()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY", "AWS_PROFILE",
		"AWS_DEFAULT_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION",
		"AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL_SECRETSMANAGER", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "AWS_ENDPOINT_URL",
		"KAFKA_CA_FILE"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", t.TempDir())
	t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.URL)
	var stdout, stderr bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"bootstrap", "--dry-run", "--url", "http://127.0.0.1:1"}, &stdout, &stderr)
	if !errors.Is(err, secrets.ErrNoCredentials) {
		t.Fatalf("chctl bootstrap with no AWS configuration: %v, want ErrNoCredentials", err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("it took %v to fail, want at once", took)
	}
	for _, want := range []string{"reading secret MWAA_Secrets: no AWS credentials configured", "source .cache/stack/stack.env"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "IMDS") || stdout.Len()+stderr.Len() > 0 {
		t.Errorf("error %q, stdout %q, stderr %q: want one plain error and nothing printed", err, &stdout, &stderr)
	}
}
