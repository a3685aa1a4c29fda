package health

import (
	"context"
	"io"
	"log/slog"
)

// Handler returns the Lambda handler: it runs the checks, writes their metrics to metrics (stdout in the
// Lambda) and returns the verdict. A failed check is reported in the verdict and in the HealthOK metric,
// never as a handler error, so the invocation result always carries every check's name and error.
func Handler(c *Checker, metrics io.Writer, log *slog.Logger) func(context.Context) (Verdict, error) {
	return func(ctx context.Context) (Verdict, error) {
		v := c.Run(ctx)
		if err := WriteEMF(metrics, c.cfg.Namespace, c.cfg.Service, v); err != nil {
			log.Error("writing health metrics", "err", err)
		}
		for _, r := range v.Checks {
			if !r.OK {
				log.Warn("health check failed", "check", r.Name, "err", r.Error, "latency_ms", r.LatencyMS)
			}
		}
		return v, nil
	}
}
