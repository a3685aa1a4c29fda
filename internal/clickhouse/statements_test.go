package clickhouse

import (
	"slices"
	"testing"
)

func TestSplitStatements(t *testing.T) {
	tests := []struct {
		name   string
		script string
		want   []string
	}{
		{"one without semicolon", "SELECT 1", []string{"SELECT 1"}},
		{"comments and several lines", "-- count\nSELECT 1;\n-- next\nSELECT 2\nFROM t;\n",
			[]string{"SELECT 1", "SELECT 2\nFROM t"}},
		{"semicolon in a string", "SELECT 'a;b' AS x; SELECT 2", []string{"SELECT 'a;b' AS x", "SELECT 2"}},
		{"escaped and doubled quotes", `SELECT 'it\'s;', 'a''b;c'; SELECT "x;y"`, []string{`SELECT 'it\'s;', 'a''b;c'`, `SELECT "x;y"`}},
		{"comment marker in a string", "SELECT '--x' AS c -- real comment; not a statement\n", []string{"SELECT '--x' AS c"}},
		{"block and hash comments", "SELECT /* ; */ 1; # gone;\nSELECT 2", []string{"SELECT   1", "SELECT 2"}},
		{"only comments and blanks", "-- nothing\n ; ;\n", nil},
		{"unterminated string", "SELECT 'abc", []string{"SELECT 'abc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := SplitStatements(tt.script); !slices.Equal(got, tt.want) {
				t.Errorf("SplitStatements(%q) = %q, want %q", tt.script, got, tt.want)
			}
		})
	}
}
