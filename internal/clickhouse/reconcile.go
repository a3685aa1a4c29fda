package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// RangeCheck reconciles one run that wrote each eventId from First to Last once (make demo's run) with what
// logs holds for that range, read with FINAL (copies of a re-consumed message count once).
type RangeCheck struct {
	First, Last uint32
	// Rows is count() of logs FINAL in the range; EventIDs the distinct eventIds among them.
	Rows, EventIDs uint64
	// Min and Max are the lowest and highest eventId found (0 when none is).
	Min, Max uint32
}

// Want is how many eventIds the range holds.
func (r RangeCheck) Want() uint64 { return uint64(r.Last) - uint64(r.First) + 1 }

// Missing is how many eventIds of the range logs lacks.
func (r RangeCheck) Missing() uint64 { return r.Want() - min(r.EventIDs, r.Want()) }

// Extra is how many rows beyond one per eventId the range holds: events another producer sent with the same
// eventIds, or the same line delivered twice at different Kafka offsets. FINAL has already collapsed the
// copies of one message.
func (r RangeCheck) Extra() uint64 { return r.Rows - min(r.EventIDs, r.Rows) }

// ErrNotExact: the range is not each eventId once.
var ErrNotExact = errors.New("not exact")

// Err is nil when logs holds every eventId of the range once; else it says what is missing or extra.
func (r RangeCheck) Err() error {
	switch {
	case r.Missing() > 0 && r.Extra() > 0:
		return fmt.Errorf("%w: eventIds %d..%d: %d of %d missing and %d extra rows (eventIds there more than once)", ErrNotExact, r.First, r.Last, r.Missing(), r.Want(), r.Extra())
	case r.Missing() > 0:
		return fmt.Errorf("%w: eventIds %d..%d: %d of %d missing", ErrNotExact, r.First, r.Last, r.Missing(), r.Want())
	case r.Extra() > 0:
		return fmt.Errorf("%w: eventIds %d..%d: %d extra rows (eventIds there more than once)", ErrNotExact, r.First, r.Last, r.Extra())
	}
	return nil
}

// String is the check's figures for a person.
func (r RangeCheck) String() string {
	return fmt.Sprintf("eventIds %d..%d: rows %d, distinct eventIds %d, lowest %d, highest %d (want %d of each, %d..%d)",
		r.First, r.Last, r.Rows, r.EventIDs, r.Min, r.Max, r.Want(), r.First, r.Last)
}

const rangeSQL = `SELECT count() AS rows, uniqExact(eventId) AS ids, min(eventId) AS lo, max(eventId) AS hi
FROM logs FINAL WHERE eventId BETWEEN {first:UInt32} AND {last:UInt32}`

// CheckRange counts logs FINAL's rows and distinct eventIds from first to last (inclusive). As many distinct
// eventIds as the range has values leaves no gap; as many rows as eventIds leaves no duplicate.
func CheckRange(ctx context.Context, c *Client, first, last uint32) (RangeCheck, error) {
	r := RangeCheck{First: first, Last: last}
	if first > last {
		return r, fmt.Errorf("eventIds %d..%d: the first is after the last", first, last)
	}
	type counts struct {
		Rows uint64 `json:"rows"`
		IDs  uint64 `json:"ids"`
		Lo   uint32 `json:"lo"`
		Hi   uint32 `json:"hi"`
	}
	rows, err := QueryRows[counts](ctx, c, Query{SQL: rangeSQL, Params: map[string]string{
		"first": strconv.FormatUint(uint64(first), 10), "last": strconv.FormatUint(uint64(last), 10),
	}})
	if err != nil {
		return r, fmt.Errorf("counting eventIds %d..%d in logs FINAL: %w", first, last, err)
	}
	if len(rows) != 1 {
		return r, fmt.Errorf("counting eventIds %d..%d in logs FINAL: %d rows of answer, want 1", first, last, len(rows))
	}
	r.Rows, r.EventIDs, r.Min, r.Max = rows[0].Rows, rows[0].IDs, rows[0].Lo, rows[0].Hi
	return r, nil
}
