package clickhouse_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// fakeBroker is a listener the test owns, standing for a broker of an intruder's: it records every byte it
// receives and speaks just enough of the Kafka protocol (ApiVersions, SaslHandshake offering PLAIN) for a
// client on SASL_PLAINTEXT to send its SASL PLAIN credentials, which it records and refuses.
type fakeBroker struct {
	ln net.Listener
	wg sync.WaitGroup

	mu    sync.Mutex
	conns int
	got   bytes.Buffer
}

func startFakeBroker(t *testing.T) *fakeBroker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &fakeBroker{ln: ln}
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b.mu.Lock()
			b.conns++
			b.mu.Unlock()
			b.wg.Add(1)
			go func() {
				defer b.wg.Done()
				defer c.Close()
				b.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		b.wg.Wait()
	})
	return b
}

func (b *fakeBroker) addr() string { return b.ln.Addr().String() }

// seen returns how many connections it accepted and everything it received.
func (b *fakeBroker) seen() (int, string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.conns, b.got.String()
}

func (b *fakeBroker) serve(c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
	for {
		var size int32
		head := make([]byte, 4)
		if _, err := io.ReadFull(c, head); err != nil {
			return
		}
		b.record(head)
		size = int32(binary.BigEndian.Uint32(head))
		if size < 8 || size > 1<<20 {
			// Not a Kafka request (a TLS ClientHello starts 0x16 0x03): keep what follows, answer nothing.
			rest := make([]byte, 4096)
			n, _ := c.Read(rest)
			b.record(rest[:n])
			return
		}
		req := make([]byte, size)
		if _, err := io.ReadFull(c, req); err != nil {
			return
		}
		b.record(req)
		key, version, corr := binary.BigEndian.Uint16(req), binary.BigEndian.Uint16(req[2:]), req[4:8]
		var body []byte
		switch key {
		case 18: // ApiVersions: the three APIs a SASL PLAIN login needs.
			apis := [][3]uint16{{18, 0, 3}, {17, 0, 1}, {36, 0, 1}}
			if version >= 3 { // flexible: compact array, tagged fields
				body = append(body, 0, 0, byte(len(apis)+1))
				for _, a := range apis {
					body = binary.BigEndian.AppendUint16(body, a[0])
					body = binary.BigEndian.AppendUint16(body, a[1])
					body = binary.BigEndian.AppendUint16(body, a[2])
					body = append(body, 0)
				}
				body = append(body, 0, 0, 0, 0, 0)
			} else {
				body = append(body, 0, 0)
				body = binary.BigEndian.AppendUint32(body, uint32(len(apis)))
				for _, a := range apis {
					body = binary.BigEndian.AppendUint16(body, a[0])
					body = binary.BigEndian.AppendUint16(body, a[1])
					body = binary.BigEndian.AppendUint16(body, a[2])
				}
			}
		case 17: // SaslHandshake: PLAIN offered.
			body = append([]byte{0, 0, 0, 0, 0, 1, 0, 5}, "PLAIN"...)
		case 36: // SaslAuthenticate: the credentials are recorded; refused (SASL_AUTHENTICATION_FAILED).
			body = []byte{0, 58, 0xff, 0xff, 0, 0, 0, 0}
			if version >= 1 {
				body = append(body, 0, 0, 0, 0, 0, 0, 0, 0)
			}
		default:
			return
		}
		resp := binary.BigEndian.AppendUint32(nil, uint32(4+len(body)))
		resp = append(append(resp, corr...), body...)
		if _, err := c.Write(resp); err != nil {
			return
		}
	}
}

func (b *fakeBroker) record(p []byte) {
	b.mu.Lock()
	b.got.Write(p)
	b.mu.Unlock()
}

