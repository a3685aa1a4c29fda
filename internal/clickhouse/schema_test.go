package clickhouse

import (
	"errors"
	"strings"
	"testing"
)

func TestStatementsOrderAndNames(t *testing.T) {
	s := NewSchema("b1:9092,b2:9092")
	sts, err := s.Statements()
	if err != nil {
		t.Fatalf("Statements() error = %v", err)
	}
	want := []struct {
		name string
		kind Kind
	}{
		{"KafkaEngine", KindDatabase},
		{"KafkaEngine.logs", KindTable},
		{"KafkaEngine.logs_errors", KindTable},
		{"KafkaEngine.logs_queue", KindTable},
		{"KafkaEngine.logs_mv", KindView},
		{"KafkaEngine.logs_errors_mv", KindView},
	}
	if len(sts) != len(want) {
		t.Fatalf("Statements() returned %d statements, want %d", len(sts), len(want))
	}
	for i, w := range want {
		if sts[i].Name != w.name || sts[i].Kind != w.kind {
			t.Errorf("statement %d = %s (%s), want %s (%s)", i, sts[i].Name, sts[i].Kind, w.name, w.kind)
		}
	}
	queue := sts[3].SQL
	for _, frag := range []string{
		"ENGINE = Kafka(`KafkaEngine_kafka`)", "kafka_topic_list = 'logs_4'", "kafka_group_name = 'logs_consumer'",
		"kafka_format = 'JSONEachRow'", "kafka_handle_error_mode = 'stream'", "kafka_num_consumers = 1",
		"`timestamp` DateTime64(6)", "`level` LowCardinality(String)",
	} {
		if !strings.Contains(queue, frag) {
			t.Errorf("logs_queue DDL lacks %q:\n%s", frag, queue)
		}
	}
	if !strings.Contains(sts[4].SQL, "WHERE length(_error) = 0") || !strings.Contains(sts[5].SQL, "WHERE length(_error) > 0") {
		t.Errorf("the views must split rows on _error:\n%s\n%s", sts[4].SQL, sts[5].SQL)
	}
	// logs collapses a re-consumed or re-sent message (same Kafka key, same row) and keeps distinct events
	// that share an eventId apart: eventId first, then the message's key.
	for _, frag := range []string{"ENGINE = ReplacingMergeTree\n", "PARTITION BY toYYYYMM(timestamp)",
		"ORDER BY (eventId, kafka_key, row_hash, timestamp)", "`kafka_key` String", "`row_hash` UInt64 MATERIALIZED cityHash64(eventId, level, source, timestamp, computer, user, message)"} {
		if !strings.Contains(sts[1].SQL, frag) {
			t.Errorf("logs DDL lacks %q:\n%s", frag, sts[1].SQL)
		}
	}
	if !strings.Contains(sts[4].SQL, "toUInt32(_partition) AS kafka_partition") || !strings.Contains(sts[4].SQL, "_offset AS kafka_offset") ||
		!strings.Contains(sts[4].SQL, "if(empty(_key), concat('@', toString(_partition), ':', toString(_offset)), _key) AS kafka_key") {
		t.Errorf("logs_mv must carry the Kafka coordinates and key:\n%s", sts[4].SQL)
	}
}

func TestStatementsQuoteParameters(t *testing.T) {
	s := NewSchema(`b:9092`)
	s.Database, s.Topic, s.Group = "odd`db", `it's`, `back\slash`
	sts, err := s.Statements()
	if err != nil {
		t.Fatalf("Statements() error = %v", err)
	}
	q := sts[3].SQL
	for _, frag := range []string{"CREATE TABLE `odd\\`db`.logs_queue", `kafka_topic_list = 'it\'s'`, `kafka_group_name = 'back\\slash'`} {
		if !strings.Contains(q, frag) {
			t.Errorf("logs_queue DDL lacks %q:\n%s", frag, q)
		}
	}
}

func TestSchemaValidate(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Schema)
		want   error
	}{
		{"defaults", func(*Schema) {}, nil},
		{"no database", func(s *Schema) { s.Database = "" }, ErrEmpty},
		{"no brokers", func(s *Schema) { s.Brokers = "" }, ErrEmpty},
		{"no topic", func(s *Schema) { s.Topic = "" }, ErrEmpty},
		{"zero consumers", func(s *Schema) { s.NumConsumers = 0 }, ErrOutOfRange},
		{"too many consumers", func(s *Schema) { s.NumConsumers = 65 }, ErrOutOfRange},
		{"newline in topic", func(s *Schema) { s.Topic = "a\nb" }, ErrControlChar},
		{"NUL in database", func(s *Schema) { s.Database = "a\x00" }, ErrControlChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSchema("b:9092")
			tt.change(&s)
			err := s.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
			if _, serr := s.Statements(); (serr == nil) != (tt.want == nil) {
				t.Errorf("Statements() error = %v, want the Validate error", serr)
			}
		})
	}
}

func TestQuote(t *testing.T) {
	tests := []struct{ in, ident, str string }{
		{"plain", "`plain`", "'plain'"},
		{"a`b", "`a\\`b`", "'a`b'"},
		{`a'b`, "`a'b`", `'a\'b'`},
		{`a\b`, "`a\\\\b`", `'a\\b'`},
	}
	for _, tt := range tests {
		if got := QuoteIdent(tt.in); got != tt.ident {
			t.Errorf("QuoteIdent(%q) = %q, want %q", tt.in, got, tt.ident)
		}
		if got := QuoteString(tt.in); got != tt.str {
			t.Errorf("QuoteString(%q) = %q, want %q", tt.in, got, tt.str)
		}
	}
}

func TestConsumerGroup(t *testing.T) {
	tests := []struct {
		database, group, want string
	}{
		{DefaultDatabase, "", "logs_consumer"},
		{"staging", "", "logs_consumer_staging"},
		{"staging", "shared_on_purpose", "shared_on_purpose"},
	}
	for _, tt := range tests {
		s := NewSchema("b:9092")
		s.Database, s.Group = tt.database, tt.group
		if got := s.ConsumerGroup(); got != tt.want {
			t.Errorf("Schema{Database: %q, Group: %q}.ConsumerGroup() = %q, want %q", tt.database, tt.group, got, tt.want)
		}
		if q := mustQueue(t, s); !strings.Contains(q, "kafka_group_name = "+QuoteString(tt.want)) {
			t.Errorf("logs_queue of %q reads in another group than %q:\n%s", tt.database, tt.want, q)
		}
	}
}

func mustQueue(t *testing.T, s Schema) string {
	t.Helper()
	sts, err := s.Statements()
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range sts {
		if st.Table == "logs_queue" {
			return st.SQL
		}
	}
	t.Fatal("no logs_queue statement")
	return ""
}
