package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// serveLines writes lines to the first connection and holds it open until the test ends, so the reader sees
// neither a truncated line nor a hang-up.
func serveLines(t *testing.T, lines [][]byte) string {
	t.Helper()
	ln := sourceListener(t)
	done := make(chan struct{})
	t.Cleanup(func() { close(done); ln.Close() })
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		if _, err := conn.Write(bytes.Join(append(lines, nil), []byte{'\n'})); err != nil {
			t.Errorf("source write: %v", err)
		}
		<-done
	}()
	return ln.Addr().String()
}

// TestIntegrationDeadLetterFileFullDisk runs the reader with --dlq-file on a real filesystem that fills up:
// the summary counts as dead-lettered exactly the records the file holds and the rest failed, the run
// fails with ErrLinesLost, and the failure is one ERROR line, not one per line.
func TestIntegrationDeadLetterFileFullDisk(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	topic, dlqTopic := kafkatest.TopicPair(t, bootstrap, "dlqfull", 1)
	path := filepath.Join(mountTmpfs(t, "64k"), "dlq.jsonl")

	const n = 2000 // about 250 bytes a record: 500 KB of dead letters for 64 KiB
	lines := make([][]byte, n)
	sent := make(map[string]bool, n)
	for i := range lines {
		lines[i] = fmt.Appendf(nil, "not json %05d %s", i, strings.Repeat("x", 150))
		sent[string(lines[i])] = true
	}
	addr := serveLines(t, lines)
	cfg := readerConfig(t, bootstrap, addr, topic, dlqTopic, "--dlq-file", path, "--max-events", strconv.Itoa(n))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	logs := &syncBuffer{}
	var out bytes.Buffer
	sum, err := Run(ctx, cfg, &out, slog.New(slog.NewJSONHandler(logs, nil)))
	if !errors.Is(err, ErrLinesLost) {
		t.Errorf("Run error = %v, want %v (summary %s)", err, ErrLinesLost, out.String())
	}

	recs := fileRecords(t, path, 0)
	t.Logf("summary %+v; the file holds %d records", sum, len(recs))
	if sum.Failed == 0 {
		t.Fatalf("no line failed: the filesystem never filled (summary %+v, %d records)", sum, len(recs))
	}
	if sum.Received != n || !sum.Balanced() {
		t.Errorf("summary = %+v, want %d received and balanced", sum, n)
	}
	if sum.DeadLettered != uint64(len(recs)) {
		t.Errorf("summary dead_lettered = %d, but the file holds %d records", sum.DeadLettered, len(recs))
	}
	if sum.Failed != n-uint64(len(recs)) {
		t.Errorf("summary failed = %d, want %d (%d lines, %d in the file)", sum.Failed, n-len(recs), n, len(recs))
	}
	seen := map[string]bool{}
	for _, r := range recs {
		if r.Line == nil || !sent[*r.Line] || seen[*r.Line] || r.Reason != "invalid_json" {
			t.Errorf("record %+v: not a line that was sent, or repeated", r)
			continue
		}
		seen[*r.Line] = true
	}
	var errs, atClose []map[string]any
	for _, m := range logRecords(t, bytes.NewBuffer(logs.Bytes())) {
		switch {
		case m["level"] == "ERROR":
			errs = append(errs, m)
		case m["msg"] == "dead-letter file still failing at shutdown":
			atClose = append(atClose, m)
		}
	}
	if len(errs) != 1 {
		t.Fatalf("%d ERROR log lines, want 1: %v", len(errs), msgs(errs))
	}
	if e, _ := errs[0]["err"].(string); !strings.Contains(e, "no space left on device") || !strings.Contains(e, path) {
		t.Errorf("ERROR log %v does not name the file and the cause", errs[0])
	}
	if len(atClose) != 1 {
		t.Fatalf("%d log lines saying the failure lasted until shutdown, want 1", len(atClose))
	}
	if lost, _ := atClose[0]["lines_lost"].(float64); uint64(lost) != sum.Failed {
		t.Errorf("shutdown log %v: lines_lost, want %d", atClose[0], sum.Failed)
	}
}
