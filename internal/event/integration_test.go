package event

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// logsStructure is the column list of the logs table, as the Kafka engine reads JSONEachRow into it.
const logsStructure = "eventId UInt32, level String, source String, timestamp DateTime64(6), computer String, user String, message String"

// chRow is what ClickHouse made of one line.
type chRow struct {
	EventID   uint32 `json:"eventId"`
	Level     string `json:"level"`
	Source    string `json:"source"`
	Timestamp string `json:"ts"`
	Computer  string `json:"computer"`
	User      string `json:"user"`
	Message   string `json:"message"`
	ValidUTF8 uint8  `json:"utf8"`
}

// parseInClickHouse asks the real engine to read data (NDJSON) as JSONEachRow into the logs columns, with
// default settings, and returns the rows, or the engine's error.
func parseInClickHouse(t *testing.T, data string) ([]chRow, error) {
	t.Helper()
	st := stacktest.Load(t)
	literal := strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(data)
	query := fmt.Sprintf(`SELECT eventId, level, source, toString(timestamp) AS ts, computer, user, message,
		isValidUTF8(message) AS utf8 FROM format(JSONEachRow, '%s', '%s') FORMAT JSONEachRow`, logsStructure, literal)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, st.Get(t, "CLICKHOUSE_URL"), strings.NewReader(query))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(st.Get(t, "CLICKHOUSE_USER"), st.Get(t, "CLICKHOUSE_PASSWORD"))
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("querying ClickHouse: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("reading ClickHouse's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("ClickHouse: %s: %s", resp.Status, bytes.TrimSpace(body))
	}
	var rows []chRow
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var r chRow
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("decoding ClickHouse row %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// wantRow is what a strictly valid line must become in ClickHouse: the values encoding/json reads, with the
// timestamp as DateTime64(6) prints it.
func wantRow(t *testing.T, line string) chRow {
	t.Helper()
	var w wire
	if err := json.Unmarshal([]byte(line), &w); err != nil {
		t.Fatalf("decoding %q: %v", line, err)
	}
	ts := strings.Replace(w.Timestamp, "T", " ", 1)
	if len(ts) == 19 {
		ts += "."
	}
	ts += strings.Repeat("0", 26-len(ts))
	return chRow{EventID: w.EventID, Level: w.Level, Source: w.Source, Timestamp: ts, Computer: w.Computer, User: w.User,
		Message: w.Message, ValidUTF8: 1}
}

// Every line Strict accepts is one ClickHouse's JSONEachRow reads, with default settings, into exactly the
// values the line holds.
func TestIntegrationClickHouseReadsStrictLines(t *testing.T) {
	strict := NewValidator(Strict)
	var lines []string
	for _, tc := range validateCases() {
		if tc.strict == ok {
			lines = append(lines, tc.line)
		}
	}
	for _, l := range sampleLines(300) {
		lines = append(lines, string(l))
	}
	for _, l := range lines {
		if err := strict.Validate([]byte(l)); err != nil {
			t.Fatalf("case line no longer strictly valid: %v", err)
		}
	}
	// The generated lines go in one batch, as the Kafka engine would read a multi-event message.
	rows, err := parseInClickHouse(t, strings.Join(lines, "\n"))
	if err != nil {
		t.Fatalf("ClickHouse rejects strictly valid lines: %v", err)
	}
	if len(rows) != len(lines) {
		t.Fatalf("ClickHouse read %d rows from %d lines", len(rows), len(lines))
	}
	for i, l := range lines {
		if want := wantRow(t, l); rows[i] != want {
			t.Errorf("ClickHouse read %.150q as\n%+v, want\n%+v", l, rows[i], want)
		}
	}
}

// The lines Strict rejects for the sake of ClickHouse are ones ClickHouse fails on (which would fail the
// whole Kafka message they travel in) or silently reads as something else. If ClickHouse's behaviour changes,
// these tests say which rule of Strict lost its reason.
func TestIntegrationClickHouseMishandlesWhatStrictRejects(t *testing.T) {
	failing := []struct{ name, line string }{
		{"negative eventId", with("eventId", `-1`)},
		{"fractional eventId", with("eventId", `1.0`)},
		{"exponent eventId", with("eventId", `1e3`)},
		{"duplicate required key before the last column", line("eventId", `1`, "level", `"Info"`, "level", `"Error"`,
			"source", `"s"`, "timestamp", `"2026-11-25 10:11:12"`, "computer", `"c"`, "user", `"u"`, "message", `"m"`)},
		{"lone high surrogate", with("message", `"a\ud83d b"`)},
		{"escaped timestamp", withTS(`\u0032026-11-25 10:11:12`)},
		{"no such date", withTS("2026-02-30 10:11:12")},
		{"not JSON", `{"eventId":1,"level":"Info" oops}`},
	}
	for _, tc := range failing {
		t.Run(tc.name, func(t *testing.T) {
			if NewValidator(Strict).Validate([]byte(tc.line)) == nil {
				t.Fatalf("Strict accepts %q", tc.line)
			}
			if rows, err := parseInClickHouse(t, tc.line); err == nil {
				t.Errorf("ClickHouse read %q as %+v; Strict rejects it because ClickHouse should fail on it", tc.line, rows)
			}
		})
	}
	corrupted := []struct {
		name, line string
		bad        func(chRow) bool
	}{
		{"eventId above UInt32", with("eventId", `4294967296`), func(r chRow) bool { return r.EventID == 0 }},
		{"huge eventId wraps", with("eventId", strings.Repeat("9", 23)), func(r chRow) bool { return r.EventID != 0 }},
		{"lone low surrogate stored as invalid UTF-8", with("message", `"\ude00"`), func(r chRow) bool { return r.ValidUTF8 == 0 }},
		{"eventId as a string is read as a number", with("eventId", `"42"`), func(r chRow) bool { return r.EventID == 42 }},
		{"null eventId becomes 0", with("eventId", `null`), func(r chRow) bool { return r.EventID == 0 }},
		{"duplicate required key after the last column is ignored", line(append(good("", ""), "level", `"Error"`)...),
			func(r chRow) bool { return r.Level == "Info" }},
	}
	for _, tc := range corrupted {
		t.Run(tc.name, func(t *testing.T) {
			if NewValidator(Strict).Validate([]byte(tc.line)) == nil {
				t.Fatalf("Strict accepts %q", tc.line)
			}
			rows, err := parseInClickHouse(t, tc.line)
			if err != nil || len(rows) != 1 || !tc.bad(rows[0]) {
				t.Errorf("ClickHouse read %q as %+v, %v: no longer the silent misreading Strict guards against", tc.line, rows, err)
			}
		})
	}
}
