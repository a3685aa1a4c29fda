package logsource

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// acceptOnce listens on a free port and returns its address and the bytes of the first connection.
func acceptOnce(t *testing.T) (string, <-chan []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	got := make(chan []byte, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		defer conn.Close()
		data, _ := io.ReadAll(conn)
		got <- data
	}()
	return ln.Addr().String(), got
}

func TestRunCLIConnectMode(t *testing.T) {
	addr, got := acceptOnce(t)
	times := filepath.Join(t.TempDir(), "send-times.csv")
	t.Setenv("LOGSOURCE_SEND_TIMES_EVERY", "10") // every flag has an environment twin
	var stdout, stderr bytes.Buffer
	err := RunCLI(t.Context(), []string{"--connect", addr, "--count", "50", "--first-id", "7", "--seed", "9",
		"--time-mode", "synthetic", "--start", "2026-11-25T10:11:12Z", "--bad", "empty,invalid_json", "--bad-every", "10", "--send-times", times},
		&stdout, &stderr)
	if err != nil {
		t.Fatalf("RunCLI: %v\nstderr: %s", err, stderr.String())
	}
	data := <-got
	var summary map[string]any
	if err := json.Unmarshal(stdout.Bytes(), &summary); err != nil || bytes.Count(stdout.Bytes(), []byte("\n")) != 1 {
		t.Fatalf("stdout %q is not one JSON line: %v", stdout.String(), err)
	}
	want := map[string]any{"sent": 50.0, "first_event_id": 7.0, "last_event_id": 56.0, "bytes": float64(len(data)),
		"bad_sent": map[string]any{"empty": 3.0, "invalid_json": 2.0}}
	for k, v := range want {
		if jv, _ := json.Marshal(summary[k]); string(jv) != mustJSON(t, v) {
			t.Errorf("summary %s = %v, want %v (summary %s)", k, summary[k], v, stdout.String())
		}
	}
	if _, ok := summary["seconds"].(float64); !ok {
		t.Errorf("summary has no seconds: %s", stdout.String())
	}
	ids := eventIDs(t, bytes.ReplaceAll(bytes.ReplaceAll(data, []byte("\n\n"), []byte("\n")), // drop the empty lines
		badLines(testStart, 10)[classIndex[BadInvalidJSON]], nil))
	checkSequence(t, ids, 7, 50)
	csv, err := os.ReadFile(times)
	if err != nil {
		t.Fatal(err)
	}
	if rows := strings.Count(string(csv), "\n"); rows != 6 { // header + events 0, 10, 20, 30, 40
		t.Errorf("send times file has %d lines, want 6:\n%s", rows, csv)
	}
	for _, l := range strings.Split(strings.TrimSpace(stderr.String()), "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("stderr line is not a JSON log record: %q", l)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestRunCLIUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no mode", []string{"--count", "1"}, "exactly one of --listen and --connect"},
		{"both modes", []string{"--listen", "127.0.0.1:0", "--connect", "127.0.0.1:1"}, "exactly one"},
		{"unknown flag", []string{"--nope"}, "flag provided but not defined"},
		{"unknown class", []string{"--listen", "127.0.0.1:0", "--bad", "nope", "--bad-every", "1"}, `"nope"`},
		{"bad without every", []string{"--listen", "127.0.0.1:0", "--bad", "empty"}, "bad-every"},
		{"first id too large", []string{"--listen", "127.0.0.1:0", "--first-id", "4294967296"}, "first-id"},
		{"bad start", []string{"--listen", "127.0.0.1:0", "--time-mode", "synthetic", "--start", "yesterday"}, "--start"},
		{"start on the wall clock", []string{"--listen", "127.0.0.1:0", "--start", "2026-11-25T10:11:12Z"}, "--time-mode synthetic"},
		{"unknown time mode", []string{"--listen", "127.0.0.1:0", "--time-mode", "lunar"}, "--time-mode"},
		{"stray argument", []string{"--listen", "127.0.0.1:0", "extra"}, "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := RunCLI(t.Context(), tc.args, &stdout, &stderr)
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("RunCLI(%q) = %v, want a usage error", tc.args, err)
			}
			if !strings.Contains(stderr.String(), tc.want) {
				t.Errorf("stderr %q does not explain %q", stderr.String(), tc.want)
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout = %q, want nothing for a usage error", stdout.String())
			}
		})
	}
	t.Run("bad environment value", func(t *testing.T) {
		t.Setenv("LOGSOURCE_RATE", "fast")
		var stdout, stderr bytes.Buffer
		err := RunCLI(t.Context(), []string{"--listen", "127.0.0.1:0"}, &stdout, &stderr)
		if !errors.Is(err, ErrUsage) || !strings.Contains(stderr.String(), "LOGSOURCE_RATE") {
			t.Errorf("RunCLI with LOGSOURCE_RATE=fast = %v, stderr %q; want a usage error naming the variable", err, stderr.String())
		}
	})
}
