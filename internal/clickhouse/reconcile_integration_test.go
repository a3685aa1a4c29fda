package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
)

// TestIntegrationCheckRange is make demo's reconciliation against the engine: a table shaped like logs
// where FINAL collapses copies of one message (same eventId and Kafka offset) but keeps the same eventId at
// another offset, with a gap, a copy and a repeat planted in a range of 1,000 eventIds.
func TestIntegrationCheckRange(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client(t, "")
	db := freshDatabase(t, c, "it_range")
	for _, q := range []string{
		"CREATE DATABASE " + db,
		"CREATE TABLE " + db + ".logs (eventId UInt32, kafka_offset UInt64) ENGINE = ReplacingMergeTree ORDER BY (eventId, kafka_offset)",
		// 1..1000 once each, except 500; 600 a second time at another offset (a repeat FINAL keeps);
		// 700 a second time at the same offset (a copy FINAL collapses); 2000, outside the range.
		"INSERT INTO " + db + ".logs SELECT number + 1, number FROM numbers(1000) WHERE number + 1 != 500",
		"INSERT INTO " + db + ".logs VALUES (600, 5000), (700, 699), (2000, 6000)",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	dc := e.client(t, db)
	for _, tc := range []struct {
		first, last      uint32
		rows, ids        uint64
		lo, hi           uint32
		missing, extra   uint64
		wantErrSubstring string
	}{
		{1, 499, 499, 499, 1, 499, 0, 0, ""},
		{1, 1000, 1000, 999, 1, 1000, 1, 1, "1 of 1000 missing and 1 extra rows"},
		{450, 550, 100, 100, 450, 550, 1, 0, "1 of 101 missing"},
		{650, 750, 101, 101, 650, 750, 0, 0, ""}, // 700's copy counts once
		{590, 610, 22, 21, 590, 610, 0, 1, "1 extra rows"},
		{3000, 3999, 0, 0, 0, 0, 1000, 0, "1000 of 1000 missing"},
	} {
		r, err := clickhouse.CheckRange(ctx, dc, tc.first, tc.last)
		if err != nil {
			t.Fatalf("CheckRange(%d, %d): %v", tc.first, tc.last, err)
		}
		if r.Rows != tc.rows || r.EventIDs != tc.ids || r.Min != tc.lo || r.Max != tc.hi || r.Missing() != tc.missing || r.Extra() != tc.extra {
			t.Errorf("CheckRange(%d, %d) = %s, missing %d, extra %d; want rows %d, ids %d, %d..%d, missing %d, extra %d",
				tc.first, tc.last, r, r.Missing(), r.Extra(), tc.rows, tc.ids, tc.lo, tc.hi, tc.missing, tc.extra)
		}
		err = r.Err()
		if tc.wantErrSubstring == "" && err != nil || tc.wantErrSubstring != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErrSubstring)) {
			t.Errorf("CheckRange(%d, %d).Err() = %v, want %q", tc.first, tc.last, err, tc.wantErrSubstring)
		}
	}
	if _, err := clickhouse.CheckRange(ctx, dc, 10, 9); err == nil {
		t.Error("CheckRange(10, 9): no error for a range that ends before it starts")
	}
}
