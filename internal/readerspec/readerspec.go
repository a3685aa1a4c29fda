// Package readerspec holds the facts about the reader that other deployables build on: the prefix of its
// environment variables, the port and paths of its HTTP endpoints. The reader's flag defaults, the CDK app
// (container port, ECS health check, the health Lambda's reader URL) and their tests all take them from
// here, so they cannot drift apart. It has no dependencies, so the CDK app can import it without the
// reader's Kafka client.
package readerspec

import "strconv"

const (
	// EnvPrefix starts every environment variable that sets a reader flag: --source-addr is
	// READER_SOURCE_ADDR.
	EnvPrefix = "READER_"
	// MetricsPort serves /metrics, /healthz and /readyz.
	MetricsPort = 9108
	// HealthPath answers 200 while the reader can still deliver.
	HealthPath = "/healthz"
)

// MetricsAddr is the metrics listen address on host (e.g. "127.0.0.1" locally, "0.0.0.0" in a container).
func MetricsAddr(host string) string { return host + ":" + strconv.Itoa(MetricsPort) }
