package clickhouse

import (
	"strings"
	"testing"
)

// The stored definition of logs as the local engine (ClickHouse 26.9.2.1 (chdb-core 26.9.0)) holds it in system.tables
// create_table_query, and the forms ClickHouse gives the same table elsewhere: ClickHouse Cloud's
// SharedReplacingMergeTree (with and without the arguments it fills in), a Replicated database's automatic
// ReplicatedReplacingMergeTree, and a self-managed cluster's explicit ReplicatedReplacingMergeTree path.
const (
	logsColumns = "CREATE TABLE db.logs (`eventId` UInt32, `level` LowCardinality(String), `source` LowCardinality(String), `timestamp` DateTime64(6), `computer` LowCardinality(String), `user` LowCardinality(String), `message` String, `kafka_partition` UInt32, `kafka_offset` UInt64, `kafka_key` String, `row_hash` UInt64 MATERIALIZED cityHash64(eventId, level, source, timestamp, computer, user, message))"
	logsKeys    = " PARTITION BY toYYYYMM(timestamp) ORDER BY (eventId, kafka_key, row_hash, timestamp) SETTINGS index_granularity = 8192"

	capturedLocal          = logsColumns + " ENGINE = ReplacingMergeTree" + logsKeys
	capturedCloud          = logsColumns + " ENGINE = SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')" + logsKeys
	capturedCloudBare      = logsColumns + " ENGINE = SharedReplacingMergeTree" + logsKeys
	capturedReplicatedDB   = logsColumns + " ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')" + logsKeys
	capturedCluster        = logsColumns + " ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/db/logs', '{replica}')" + logsKeys
	capturedClusterDefault = logsColumns + " ENGINE = ReplicatedReplacingMergeTree" + logsKeys

	// The seed's logs (a plain MergeTree ORDER BY eventId, no Kafka coordinates) as the local engine stored
	// it, and as ClickHouse Cloud stores it.
	seedColumns       = "CREATE TABLE db.logs (`eventId` UInt32, `level` LowCardinality(String), `source` LowCardinality(String), `timestamp` DateTime64(6), `computer` LowCardinality(String), `user` LowCardinality(String), `message` String)"
	seedKeys          = " PARTITION BY toYYYYMM(timestamp) ORDER BY eventId SETTINGS index_granularity = 8192"
	capturedSeed      = seedColumns + " ENGINE = MergeTree" + seedKeys
	capturedSeedCloud = seedColumns + " ENGINE = SharedMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}')" + seedKeys
)

