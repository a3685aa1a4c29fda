package clickhouse

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// DuplicateReport compares the raw rows of logs in a time range with the events they hold. A row is a copy
// when another row has the same eventId, Kafka key and content (the sorting key): the Kafka engine consumed
// its message twice, or the producer wrote its message twice (a retry after a timeout, a replay). Copies are harmless to a query that reads FROM logs FINAL, and background
// merges remove them in time; the report says how many are there now.
type DuplicateReport struct {
	// Since and Until bound the events' timestamp: Since <= timestamp < Until.
	Since time.Time `json:"since"`
	Until time.Time `json:"until"`
	// Rows is what a plain SELECT count() FROM logs counts.
	Rows uint64 `json:"rows"`
	// Events is what SELECT count() FROM logs FINAL counts: each event once.
	Events uint64 `json:"events"`
	// Copies is Rows - Events: rows a re-consumed message left that no merge has collapsed yet.
	Copies uint64 `json:"copies"`
	// EventIDs is the number of distinct eventIds.
	EventIDs uint64 `json:"eventIds"`
	// DuplicatedIDs is the number of eventIds with at least one copy.
	DuplicatedIDs uint64 `json:"duplicatedIds"`
	// SharedIDs is the number of eventIds that distinct events carry (several sources numbering alike):
	// these are not duplicates, and FINAL keeps each of those events.
	SharedIDs uint64 `json:"sharedIds"`
	// Top lists the eventIds with the most copies, most first.
	Top []DuplicatedEvent `json:"top"`
}

// DuplicatedEvent is one eventId of DuplicateReport.Top.
type DuplicatedEvent struct {
	EventID uint32 `json:"eventId"`
	// Rows holds this eventId; Events is how many distinct events they are.
	Rows   uint64 `json:"rows"`
	Events uint64 `json:"events"`
}

// eventKey is what tells events apart in logs: its sorting key without eventId, which the queries group by.
const eventKey = "kafka_key, row_hash, timestamp"

// duplicatesSQL counts, per eventId in the range, the rows and the distinct events (sorting keys), then sums.
const duplicatesSQL = `SELECT
    sum(id_rows) AS rows,
    sum(id_events) AS events,
    count() AS event_ids,
    countIf(id_rows > id_events) AS duplicated_ids,
    countIf(id_events > 1) AS shared_ids
FROM
(
    SELECT eventId, count() AS id_rows, uniqExact(` + eventKey + `) AS id_events
    FROM logs
    WHERE timestamp >= {since:DateTime64(6)} AND timestamp < {until:DateTime64(6)}
    GROUP BY eventId
)`

const topDuplicatesSQL = `SELECT eventId, count() AS rows, uniqExact(` + eventKey + `) AS events
FROM logs
WHERE timestamp >= {since:DateTime64(6)} AND timestamp < {until:DateTime64(6)}
GROUP BY eventId
HAVING rows > events
ORDER BY rows - events DESC, eventId
LIMIT {top:UInt32}`

// Duplicates reports the copies in logs among events with since <= timestamp < until, and the top eventIds
// with the most copies. It reads the range twice, without FINAL: uniqExact of the sorting key counts what
// FINAL would keep.
func Duplicates(ctx context.Context, c *Client, since, until time.Time, top int) (DuplicateReport, error) {
	r := DuplicateReport{Since: since.UTC(), Until: until.UTC(), Top: []DuplicatedEvent{}}
	params := map[string]string{
		"since": since.UTC().Format("2006-01-02 15:04:05.000000"),
		"until": until.UTC().Format("2006-01-02 15:04:05.000000"),
		"top":   strconv.Itoa(max(top, 0)),
	}
	type sums struct {
		Rows          uint64 `json:"rows"`
		Events        uint64 `json:"events"`
		EventIDs      uint64 `json:"event_ids"`
		DuplicatedIDs uint64 `json:"duplicated_ids"`
		SharedIDs     uint64 `json:"shared_ids"`
	}
	rows, err := QueryRows[sums](ctx, c, Query{SQL: duplicatesSQL, Params: params})
	if err != nil {
		return r, fmt.Errorf("counting copies in logs: %w", err)
	}
	if len(rows) == 1 {
		s := rows[0]
		r.Rows, r.Events, r.EventIDs, r.DuplicatedIDs, r.SharedIDs = s.Rows, s.Events, s.EventIDs, s.DuplicatedIDs, s.SharedIDs
		r.Copies = s.Rows - s.Events
	}
	if top <= 0 || r.DuplicatedIDs == 0 {
		return r, nil
	}
	tops, err := QueryRows[DuplicatedEvent](ctx, c, Query{SQL: topDuplicatesSQL, Params: params})
	if err != nil {
		return r, fmt.Errorf("listing duplicated eventIds: %w", err)
	}
	r.Top = tops
	return r, nil
}

// WriteDuplicates prints r for a person: the counts, then the eventIds with the most copies.
func WriteDuplicates(w io.Writer, database string, r DuplicateReport) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s.logs, events from %s to %s (UTC)\n", database, r.Since.Format(time.DateTime), r.Until.Format(time.DateTime))
	for _, l := range []struct {
		what string
		n    uint64
	}{
		{"rows (SELECT count() FROM logs)", r.Rows},
		{"events (SELECT count() FROM logs FINAL)", r.Events},
		{"copies (re-consumed rows not merged away yet)", r.Copies},
		{"distinct eventIds", r.EventIDs},
		{"eventIds with copies", r.DuplicatedIDs},
		{"eventIds shared by distinct events", r.SharedIDs},
	} {
		fmt.Fprintf(&b, "%-46s %12d\n", l.what, l.n)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing the duplicates report: %w", err)
	}
	if len(r.Top) == 0 {
		return nil
	}
	rows := make([][]string, len(r.Top))
	for i, d := range r.Top {
		rows[i] = []string{strconv.FormatUint(uint64(d.EventID), 10), strconv.FormatUint(d.Rows, 10), strconv.FormatUint(d.Events, 10)}
	}
	if _, err := io.WriteString(w, "\neventIds with the most copies\n"); err != nil {
		return fmt.Errorf("writing the duplicates report: %w", err)
	}
	return WriteTable(w, []string{"eventId", "rows", "events"}, rows)
}
