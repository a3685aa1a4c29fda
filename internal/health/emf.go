package health

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// The metrics the health Lambda emits, in CloudWatch Embedded Metric Format. The stack's alarms watch these
// names, so they are part of the contract with infra/.
const (
	// MetricHealthOK is 1 when every check passed and 0 otherwise (dimension Service).
	MetricHealthOK = "HealthOK"
	// MetricDeadLetterMessages is the dead-letter topic's total message count (dimension Service).
	MetricDeadLetterMessages = "DeadLetterMessages"
	// MetricCheckOK is 1 or 0 per check (dimensions Service, Check).
	MetricCheckOK = "CheckOK"
	// MetricCheckLatency is each check's latency in milliseconds (dimensions Service, Check).
	MetricCheckLatency = "CheckLatency"
	// ServiceDimension is the value of the Service dimension on every metric.
	ServiceDimension = "log-pipeline"
)

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMeta struct {
	Timestamp         int64          `json:"Timestamp"`
	CloudWatchMetrics []emfDirective `json:"CloudWatchMetrics"`
}

// WriteEMF writes v as Embedded Metric Format lines, one for the verdict and one per check. Lambda sends
// stdout to CloudWatch Logs, which turns these lines into metrics without an API call or extra permission.
func WriteEMF(w io.Writer, namespace string, v Verdict) error {
	ts := v.CheckedAt.UnixMilli()
	enc := json.NewEncoder(w)

	summary := map[string]any{
		"Service":      ServiceDimension,
		MetricHealthOK: boolMetric(v.OK),
	}
	metrics := []emfMetric{{Name: MetricHealthOK, Unit: "Count"}}
	if v.DeadLetterMessages != nil {
		summary[MetricDeadLetterMessages] = *v.DeadLetterMessages
		metrics = append(metrics, emfMetric{Name: MetricDeadLetterMessages, Unit: "Count"})
	}
	if v.ClickHouse != nil {
		// The dashboard's last stage of the flow: what ClickHouse's Kafka engine has consumed, and the rows
		// it could not parse.
		var read uint64
		for _, c := range v.ClickHouse.Consumers {
			read += c.MessagesRead
		}
		summary[cwmetric.ClickHouseMessagesRead] = read
		summary[cwmetric.ClickHouseErrorRows] = v.ClickHouse.ErrorRows
		metrics = append(metrics, emfMetric{Name: cwmetric.ClickHouseMessagesRead, Unit: "Count"},
			emfMetric{Name: cwmetric.ClickHouseErrorRows, Unit: "Count"})
	}
	summary["_aws"] = emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
		Namespace: namespace, Dimensions: [][]string{{"Service"}}, Metrics: metrics,
	}}}
	if err := enc.Encode(summary); err != nil {
		return fmt.Errorf("writing health metrics: %w", err)
	}

	for _, r := range v.Checks {
		line := map[string]any{
			"Service":          ServiceDimension,
			"Check":            r.Name,
			MetricCheckOK:      boolMetric(r.OK),
			MetricCheckLatency: r.LatencyMS,
			"_aws": emfMeta{Timestamp: ts, CloudWatchMetrics: []emfDirective{{
				Namespace:  namespace,
				Dimensions: [][]string{{"Service", "Check"}},
				Metrics:    []emfMetric{{Name: MetricCheckOK, Unit: "Count"}, {Name: MetricCheckLatency, Unit: "Milliseconds"}},
			}}},
		}
		if r.Error != "" {
			line["error"] = r.Error
		}
		if err := enc.Encode(line); err != nil {
			return fmt.Errorf("writing metrics of check %s: %w", r.Name, err)
		}
	}
	return nil
}

func boolMetric(ok bool) int {
	if ok {
		return 1
	}
	return 0
}
