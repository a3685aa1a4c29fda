package clickhouse_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
)

func TestRangeCheckErr(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    clickhouse.RangeCheck
		want string // "" for exact
	}{
		{"exact", clickhouse.RangeCheck{First: 1, Last: 100, Rows: 100, EventIDs: 100, Min: 1, Max: 100}, ""},
		{"one eventId", clickhouse.RangeCheck{First: 7, Last: 7, Rows: 1, EventIDs: 1, Min: 7, Max: 7}, ""},
		{"a gap", clickhouse.RangeCheck{First: 1, Last: 100, Rows: 99, EventIDs: 99, Min: 1, Max: 100}, "1 of 100 missing"},
		{"nothing", clickhouse.RangeCheck{First: 1, Last: 100}, "100 of 100 missing"},
		{"a duplicate", clickhouse.RangeCheck{First: 1, Last: 100, Rows: 101, EventIDs: 100, Min: 1, Max: 100}, "1 extra rows"},
		// The walkthrough's collision: as many rows as wanted, yet 1,000 ids twice and 1,000 missing.
		{"rows right, ids wrong", clickhouse.RangeCheck{First: 1, Last: 600000, Rows: 600000, EventIDs: 599000, Min: 1, Max: 600000}, "1000 of 600000 missing and 1000 extra rows"},
		{"whole uint32 range", clickhouse.RangeCheck{First: 0, Last: 1<<32 - 1, Rows: 1 << 32, EventIDs: 1 << 32}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.r.Err()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Err() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, clickhouse.ErrNotExact) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Err() = %v, want ErrNotExact saying %q", err, tc.want)
			}
		})
	}
}
