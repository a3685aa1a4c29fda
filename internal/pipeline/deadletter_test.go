package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
)

// mountTmpfs mounts a tmpfs of size (mount's syntax, e.g. "64k") on a fresh directory and unmounts it when
// the test ends. A full disk must be a real one: a filesystem that refuses writes with ENOSPC, not a fake
// writer. The test fails, never skips, where mounting is not allowed.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mounting a %s tmpfs for a real full filesystem failed (this test needs root or CAP_SYS_ADMIN to mount): %v: %s",
			size, err, bytes.TrimSpace(out))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmounting the tmpfs: %v: %s", err, bytes.TrimSpace(out))
		}
	})
	return dir
}

// fillFS writes a file of zeros into dir until the filesystem refuses more, leaving free bytes free by
// removing that much again, and returns the file's path.
func fillFS(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var written int64
	chunk := make([]byte, 4096)
	for {
		n, err := f.Write(chunk)
		written += int64(n)
		if err != nil {
			if !strings.Contains(err.Error(), "no space left") {
				t.Fatalf("filling the filesystem: %v", err)
			}
			break
		}
	}
	if err := f.Truncate(max(written-free, 0)); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileRecords parses the dead-letter file: the records (every line must be one, except junk lines
// the test expects) by their line.
func fileRecords(t *testing.T, path string, junk int) []fileRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		t.Errorf("the dead-letter file ends with a partial record: %q", b[max(len(b)-80, 0):])
	}
	var recs []fileRecord
	bad := 0
	for _, line := range bytes.Split(bytes.TrimSuffix(b, []byte{'\n'}), []byte{'\n'}) {
		if len(line) == 0 {
			continue
		}
		var r fileRecord
		if err := json.Unmarshal(line, &r); err != nil {
			bad++
			if bad > junk {
				t.Errorf("the dead-letter file holds a line that is not a record: %q: %v", line, err)
			}
			continue
		}
		recs = append(recs, r)
	}
	if bad != junk {
		t.Errorf("%d lines of the dead-letter file are not records, want %d", bad, junk)
	}
	return recs
}

