package harness

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
)

// Row is one scenario's outcome: sent (written by the source), delivered (distinct eventIds on the topic),
// dead-lettered, failed (the reader's own count of lines neither delivered nor dead-lettered), lost and
// duplicated, the reader's peak resident memory (0: not measured), and what else the scenario measured.
type Row struct {
	Scenario                                                string
	Sent, Delivered, DeadLettered, Failed, Lost, Duplicated uint64
	PeakRSS                                                 uint64 // bytes
	Notes                                                   string
}

// TableRow is one scenario's outcome at the ClickHouse stage: the events on the topic, the rows the logs
// table stores (copies included) and what users get when they read it the documented way.
type TableRow struct {
	Scenario string
	// Events is how many distinct events the topic holds (the reader's delivered stream).
	Events uint64
	Tally  TableTally
	Notes  string
}

// Report collects rows from concurrent tests and renders them as Markdown tables.
type Report struct {
	mu     sync.Mutex
	rows   []Row
	tables []TableRow
}

// AddTable records a ClickHouse-stage row.
func (r *Report) AddTable(row TableRow) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.tables = append(r.tables, row)
}

// Add records a row.
func (r *Report) Add(row Row) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rows = append(r.rows, row)
}

// Markdown renders the table, rows ordered by scenario name (which starts with the scenario's number), and
// in the order they were added within one scenario.
func (r *Report) Markdown(title string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	slices.SortStableFunc(r.rows, func(a, b Row) int {
		return strings.Compare(strings.SplitN(a.Scenario, " ", 2)[0], strings.SplitN(b.Scenario, " ", 2)[0])
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%s\n\n", title)
	b.WriteString("| scenario | sent | delivered | dead-lettered | failed | lost | duplicated | peak RSS | notes |\n")
	b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
	for _, row := range r.rows {
		rss := "–"
		if row.PeakRSS > 0 {
			rss = fmt.Sprintf("%.0f MiB", float64(row.PeakRSS)/(1<<20))
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", row.Scenario, row.Sent, row.Delivered,
			row.DeadLettered, row.Failed, row.Lost, row.Duplicated, rss, strings.ReplaceAll(row.Notes, "|", "/"))
	}
	if len(r.tables) > 0 {
		b.WriteString("\nAt the ClickHouse stage (the table users query, read the documented way):\n\n")
		b.WriteString("| scenario | events on the topic | rows stored | rows in the answer | distinct | lost | duplicated | example queries | notes |\n")
		b.WriteString("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n")
		for _, row := range r.tables {
			q := "exact"
			if len(row.Tally.QueryErrors) > 0 {
				q = strings.Join(row.Tally.QueryErrors, "; ")
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d | %d | %s | %s |\n", row.Scenario, row.Events,
				row.Tally.RawRows, row.Tally.Rows, row.Tally.Distinct, row.Tally.Lost, row.Tally.Duplicated,
				strings.ReplaceAll(q, "|", "/"), strings.ReplaceAll(row.Notes, "|", "/"))
		}
	}
	return b.String()
}

// Write renders the table to path (when not empty) and to stdout.
func (r *Report) Write(path, title string) error {
	md := r.Markdown(title)
	fmt.Print("\n" + md)
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, []byte(md), 0o644); err != nil {
		return fmt.Errorf("writing report: %w", err)
	}
	return nil
}
