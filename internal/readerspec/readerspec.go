// Package readerspec is the one home of every name and default that crosses a process: the Kafka topics,
// the secret and its region, the metric namespace and dimensions, the prefix of the reader's environment
// variables, the port and paths of its HTTP endpoints. The reader's flag defaults, the health and bootstrap
// Lambdas, chctl, the CDK app (container port, ECS health check, the health Lambda's reader URL, the
// stack's defaults) and their tests all take them from here, so they cannot drift apart. It has no
// dependencies, so the CDK app can import it without the reader's Kafka client.
package readerspec

import "strconv"

// The names the deployables share by default: a deployment may set others (flags, the CDK app's context),
// but every default of every process is one of these.
const (
	// Topic is the Kafka topic the reader produces events to and ClickHouse's Kafka table consumes.
	Topic = "logs_4"
	// TopicPartitions is Topic's partition count where the project creates it (the local stack); the
	// benchmark gives its topics as many, so that its figures hold for the pipeline's topic.
	TopicPartitions = 3
	// DLQTopic is the dead-letter topic: lines the reader could not deliver or did not accept.
	DLQTopic = Topic + "_dlq"
	// SecretName is the Secrets Manager secret with the Kafka bootstrap servers and SASL credentials
	// (KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD), read by the reader, the health and
	// bootstrap Lambdas and chctl; MWAA's own secrets backend reads the same secret.
	SecretName = "MWAA_Secrets"
	// Region is the AWS region used when neither a flag nor the SDK's configuration names one.
	Region = "us-east-1"
	// MetricNamespace is the CloudWatch namespace of the reader's and the health Lambda's metrics, which the
	// stack's alarms and dashboard read.
	MetricNamespace = "LogPipeline"
	// MetricService is the Service dimension of a deployment without an environment name (cwmetric.ServiceFor
	// names the others).
	MetricService = "log-pipeline"
)

const (
	// EnvPrefix starts every environment variable that sets a reader flag: --source-addr is
	// READER_SOURCE_ADDR.
	EnvPrefix = "READER_"
	// MetricsPort serves /metrics, /healthz and /readyz.
	MetricsPort = 9108
	// HealthPath answers 200 while the reader can still deliver (liveness: the container health check).
	HealthPath = "/healthz"
	// ReadyPath answers 200 while the reader has its credentials, the brokers accept them, the topics exist
	// at the last check and it reads its sources.
	ReadyPath = "/readyz"
	// AcceptingPath answers 200 from the moment the reader has its credentials, found its topics and opened
	// its listen port until it begins to stop: the load balancer's health check, which routes new sources
	// only to readers that accept them without also replacing every reader while Kafka is away.
	AcceptingPath = "/acceptingz"
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