// TestDeadLetterFileFullDisk fills a real filesystem under the file sink: the ledger counts as dead-lettered
// exactly the records the file holds, the rest failed; the failure is logged once, its end once; the file
// keeps only whole records, also after an earlier run left a partial one.
func TestDeadLetterFileFullDisk(t *testing.T) {
	dir := mountTmpfs(t, "64k")
	path := filepath.Join(dir, "dlq.jsonl")
	// An earlier run stopped in the middle of a record.
	if err := os.WriteFile(path, []byte(`{"time":"2026-11-25T10:00:00Z","reason":"inva`), 0o600); err != nil {
		t.Fatal(err)
	}
	filler := fillFS(t, dir, 16<<10)
	logs := &syncBuffer{}
	counts := &Counts{}
	s, err := newFileSink(path, counts, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	put := func(first, n int) {
		for i := first; i < first+n; i++ {
			dl := DeadLetter{Time: time.Now(), Reason: "invalid_json", Detail: "invalid character 'o'", Source: "127.0.0.1:1",
				Line: fmt.Appendf(nil, "not json %05d %s", i, strings.Repeat("x", 150))}
			if async, err := s.Put(context.Background(), dl); err != nil || !async {
				t.Fatalf("Put = %v, %v; want an asynchronous store", async, err)
			}
		}
	}
	// About 250 bytes a record: 300 records are 75 KB against 16 KiB free.
	put(0, 300)
	s.sync()
	stored, failed := counts.deadLettered.Load(), counts.failed.Load()
	if failed == 0 || stored == 0 {
		t.Fatalf("after 300 records on 16 KiB: %d stored, %d failed; want both (the disk filled)", stored, failed)
	}
	// Space again: later dead letters are stored.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	put(300, 20)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := s.Put(context.Background(), DeadLetter{Line: []byte("late")}); err == nil {
		t.Errorf("Put after Close succeeded")
	}

	recs := fileRecords(t, path, 1)
	if got := counts.deadLettered.Load(); got != uint64(len(recs)) {
		t.Errorf("dead_lettered = %d, the file holds %d records", got, len(recs))
	}
	if got := counts.failed.Load(); got != 320-uint64(len(recs)) {
		t.Errorf("failed = %d, want %d (320 put, %d in the file)", got, 320-len(recs), len(recs))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Line == nil || seen[*r.Line] {
			t.Errorf("record %+v: missing or repeated line", r)
			continue
		}
		seen[*r.Line] = true
	}
	for i := 300; i < 320; i++ {
		if line := fmt.Sprintf("not json %05d %s", i, strings.Repeat("x", 150)); !seen[line] {
			t.Errorf("record %d, put after space was freed, is not in the file", i)
		}
	}
	var errs, recovered int
	for _, m := range logRecords(t, bytes.NewBuffer(logs.Bytes())) {
		switch {
		case m["level"] == "ERROR":
			errs++
			if e, _ := m["err"].(string); !strings.Contains(e, "no space left on device") || !strings.Contains(e, path) {
				t.Errorf("error log %v does not name the file and the cause", m)
			}
		case m["msg"] == "dead-letter file writable again":
			recovered++
			if lost, _ := m["lines_lost"].(float64); uint64(lost) != counts.failed.Load() {
				t.Errorf("recovery log %v: lines_lost, want %d", m, counts.failed.Load())
			}
		}
	}
	if errs != 1 || recovered != 1 {
		t.Errorf("%d ERROR and %d recovery log lines, want 1 and 1:\n%s", errs, recovered, logs.Bytes())
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err == nil {
		t.Logf("%d records stored, %d failed; filesystem %d of %d blocks free at the end", len(recs), counts.failed.Load(), st.Bfree, st.Blocks)
	}
}

// TestDeadLetterFormatRoundTrip: what the sinks write (topic headers, file records) reads back the same,
// the possibly_persisted mark and the sample's true length included; older records without the new fields
// read as whole lines, not marked.
func TestDeadLetterFormatRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 25, 10, 0, 0, 123456789, time.UTC)
	for _, dl := range []DeadLetter{
		{Time: at, Reason: ReasonDeliveryFailed, Detail: "Local: Message timed out", Source: "delivery-report",
			Line: []byte(`{"eventId":1}`), LineBytes: 13, PossiblyPersisted: true},
		{Time: at, Reason: "oversized_line", Detail: "line of 2 MiB", Source: "127.0.0.1:1", Line: []byte("xxxx"), LineBytes: 2 << 20},
		{Time: at, Reason: "invalid_utf8", Line: []byte{0xff, 0xfe}, LineBytes: 2},
	} {
		msg := kafkaout.Message{Value: dl.Line, Headers: deadLetterHeaders(dl)}
		if got := deadLetterFromMessage(msg); fmt.Sprint(got) != fmt.Sprint(dl) {
			t.Errorf("topic round trip = %+v, want %+v", got, dl)
		}
		_, marked := msg.Header(kafkaout.HeaderPossiblyPersisted)
		if marked != dl.PossiblyPersisted {
			t.Errorf("header %s present = %v for %+v", kafkaout.HeaderPossiblyPersisted, marked, dl)
		}
		b, err := json.Marshal(newFileRecord(dl))
		if err != nil {
			t.Fatal(err)
		}
		var rec fileRecord
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatal(err)
		}
		if got := rec.deadLetter(); fmt.Sprint(got) != fmt.Sprint(dl) {
			t.Errorf("file round trip of %s = %+v, want %+v", b, got, dl)
		}
	}
	var old fileRecord
	if err := json.Unmarshal([]byte(`{"time":"2026-11-25T10:00:00Z","reason":"delivery_failed","line":"abc"}`), &old); err != nil {
		t.Fatal(err)
	}
	if got := old.deadLetter(); got.LineBytes != 3 || got.PossiblyPersisted {
		t.Errorf("an older record reads as %+v, want a whole line of 3 bytes, not marked", got)
	}
	if got := deadLetterFromMessage(kafkaout.Message{Value: []byte("abc"), Time: at}); got.LineBytes != 3 || got.PossiblyPersisted || !got.Time.Equal(at) {
		t.Errorf("an older topic record reads as %+v, want a whole line of 3 bytes, not marked, at its timestamp", got)
	}
}
