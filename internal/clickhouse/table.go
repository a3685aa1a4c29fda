package clickhouse

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// WriteTable prints rows under header as an aligned text table, numbers right-aligned, e.g.
//
//	level    count
//	-------  -----
//	Info       612
//	Warning    201
func WriteTable(w io.Writer, header []string, rows [][]string) error {
	widths := make([]int, len(header))
	numeric := make([]bool, len(header))
	for i, h := range header {
		widths[i] = utf8.RuneCountInString(h)
		numeric[i] = len(rows) > 0
	}
	for _, r := range rows {
		for i := range header {
			cell := cellAt(r, i)
			widths[i] = max(widths[i], utf8.RuneCountInString(cell))
			if _, err := strconv.ParseFloat(cell, 64); err != nil {
				numeric[i] = false
			}
		}
	}
	var b strings.Builder
	line := func(cells func(i int) string, pad func(i int) string) {
		for i := range header {
			if i > 0 {
				b.WriteString("  ")
			}
			c := cells(i)
			fill := strings.Repeat(pad(i), widths[i]-utf8.RuneCountInString(c))
			if numeric[i] {
				b.WriteString(fill + c)
			} else if i == len(header)-1 {
				b.WriteString(c)
			} else {
				b.WriteString(c + fill)
			}
		}
		b.WriteString("\n")
	}
	space := func(int) string { return " " }
	line(func(i int) string { return header[i] }, space)
	line(func(i int) string { return strings.Repeat("-", widths[i]) }, space)
	for _, r := range rows {
		line(func(i int) string { return cellAt(r, i) }, space)
	}
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("writing table: %w", err)
	}
	return nil
}

func cellAt(r []string, i int) string {
	if i < len(r) {
		return r[i]
	}
	return ""
}

// LevelCountsTable lays rows out for WriteTable.
func LevelCountsTable(rows []LevelCount) ([]string, [][]string) {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r.Level, strconv.FormatUint(r.Count, 10)}
	}
	return []string{"level", "count"}, out
}

// TopErrorSourcesTable lays rows out for WriteTable.
func TopErrorSourcesTable(rows []SourceErrors) ([]string, [][]string) {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r.Source, strconv.FormatUint(r.ErrorCount, 10)}
	}
	return []string{"source", "error_count"}, out
}

// LogsPerMinuteTable lays rows out for WriteTable.
func LogsPerMinuteTable(rows []MinuteCount) ([]string, [][]string) {
	out := make([][]string, len(rows))
	for i, r := range rows {
		out[i] = []string{r.Minute.UTC().Format(time.DateTime), strconv.FormatUint(r.Count, 10)}
	}
	return []string{"minute", "log_count"}, out
}