func TestCanonicalEngine(t *testing.T) {
	tests := []struct {
		name, stored, want string
	}{
		{"local ReplacingMergeTree", capturedLocal, capturedLocal},
		{"Cloud SharedReplacingMergeTree", capturedCloud, capturedLocal},
		{"Cloud SharedReplacingMergeTree without arguments", capturedCloudBare, capturedLocal},
		{"Replicated database", capturedReplicatedDB, capturedLocal},
		{"cluster ReplicatedReplacingMergeTree with a path", capturedCluster, capturedLocal},
		{"cluster ReplicatedReplacingMergeTree with the default path", capturedClusterDefault, capturedLocal},
		{"seed MergeTree", capturedSeed, capturedSeed},
		{"seed on Cloud", capturedSeedCloud, capturedSeed},
		{"version argument after the path stays",
			"CREATE TABLE t (`a` UInt8, `v` UInt64) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/t', '{replica}', v) ORDER BY a",
			"CREATE TABLE t (`a` UInt8, `v` UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a"},
		{"engine arguments after the path stay",
			"CREATE TABLE t (`a` UInt8, `v` UInt64) ENGINE = SharedReplacingMergeTree('/clickhouse/tables/{uuid}/{shard}', '{replica}', v) ORDER BY a",
			"CREATE TABLE t (`a` UInt8, `v` UInt64) ENGINE = ReplacingMergeTree(v) ORDER BY a"},
		{"a path with a comma and a parenthesis",
			"CREATE TABLE t (`a` UInt8) ENGINE = ReplicatedMergeTree('/a,b(c)/{shard}', 'r\\'1') ORDER BY a",
			"CREATE TABLE t (`a` UInt8) ENGINE = MergeTree ORDER BY a"},
		{"the Kafka engine is untouched",
			"CREATE TABLE db.logs_queue (`a` UInt8) ENGINE = Kafka(db_kafka) SETTINGS kafka_broker_list = 'b:9092'",
			"CREATE TABLE db.logs_queue (`a` UInt8) ENGINE = Kafka(db_kafka) SETTINGS kafka_broker_list = 'b:9092'"},
		{"a view is untouched",
			"CREATE MATERIALIZED VIEW db.logs_mv TO db.logs (`a` UInt8) AS SELECT a FROM db.logs_queue",
			"CREATE MATERIALIZED VIEW db.logs_mv TO db.logs (`a` UInt8) AS SELECT a FROM db.logs_queue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canonicalEngine(tt.stored); got != tt.want {
				t.Errorf("canonicalEngine() =\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// Real differences still count on every engine: a changed ORDER BY, a column more, or the engine family
// itself (a seed-style MergeTree where the DDL wants a ReplacingMergeTree) is drift on Cloud and on a
// cluster alike.
func TestCanonicalEngineKeepsRealDifferences(t *testing.T) {
	for _, stored := range []string{capturedCloud, capturedReplicatedDB, capturedCluster} {
		for _, change := range []struct{ from, to string }{
			{"ORDER BY (eventId, kafka_key, row_hash, timestamp)", "ORDER BY (eventId, kafka_key, row_hash)"},
			{"ReplacingMergeTree", "MergeTree"},
			{"`message` String,", "`message` String, `extra` String,"},
			{"index_granularity = 8192", "index_granularity = 1024"},
		} {
			drifted := strings.Replace(stored, change.from, change.to, 1)
			if canonicalEngine(drifted) == capturedLocal {
				t.Errorf("%q -> %q on %.60s... compares equal; want a difference", change.from, change.to, stored[strings.Index(stored, "ENGINE"):])
			}
		}
	}
}

func TestSplitComment(t *testing.T) {
	body, c := splitComment("CREATE TABLE t (`a` UInt8) ENGINE = Kafka(c) SETTINGS x = 'y' COMMENT 'kafka credentials: version \\'1\\''")
	if body != "CREATE TABLE t (`a` UInt8) ENGINE = Kafka(c) SETTINGS x = 'y'" || c != `kafka credentials: version \'1\'` {
		t.Errorf("splitComment() = %q, %q", body, c)
	}
	if body, c := splitComment("CREATE TABLE t (`a` UInt8) ENGINE = Memory"); c != "" || body != "CREATE TABLE t (`a` UInt8) ENGINE = Memory" {
		t.Errorf("splitComment() without a comment = %q, %q", body, c)
	}
}

func TestUnifiedDiff(t *testing.T) {
	a := "CREATE TABLE db.logs\n(\n    `a` UInt8,\n    `b` String\n)\nENGINE = MergeTree\nORDER BY a\nSETTINGS index_granularity = 8192"
	b := "CREATE TABLE db.logs\n(\n    `a` UInt8,\n    `b` String,\n    `extra` String\n)\nENGINE = MergeTree\nORDER BY a\nSETTINGS index_granularity = 8192"
	want := `--- ddl
+++ server
@@ -1,7 +1,8 @@
 CREATE TABLE db.logs
 (
     ` + "`a`" + ` UInt8,
-    ` + "`b`" + ` String
+    ` + "`b`" + ` String,
+    ` + "`extra`" + ` String
 )
 ENGINE = MergeTree
 ORDER BY a
`
	if got := unifiedDiff("ddl", "server", a, b); got != want {
		t.Errorf("unifiedDiff() =\n%s\nwant\n%s", got, want)
	}
	if got := unifiedDiff("ddl", "server", a, a); got != "" {
		t.Errorf("unifiedDiff of equal texts = %q, want empty", got)
	}
	// Two changes far apart make two hunks.
	long := func(mark int) string {
		var l []string
		for i := 0; i < 20; i++ {
			s := "line"
			if i == mark || i == 19-mark {
				s = "changed"
			}
			l = append(l, s+string(rune('a'+i)))
		}
		return strings.Join(l, "\n")
	}
	got := unifiedDiff("a", "b", long(-1), long(1))
	if n := strings.Count(got, "@@ -"); n != 2 || !strings.Contains(got, "@@ -1,5 +1,5 @@") || !strings.Contains(got, "@@ -16,5 +16,5 @@") {
		t.Errorf("two distant changes: %d hunks\n%s", n, got)
	}
}
