// Package cwmetric is the CloudWatch metric contract between the reader, which writes its counters as
// Embedded Metric Format records, and what reads them: the stack's alarms and dashboard (infra/) and the
// health Lambda's reader check. Names live here once so that the writer and the readers cannot drift apart.
// The package depends only on readerspec (no Kafka client), so the CDK app can import it.
package cwmetric

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/readerspec"
)

// Namespace and the Service dimension every reader metric carries (the health Lambda uses the same).
// ServiceName is the Service of a deployment without an environment; ServiceFor names the others.
const (
	DefaultNamespace = readerspec.MetricNamespace
	DimService       = "Service"
	DimReason        = "Reason"
	ServiceName      = readerspec.MetricService
)

// ServiceFor is the Service dimension of the deployment of environment env ("" is the one without an
// environment, ServiceName). The environment is part of every metric's identity, so that staging and
// production in one account and region never read, or alarm on, each other's metrics.
func ServiceFor(env string) string {
	if env == "" {
		return ServiceName
	}
	return ServiceName + "-" + env
}

// The reader's metrics. Counters are what happened during the record's interval (sum them over a period);
// gauges are the value at the end of it (take the maximum).
const (
	// LinesReceived counts lines framed from TCP (good and bad).
	LinesReceived = "LinesReceived"
	// EventsDelivered counts events Kafka acknowledged on the main topic.
	EventsDelivered = "EventsDelivered"
	// LinesDeadLettered counts lines stored on the dead-letter path.
	LinesDeadLettered = "LinesDeadLettered"
	// LinesFailed counts lines neither delivered nor dead-lettered: lost.
	LinesFailed = "LinesFailed"
	// DeadLetters counts dead letters by reason (dimensions Service, Reason).
	DeadLetters = "DeadLetters"
	// LinesInFlight is the gauge of lines received and not yet settled.
	LinesInFlight = "LinesInFlight"
	// KafkaQueueBytes is the gauge of message bytes the Kafka client holds.
	KafkaQueueBytes = "KafkaQueueBytes"
	// DeliveryStalled is 1 while lines wait and Kafka acknowledges nothing for --stall-after, else 0.
	DeliveryStalled = "DeliveryStalled"
	// CredentialsUnavailable is 1 while a reader running as a service cannot get its Kafka credentials (the
	// secret missing, unreadable, malformed or in another region) and retries, else 0.
	CredentialsUnavailable = "CredentialsUnavailable"
)

// Metric is one value of an EMF record.
type Metric struct {
	Name  string
	Unit  string // Count, Bytes, None, ...
	Value float64
}

// Record is one EMF log line: metrics sharing one set of dimensions, plus properties that are kept in the
// log event (searchable with Logs Insights) but are not metrics.
type Record struct {
	Namespace  string
	Time       time.Time
	Dimensions map[string]string
	Metrics    []Metric
	Properties map[string]any
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit,omitempty"`
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

// Write writes r as one line of CloudWatch Embedded Metric Format: an "_aws" member with the timestamp in
// milliseconds and one directive naming the namespace, the dimension set and the metrics, whose values (and
// the dimensions' values) are top-level members of the same object. CloudWatch Logs extracts the metrics from
// such a line in any log group, with no agent.
func Write(w io.Writer, r Record) error {
	obj := make(map[string]any, len(r.Properties)+len(r.Dimensions)+len(r.Metrics)+1)
	for k, v := range r.Properties {
		obj[k] = v
	}
	dims := make([]string, 0, len(r.Dimensions))
	for _, k := range slices.Sorted(maps.Keys(r.Dimensions)) {
		obj[k] = r.Dimensions[k]
		dims = append(dims, k)
	}
	ms := make([]emfMetric, 0, len(r.Metrics))
	for _, m := range r.Metrics {
		obj[m.Name] = m.Value
		ms = append(ms, emfMetric{Name: m.Name, Unit: m.Unit})
	}
	obj["_aws"] = emfMeta{Timestamp: r.Time.UnixMilli(), CloudWatchMetrics: []emfDirective{{
		Namespace: r.Namespace, Dimensions: [][]string{dims}, Metrics: ms,
	}}}
	b, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encoding EMF record: %w", err)
	}
	if _, err := w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("writing EMF record: %w", err)
	}
	return nil
}

// Metrics of the health Lambda's ClickHouse check, graphed on the stack's dashboard (dimension Service):
// totals at the time of the check, so their growth between checks is the flow.
const (
	// ClickHouseMessagesRead is how many messages the Kafka engine's consumers have read since they started.
	ClickHouseMessagesRead = "ClickHouseMessagesRead"
	// ClickHouseErrorRows is the row count of logs_errors: messages ClickHouse could not parse.
	ClickHouseErrorRows = "ClickHouseErrorRows"
)
