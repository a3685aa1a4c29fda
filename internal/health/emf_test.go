package health

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// TestWriteEMF checks the lines against what CloudWatch needs to extract metrics: an _aws directive whose
// dimensions and metric names are top-level members of the same line.
func TestWriteEMF(t *testing.T) {
	dlq := int64(7)
	v := Verdict{
		OK:        false,
		CheckedAt: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC),
		Checks: []Result{
			failed(CheckSecret, nil),
			failed(CheckBrokers, errors.New("kafka authentication failed")),
		},
		DeadLetterMessages: &dlq,
	}
	v.Checks[0].LatencyMS = 12
	var buf bytes.Buffer
	if err := WriteEMF(&buf, "LogPipeline", "log-pipeline-staging", v); err != nil {
		t.Fatal(err)
	}
	var lines []map[string]any
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %q is not JSON: %v", sc.Text(), err)
		}
		lines = append(lines, m)
	}
	if len(lines) != 3 {
		t.Fatalf("WriteEMF wrote %d lines, want 3 (verdict + 2 checks)", len(lines))
	}
	for i, m := range lines {
		aws, ok := m["_aws"].(map[string]any)
		if !ok {
			t.Fatalf("line %d has no _aws directive: %v", i, m)
		}
		if ts := aws["Timestamp"].(float64); int64(ts) != v.CheckedAt.UnixMilli() {
			t.Errorf("line %d Timestamp = %v, want %d", i, ts, v.CheckedAt.UnixMilli())
		}
		d := aws["CloudWatchMetrics"].([]any)[0].(map[string]any)
		if d["Namespace"] != "LogPipeline" {
			t.Errorf("line %d Namespace = %v", i, d["Namespace"])
		}
		for _, dims := range d["Dimensions"].([]any) {
			for _, dim := range dims.([]any) {
				if _, ok := m[dim.(string)]; !ok {
					t.Errorf("line %d: dimension %v is not a member of the line", i, dim)
				}
			}
		}
		for _, metric := range d["Metrics"].([]any) {
			name := metric.(map[string]any)["Name"].(string)
			if _, ok := m[name].(float64); !ok {
				t.Errorf("line %d: metric %s has no numeric value: %v", i, name, m[name])
			}
		}
	}
	if lines[0][MetricHealthOK] != 0.0 || lines[0][MetricDeadLetterMessages] != 7.0 || lines[0]["Service"] != "log-pipeline-staging" {
		t.Errorf("verdict line = %v, want HealthOK 0, DeadLetterMessages 7, Service log-pipeline-staging", lines[0])
	}
	if lines[1]["Check"] != CheckSecret || lines[1][MetricCheckOK] != 1.0 || lines[1][MetricCheckLatency] != 12.0 {
		t.Errorf("secret line = %v", lines[1])
	}
	if lines[2]["Check"] != CheckBrokers || lines[2][MetricCheckOK] != 0.0 || lines[2]["error"] != "kafka authentication failed" {
		t.Errorf("brokers line = %v", lines[2])
	}
}

func BenchmarkWriteEMF(b *testing.B) {
	v := Verdict{CheckedAt: time.Now(), Checks: []Result{failed(CheckSecret, nil), failed(CheckBrokers, nil), failed(CheckTopic, nil)}}
	var buf bytes.Buffer
	for b.Loop() {
		buf.Reset()
		if err := WriteEMF(&buf, "LogPipeline", "log-pipeline-staging", v); err != nil {
			b.Fatal(err)
		}
	}
}

// TestWriteEMFClickHouse: with the ClickHouse check's status, the verdict's line carries what the Kafka
// engine consumed (all consumers) and the unparsable rows, for the dashboard.
func TestWriteEMFClickHouse(t *testing.T) {
	v := Verdict{OK: true, CheckedAt: time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC), ClickHouse: &clickhouse.KafkaTableStatus{
		Consumers: []clickhouse.KafkaConsumer{{ID: "a", MessagesRead: 40}, {ID: "b", MessagesRead: 2}}, ErrorRows: 3,
	}}
	var b bytes.Buffer
	if err := WriteEMF(&b, "NS", "S", v); err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(b.String(), "\n", 2)[0]), &rec); err != nil {
		t.Fatal(err)
	}
	if rec[cwmetric.ClickHouseMessagesRead] != 42.0 || rec[cwmetric.ClickHouseErrorRows] != 3.0 {
		t.Errorf("verdict line = %v, want 42 messages read and 3 error rows", rec)
	}
	names := fmt.Sprint(rec["_aws"].(map[string]any)["CloudWatchMetrics"])
	for _, n := range []string{cwmetric.ClickHouseMessagesRead, cwmetric.ClickHouseErrorRows} {
		if !strings.Contains(names, n) {
			t.Errorf("directive %s does not declare %s", names, n)
		}
	}
}
