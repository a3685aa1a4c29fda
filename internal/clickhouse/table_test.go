package clickhouse

import (
	"strings"
	"testing"
	"time"
)

func TestWriteTable(t *testing.T) {
	tests := []struct {
		name   string
		header []string
		rows   [][]string
		want   string
	}{
		{
			name:   "numbers right-aligned",
			header: []string{"level", "count"},
			rows:   [][]string{{"Info", "612"}, {"Warning", "21"}},
			want:   "level    count\n-------  -----\nInfo       612\nWarning     21\n",
		},
		{
			name:   "no rows",
			header: []string{"source", "error_count"},
			want:   "source  error_count\n------  -----------\n",
		},
		{
			name:   "wide runes and short rows",
			header: []string{"a", "b"},
			rows:   [][]string{{"ü", "x"}, {"long value"}},
			want:   "a           b\n----------  -\nü           x\nlong value  \n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			if err := WriteTable(&b, tt.header, tt.rows); err != nil {
				t.Fatalf("WriteTable() error = %v", err)
			}
			if b.String() != tt.want {
				t.Errorf("WriteTable() =\n%q\nwant\n%q", b.String(), tt.want)
			}
		})
	}
}

func TestTables(t *testing.T) {
	m := time.Date(2026, 11, 25, 10, 11, 0, 0, time.UTC)
	h, r := LogsPerMinuteTable([]MinuteCount{{Minute: m, Count: 7}})
	if h[0] != "minute" || r[0][0] != "2026-11-25 10:11:00" || r[0][1] != "7" {
		t.Errorf("LogsPerMinuteTable = %q %q", h, r)
	}
	h, r = LevelCountsTable([]LevelCount{{"Error", 3}})
	if h[1] != "count" || r[0][0] != "Error" || r[0][1] != "3" {
		t.Errorf("LevelCountsTable = %q %q", h, r)
	}
	h, r = TopErrorSourcesTable([]SourceErrors{{"auth", 9}})
	if h[1] != "error_count" || r[0][0] != "auth" || r[0][1] != "9" {
		t.Errorf("TopErrorSourcesTable = %q %q", h, r)
	}
}

func TestParseDateTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-25T10:11:00Z", time.Date(2026, 11, 25, 10, 11, 0, 0, time.UTC), true},
		{"2026-11-25T10:11:12.123456Z", time.Date(2026, 11, 25, 10, 11, 12, 123456000, time.UTC), true},
		{"2026-11-25 10:11:12", time.Date(2026, 11, 25, 10, 11, 12, 0, time.UTC), true},
		{"yesterday", time.Time{}, false},
	}
	for _, tt := range tests {
		got, err := parseDateTime(tt.in)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseDateTime(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}
