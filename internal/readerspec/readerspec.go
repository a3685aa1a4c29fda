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

// TaskMemoryMiB is the memory of the reader's Fargate task.
const TaskMemoryMiB = 1024

// GoMemLimit is the Go runtime's soft memory limit (GOMEMLIMIT) for a reader in a container of memBytes:
// four fifths of it. The rest is for what the Go runtime does not count: librdkafka's C heap (its local
// queue, 8 MiB by default, and its buffers), thread stacks outside Go, and the kernel's socket buffers,
// which the container's limit charges too. The CDK app sets GOMEMLIMIT to it, and the reader, started
// without GOMEMLIMIT, sets it from its cgroup's memory limit the same way.
func GoMemLimit(memBytes int64) int64 { return memBytes / 5 * 4 }

// GoMemLimitEnv is GOMEMLIMIT's value, in bytes, for a container of memMiB.
func GoMemLimitEnv(memMiB int) string { return strconv.FormatInt(GoMemLimit(int64(memMiB)<<20), 10) }
