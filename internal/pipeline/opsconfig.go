package pipeline

import (
	"flag"
	"fmt"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// OpsConfig says how the reader watches itself: when a delivery stall is logged and when it fails /healthz,
// how often lasting trouble is logged again, and whether counters go out as CloudWatch Embedded Metric Format.
type OpsConfig struct {
	// StallAfter is how long lines may wait with no acknowledgement from Kafka before the delivery counts as
	// stalled: logged once (WARN), the DeliveryStalled gauge set (--stall-after, default 10s).
	StallAfter time.Duration
	// UnhealthyAfter is how long a stall lasts before /healthz fails (--unhealthy-after, default 5m, librdkafka's
	// message timeout: by then the waiting lines are failing anyway, so replacing the task costs nothing more).
	UnhealthyAfter time.Duration
	// LogInterval is how often lasting trouble (a stall, a dead-letter burst, refused connections) is logged
	// again, and how long a burst must be quiet to count as over (--log-interval, default 1m).
	LogInterval time.Duration
	// EMFInterval, when positive, writes the counters to stdout as EMF records this often (--emf-interval,
	// default 0: off; the CDK app turns it on).
	EMFInterval time.Duration
	// EMFNamespace is the CloudWatch namespace of those records (--emf-namespace, default LogPipeline).
	EMFNamespace string
	// EMFService is their Service dimension (--emf-service, default log-pipeline), to tell deployments
	// sharing an account apart.
	EMFService string
}

// RegisterFlags registers the OpsConfig flags on fs with their defaults.
func (c *OpsConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.DurationVar(&c.StallAfter, "stall-after", 10*time.Second, "lines waiting this long with no Kafka acknowledgement count as a stalled delivery (logged, metric)")
	fs.DurationVar(&c.UnhealthyAfter, "unhealthy-after", 5*time.Minute, "a stall lasting this long fails /healthz")
	fs.DurationVar(&c.LogInterval, "log-interval", time.Minute, "how often a lasting stall, dead-letter burst, connection refusals or repeated TLS refusals are logged again; a burst ends after an interval without any")
	fs.DurationVar(&c.EMFInterval, "emf-interval", 0, "write counters to stdout as CloudWatch Embedded Metric Format records this often (0: off)")
	fs.StringVar(&c.EMFNamespace, "emf-namespace", cwmetric.DefaultNamespace, "CloudWatch namespace of the EMF records")
	fs.StringVar(&c.EMFService, "emf-service", cwmetric.ServiceName, "Service dimension of the EMF records")
}

// Validate reports the first setting that cannot work, naming its flag.
func (c OpsConfig) Validate() error {
	switch {
	case c.StallAfter <= 0:
		return fmt.Errorf("%w: --stall-after must be positive", ErrInvalidConfig)
	case c.UnhealthyAfter < c.StallAfter:
		return fmt.Errorf("%w: --unhealthy-after %s is shorter than --stall-after %s", ErrInvalidConfig, c.UnhealthyAfter, c.StallAfter)
	case c.LogInterval <= 0:
		return fmt.Errorf("%w: --log-interval must be positive", ErrInvalidConfig)
	case c.EMFInterval < 0:
		return fmt.Errorf("%w: --emf-interval is negative", ErrInvalidConfig)
	case c.EMFInterval > 0 && c.EMFNamespace == "":
		return fmt.Errorf("%w: --emf-namespace is empty", ErrInvalidConfig)
	case c.EMFInterval > 0 && c.EMFService == "":
		return fmt.Errorf("%w: --emf-service is empty", ErrInvalidConfig)
	}
	return nil
}
