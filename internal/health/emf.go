package health

import (
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
)

// WriteEMF writes v as Embedded Metric Format lines, one for the verdict and one per check, in namespace
// with the Service dimension service (Config.Service). Lambda sends stdout to CloudWatch Logs, which turns
// these lines into metrics without an API call or extra permission.
func WriteEMF(w io.Writer, namespace, service string, v Verdict) error {
	summary := cwmetric.Record{
		Namespace:  namespace,
		Time:       v.CheckedAt,
		Dimensions: map[string]string{cwmetric.DimService: service},
		Metrics:    []cwmetric.Metric{{Name: MetricHealthOK, Unit: "Count", Value: boolMetric(v.OK)}},
	}
	if v.DeadLetterMessages != nil {
		summary.Metrics = append(summary.Metrics, cwmetric.Metric{Name: MetricDeadLetterMessages, Unit: "Count", Value: float64(*v.DeadLetterMessages)})
	}
	if v.ClickHouse != nil {
		// The dashboard's last stage of the flow: what ClickHouse's Kafka engine has consumed, and the rows
		// it could not parse.
		var read uint64
		for _, c := range v.ClickHouse.Consumers {
			read += c.MessagesRead
		}
		summary.Metrics = append(summary.Metrics,
			cwmetric.Metric{Name: cwmetric.ClickHouseMessagesRead, Unit: "Count", Value: float64(read)},
			cwmetric.Metric{Name: cwmetric.ClickHouseErrorRows, Unit: "Count", Value: float64(v.ClickHouse.ErrorRows)})
	}
	if err := cwmetric.Write(w, summary); err != nil {
		return fmt.Errorf("writing health metrics: %w", err)
	}

	for _, r := range v.Checks {
		line := cwmetric.Record{
			Namespace:  namespace,
			Time:       v.CheckedAt,
			Dimensions: map[string]string{cwmetric.DimService: service, "Check": r.Name},
			Metrics: []cwmetric.Metric{
				{Name: MetricCheckOK, Unit: "Count", Value: boolMetric(r.OK)},
				{Name: MetricCheckLatency, Unit: "Milliseconds", Value: float64(r.LatencyMS)},
			},
		}
		if r.Error != "" {
			line.Properties = map[string]any{"error": r.Error}
		}
		if err := cwmetric.Write(w, line); err != nil {
			return fmt.Errorf("writing metrics of check %s: %w", r.Name, err)
		}
	}
	return nil
}

func boolMetric(ok bool) float64 {
	if ok {
		return 1
	}
	return 0
}
