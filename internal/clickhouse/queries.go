package clickhouse

import (
	"context"
	"fmt"
	"time"
)

// The three example queries (README.md, "The example queries"), read the exact way: FROM logs FINAL. logs is a
// ReplacingMergeTree in which a message the Kafka engine consumed twice is two copies of the same rows (same
// eventId, Kafka coordinates and content) until a background merge collapses them, at a time nobody
// controls; FINAL collapses them at read time, so every answer counts each event once. FINAL merges within
// each monthly partition only, without a setting: copies of one event share its timestamp, and because
// timestamp is in the sorting key ClickHouse knows it (see README.md for the measured cost). The queries
// name the table logs unqualified: run them with a Client whose database (WithDatabase) holds it.
const (
	// LevelCountsSQL counts logs by level in the last hour.
	LevelCountsSQL = `SELECT
    level,
    count() AS count
FROM logs FINAL
WHERE timestamp >= now() - INTERVAL 1 HOUR
GROUP BY level
ORDER BY count DESC`

	// TopErrorSourcesSQL finds the ten sources with the most Error logs.
	TopErrorSourcesSQL = `SELECT
    source,
    count() AS error_count
FROM logs FINAL
WHERE level = 'Error'
GROUP BY source
ORDER BY error_count DESC
LIMIT 10`

	// LogsPerMinuteSQL is the time series of logs by minute over the last day.
	LogsPerMinuteSQL = `SELECT
    toStartOfMinute(timestamp) AS minute,
    count() AS log_count
FROM logs FINAL
WHERE timestamp >= now() - INTERVAL 1 DAY
GROUP BY minute
ORDER BY minute`
)

// LevelCount is a row of LevelCounts.
type LevelCount struct {
	Level string `json:"level"`
	Count uint64 `json:"count"`
}

// SourceErrors is a row of TopErrorSources.
type SourceErrors struct {
	Source     string `json:"source"`
	ErrorCount uint64 `json:"error_count"`
}

// MinuteCount is a row of LogsPerMinute.
type MinuteCount struct {
	Minute time.Time `json:"minute"`
	Count  uint64    `json:"log_count"`
}

// LevelCounts runs LevelCountsSQL. Rows come most frequent level first; ties in any order.
func LevelCounts(ctx context.Context, c *Client) ([]LevelCount, error) {
	rows, err := QueryRows[LevelCount](ctx, c, Query{SQL: LevelCountsSQL})
	if err != nil {
		return nil, fmt.Errorf("counting logs by level: %w", err)
	}
	return rows, nil
}

// TopErrorSources runs TopErrorSourcesSQL: at most ten rows, most errors first; ties in any order.
func TopErrorSources(ctx context.Context, c *Client) ([]SourceErrors, error) {
	rows, err := QueryRows[SourceErrors](ctx, c, Query{SQL: TopErrorSourcesSQL})
	if err != nil {
		return nil, fmt.Errorf("finding top error sources: %w", err)
	}
	return rows, nil
}

// LogsPerMinute runs LogsPerMinuteSQL. Minutes are in UTC, oldest first.
func LogsPerMinute(ctx context.Context, c *Client) ([]MinuteCount, error) {
	type raw struct {
		Minute string `json:"minute"`
		Count  uint64 `json:"log_count"`
	}
	rows, err := QueryRows[raw](ctx, c, Query{SQL: LogsPerMinuteSQL})
	if err != nil {
		return nil, fmt.Errorf("counting logs per minute: %w", err)
	}
	out := make([]MinuteCount, len(rows))
	for i, r := range rows {
		t, err := parseDateTime(r.Minute)
		if err != nil {
			return nil, fmt.Errorf("counting logs per minute: row %d: %w", i+1, err)
		}
		out[i] = MinuteCount{Minute: t, Count: r.Count}
	}
	return out, nil
}

// parseDateTime reads a DateTime or DateTime64 printed with date_time_output_format=iso.
func parseDateTime(s string) (time.Time, error) {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02 15:04:05.999999999"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("parsing date-time %q", s)
}

// RecoverableLinesSQL lists the lines of messages in logs_errors that are valid JSON: the good events of a
// batched message that also held a broken line (Kafka stream mode rejects a message as a whole). Produce
// them again, or insert them with INSERT INTO logs FORMAT JSONEachRow, to recover them.
const RecoverableLinesSQL = `SELECT line
FROM logs_errors
ARRAY JOIN
    splitByChar('\n', raw_message) AS line,
    arrayEnumerate(splitByChar('\n', raw_message)) AS n
WHERE isValidJSON(line)
ORDER BY topic, partition, offset, n`