// TestFakeBrokerTakesSASLPlain: the fake broker does receive a SASL PLAIN login from the engine's own Kafka
// client when a table names it with no named collection at all, so its silence below means something.
func TestIntegrationFakeBrokerTakesSASLPlain(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client(t, "")
	db := freshDatabase(t, c, "it_fakebroker")
	fake := startFakeBroker(t)
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".sink (`message` String) ENGINE = Null",
		"CREATE TABLE " + db + ".q (`message` String) ENGINE = Kafka SETTINGS kafka_broker_list = '" + fake.addr() + "', kafka_topic_list = 't', " +
			"kafka_group_name = '" + db + "', kafka_format = 'JSONEachRow', kafka_security_protocol = 'sasl_plaintext', kafka_sasl_mechanism = 'PLAIN', " +
			"kafka_sasl_username = 'probe-user', kafka_sasl_password = 'probe-password'",
		"CREATE MATERIALIZED VIEW " + db + ".mv TO " + db + ".sink AS SELECT message FROM " + db + ".q",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	for {
		if _, got := fake.seen(); strings.Contains(got, "\x00probe-user\x00probe-password") {
			return
		}
		select {
		case <-ctx.Done():
			n, got := fake.seen()
			t.Fatalf("the fake broker got %d connection(s) and %q, never the SASL PLAIN login", n, got)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// TestIntegrationCollectionPinsBrokers: a user allowed to use the named collection creates a Kafka table
// over it that tries to send the collection's credentials to a broker of their own (a listener the test
// owns): the broker list in the table's SETTINGS or the engine's arguments, the SASL exchange downgraded to
// plaintext, other credentials, the collection's keys overridden. Each attempt is either refused by
// ClickHouse, or the table's consumer talks to the collection's brokers (its assignments, or its errors
// naming them) while the listener receives nothing: no connection, so no password.
func TestIntegrationCollectionPinsBrokers(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_pin", 1)
	db, coll := s.Database, clickhouse.QuoteIdent(s.Collection())
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if err := c.Exec(ctx, "CREATE TABLE "+db+".sink (`message` String) ENGINE = Null"); err != nil {
		t.Fatal(err)
	}
	const own = "kafka_sasl_username = 'intruder', kafka_sasl_password = 'intruder-password'"
	attempts := []struct {
		name string
		// engine is what follows the collection's name in ENGINE = Kafka(...); settings the table's own
		// SETTINGS; %s is the intruder's listener.
		engine, settings string
	}{
		{"broker list in SETTINGS", "", "kafka_broker_list = '%s'"},
		{"broker list in SETTINGS, SASL downgraded to plaintext", "", "kafka_broker_list = '%s', kafka_security_protocol = 'sasl_plaintext'"},
		{"broker list and other credentials in SETTINGS, plaintext", "", "kafka_broker_list = '%s', kafka_security_protocol = 'sasl_plaintext', " + own},
		{"broker list as an engine argument, plaintext", ", kafka_broker_list = '%s'", "kafka_security_protocol = 'sasl_plaintext'"},
		{"the collection's bootstrap servers overridden", ", `kafka.bootstrap_servers` = '%s'", "kafka_security_protocol = 'sasl_plaintext'"},
		{"the collection's password overridden", ", `kafka.sasl_password` = 'intruder-password'", "kafka_broker_list = '%s'"},
		{"the collection's protocol overridden", ", `kafka.security_protocol` = 'sasl_plaintext'", "kafka_broker_list = '%s'"},
	}
	type running struct {
		name, table string
		fake        *fakeBroker
	}
	var started []running
	for i, a := range attempts {
		fake := startFakeBroker(t)
		table := fmt.Sprintf("intruder_%d", i)
		create := "CREATE TABLE " + db + "." + table + " (`message` String) ENGINE = Kafka(" + coll + strings.ReplaceAll(a.engine, "%s", fake.addr()) + ") SETTINGS " +
			strings.ReplaceAll(a.settings, "%s", fake.addr()) + ", kafka_topic_list = " + clickhouse.QuoteString(s.Topic) +
			", kafka_group_name = '" + db + "_" + table + "', kafka_format = 'JSONEachRow'"
		if err := c.Exec(ctx, create); err != nil {
			var se *clickhouse.ServerError
			if !errors.As(err, &se) || se.Code != 36 || !strings.Contains(se.Message, "Override not allowed") {
				t.Errorf("%s: CREATE failed with %v; want a table, or BAD_ARGUMENTS (36) Override not allowed", a.name, err)
				continue
			}
			t.Logf("%s: refused: %s", a.name, firstLine(se.Message))
			continue
		}
		if err := c.Exec(ctx, "CREATE MATERIALIZED VIEW "+db+"."+table+"_mv TO "+db+".sink AS SELECT message FROM "+db+"."+table); err != nil {
			t.Fatal(err)
		}
		started = append(started, running{a.name, table, fake})
	}

	// Each running table's consumer must show it reached for the collection's brokers: partitions assigned
	// by them, or an error naming them. Until then, any connection to the listener fails the attempt.
	pending := map[string]running{}
	for _, r := range started {
		pending[r.table] = r
	}
	for len(pending) > 0 {
		for table, r := range pending {
			if n, got := r.fake.seen(); n > 0 {
				t.Errorf("%s: the intruder's listener got %d connection(s); password sent: %v", r.name, n, strings.Contains(got, e.kafkaPassword))
				delete(pending, table)
				continue
			}
			rows, err := clickhouse.QueryRows[struct {
				Partitions []int32  `json:"partitions"`
				Errors     []string `json:"errors"`
			}](ctx, c, clickhouse.Query{SQL: "SELECT assignments.partition_id AS partitions, exceptions.text AS errors FROM system.kafka_consumers WHERE database = {db:String} AND table = {t:String}",
				Params: map[string]string{"db": db, "t": table}})
			if err != nil {
				t.Fatal(err)
			}
			for _, row := range rows {
				if len(row.Partitions) > 0 || strings.Contains(strings.Join(row.Errors, "\n"), e.brokers) {
					t.Logf("%s: the consumer reached the collection's brokers (partitions %v, errors %q); the listener got nothing", r.name, row.Partitions, firstErrors(row.Errors))
					delete(pending, table)
				}
			}
		}
		select {
		case <-ctx.Done():
			for _, r := range pending {
				n, _ := r.fake.seen()
				t.Errorf("%s: no sign of the consumer reaching the collection's brokers before the deadline (listener: %d connection(s))", r.name, n)
			}
			return
		case <-time.After(300 * time.Millisecond):
		}
	}
	for _, r := range started {
		if _, got := r.fake.seen(); strings.Contains(got, e.kafkaPassword) {
			t.Errorf("%s: the intruder's listener received the SASL password", r.name)
		}
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func firstErrors(errs []string) []string {
	out := make([]string, 0, 2)
	for i := 0; i < len(errs) && i < 2; i++ {
		out = append(out, firstLine(errs[i]))
	}
	return out
}

// TestIntegrationUpgradeBrokerListIntoCollection: a deployment bootstrapped before the broker list moved into
// the named collection (logs_queue with kafka_broker_list in its SETTINGS, a collection without it and
// without NOT OVERRIDABLE) is upgraded by the bootstrap as a credentials rotation is: the dry run shows the
// plan, the run alters the collection and recreates logs_queue and its views, logs is kept, and ingestion
// continues from the group's committed offsets with no event lost or read twice.
func TestIntegrationUpgradeBrokerListIntoCollection(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_upgrade", 2)
	db := s.Database
	dc := e.client(t, db)
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	g := event.NewGenerator(13, 1, time.Now().UTC().Add(-time.Minute))
	total := 0
	batch := func(n int) {
		t.Helper()
		msgs := make([][]byte, n)
		for i := range msgs {
			msgs[i] = g.Next().AppendJSON(nil)
		}
		kafkatest.Produce(t, e.plaintext, s.Topic, msgs)
		total += n
		waitCount(t, ctx, dc, "SELECT count() AS v FROM logs", total)
	}
	batch(300)

	// The earlier form, as that bootstrap left it.
	queue := mustStatement(t, s, "logs_queue")
	oldQueue := strings.Replace(queue, "SETTINGS\n", "SETTINGS\n    kafka_broker_list = "+clickhouse.QuoteString(s.Brokers)+",\n", 1)
	oldQueue = strings.Replace(oldQueue, "; brokers: "+s.Brokers, "", 1)
	for _, q := range []string{
		"DROP VIEW " + db + ".logs_errors_mv SYNC", "DROP VIEW " + db + ".logs_mv SYNC", "DROP TABLE " + db + ".logs_queue SYNC",
		"DROP NAMED COLLECTION " + clickhouse.QuoteIdent(s.Collection()),
		"CREATE NAMED COLLECTION " + clickhouse.QuoteIdent(s.Collection()) + " AS `kafka.sasl_mechanism` = 'PLAIN', `kafka.sasl_password` = " +
			clickhouse.QuoteString(e.kafkaPassword) + ", `kafka.sasl_username` = " + clickhouse.QuoteString(e.kafkaUser) +
			", `kafka.security_protocol` = 'sasl_ssl', `kafka.ssl_ca_pem` = " + strings.ReplaceAll(clickhouse.QuoteString(e.caPEM), "\n", `\n`),
		oldQueue, mustStatement(t, s, "logs_mv"), mustStatement(t, s, "logs_errors_mv"),
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("recreating the earlier form: %s: %v", firstLine(q), err)
		}
	}
	batch(300)

	upgraded := []string{"named collection " + db + "_kafka", db + ".logs_queue", db + ".logs_mv", db + ".logs_errors_mv"}
	for _, run := range []func(context.Context, *clickhouse.Client, clickhouse.Schema) (clickhouse.Result, error){clickhouse.DryRun, clickhouse.Apply} {
		r, err := run(ctx, c, s)
		if err != nil || !equal(r.Updated, upgraded) || !equal(r.Kept, []string{db, db + ".logs", db + ".logs_errors"}) {
			t.Fatalf("bootstrap of the earlier form (dry run %v) = %+v, %v; want %q updated, logs kept", r.DryRun, r, err, upgraded)
		}
	}
	coll := scalar[string](t, ctx, c, "SELECT create_query AS v FROM system.named_collections WHERE name = "+clickhouse.QuoteString(s.Collection()))
	if !strings.Contains(coll, "kafka.bootstrap_servers = '[HIDDEN]' NOT OVERRIDABLE") || strings.Count(coll, "NOT OVERRIDABLE") != 6 {
		t.Errorf("the collection after the upgrade: %s; want the broker list in it and every key NOT OVERRIDABLE", coll)
	}
	if q := scalar[string](t, ctx, c, "SELECT create_table_query AS v FROM system.tables WHERE database = '"+db+"' AND name = 'logs_queue'"); strings.Contains(q, "kafka_broker_list") {
		t.Errorf("logs_queue after the upgrade still names a broker list: %s", q)
	}
	batch(300)
	if u := scalar[int](t, ctx, dc, "SELECT uniqExact(eventId) AS v FROM logs"); u != total {
		t.Errorf("distinct eventIds = %d, want %d", u, total)
	}
	if r, err := clickhouse.Apply(ctx, c, s); err != nil || !equal(r.Kept, allNames(db)) {
		t.Errorf("a rerun after the upgrade = %+v, %v; want everything kept", r, err)
	}
}
