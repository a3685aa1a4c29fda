package health

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
)

// checkReaderECS checks the reader without reaching it, so it works in connect mode (where the reader has no
// stable address) as in listen mode: the ECS service must run all its desired tasks, and the reader's own
// EMF metrics must show it alive and not stalled within the window. Each failure is named: ErrReaderStopped,
// ErrReaderTasksMissing, ErrReaderSilent or ErrReaderStalled.
func (c *Checker) checkReaderECS(ctx context.Context) error {
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(c.cfg.Region), config.WithRetryMaxAttempts(2))
	if err != nil {
		return fmt.Errorf("loading AWS config: %w", err)
	}
	if c.cfg.ECSService != "" {
		client := ecs.NewFromConfig(awsCfg, func(o *ecs.Options) {
			if c.cfg.ECSEndpoint != "" {
				o.BaseEndpoint = aws.String(c.cfg.ECSEndpoint)
			}
		})
		if err := c.checkService(ctx, client); err != nil {
			return err
		}
	}
	client := cloudwatch.NewFromConfig(awsCfg, func(o *cloudwatch.Options) {
		if c.cfg.CloudWatchEndpoint != "" {
			o.BaseEndpoint = aws.String(c.cfg.CloudWatchEndpoint)
		}
	})
	return c.checkReaderMetrics(ctx, client)
}

func (c *Checker) checkService(ctx context.Context, client *ecs.Client) error {
	out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{
		Cluster: aws.String(c.cfg.ECSCluster), Services: []string{c.cfg.ECSService},
	})
	if err != nil {
		return fmt.Errorf("describing ECS service %s: %w", c.cfg.ECSService, err)
	}
	if len(out.Services) == 0 {
		reason := "not found"
		if len(out.Failures) > 0 && out.Failures[0].Reason != nil {
			reason = *out.Failures[0].Reason
		}
		return fmt.Errorf("%w: ECS service %s in cluster %s: %s", ErrReaderStopped, c.cfg.ECSService, c.cfg.ECSCluster, reason)
	}
	svc := out.Services[0]
	switch status := aws.ToString(svc.Status); {
	case status != "ACTIVE":
		return fmt.Errorf("%w: ECS service %s is %s", ErrReaderStopped, c.cfg.ECSService, status)
	case svc.DesiredCount == 0:
		return fmt.Errorf("%w: ECS service %s is scaled to 0 tasks", ErrReaderStopped, c.cfg.ECSService)
	case svc.RunningCount == 0:
		return fmt.Errorf("%w: ECS service %s runs 0 of %d desired tasks (%d pending)", ErrReaderStopped,
			c.cfg.ECSService, svc.DesiredCount, svc.PendingCount)
	case svc.RunningCount < svc.DesiredCount:
		return fmt.Errorf("%w: ECS service %s runs %d of %d desired tasks", ErrReaderTasksMissing,
			c.cfg.ECSService, svc.RunningCount, svc.DesiredCount)
	}
	return nil
}

// checkReaderMetrics reads the reader's per-minute metrics over the window.
func (c *Checker) checkReaderMetrics(ctx context.Context, client *cloudwatch.Client) error {
	end := c.now().Truncate(time.Minute).Add(time.Minute)
	start := end.Add(-c.cfg.ReaderWindow)
	query := func(id, name, stat string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{
				Namespace: aws.String(c.cfg.Namespace), MetricName: aws.String(name),
				Dimensions: []cwtypes.Dimension{{Name: aws.String(cwmetric.DimService), Value: aws.String(c.cfg.ReaderService)}},
			},
			Period: aws.Int32(60), Stat: aws.String(stat),
		}}
	}
	out, err := client.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(start), EndTime: aws.Time(end), ScanBy: cwtypes.ScanByTimestampDescending,
		MetricDataQueries: []cwtypes.MetricDataQuery{
			query("received", cwmetric.LinesReceived, "Sum"),
			query("delivered", cwmetric.EventsDelivered, "Sum"),
			query("inflight", cwmetric.LinesInFlight, "Maximum"),
			query("stalled", cwmetric.DeliveryStalled, "Maximum"),
		},
	})
	if err != nil {
		return fmt.Errorf("reading the reader's metrics: %w", err)
	}
	series := map[string]cwtypes.MetricDataResult{}
	for _, r := range out.MetricDataResults {
		series[aws.ToString(r.Id)] = r
	}
	if len(series["received"].Values) == 0 && len(series["delivered"].Values) == 0 {
		return fmt.Errorf("%w: no %s or %s datapoint in namespace %s in the last %s", ErrReaderSilent,
			cwmetric.LinesReceived, cwmetric.EventsDelivered, c.cfg.Namespace, c.cfg.ReaderWindow)
	}
	if at, v, ok := latest(series["stalled"]); ok && v >= 1 {
		return fmt.Errorf("%w: the reader reported a delivery stall (%s=1) at %s", ErrReaderStalled,
			cwmetric.DeliveryStalled, at.UTC().Format(time.RFC3339))
	}
	delivered := total(series["delivered"])
	if waited := peak(series["inflight"]); delivered == 0 && waited > 0 {
		return fmt.Errorf("%w: delivered nothing in the last %s while up to %.0f lines waited", ErrReaderStalled,
			c.cfg.ReaderWindow, waited)
	}
	return nil
}

// latest returns the newest datapoint of r.
func latest(r cwtypes.MetricDataResult) (time.Time, float64, bool) {
	if len(r.Values) == 0 || len(r.Timestamps) != len(r.Values) {
		return time.Time{}, 0, false
	}
	i := 0
	for j, t := range r.Timestamps {
		if t.After(r.Timestamps[i]) {
			i = j
		}
	}
	return r.Timestamps[i], r.Values[i], true
}

func total(r cwtypes.MetricDataResult) float64 {
	var s float64
	for _, v := range r.Values {
		s += v
	}
	return s
}

func peak(r cwtypes.MetricDataResult) float64 {
	if len(r.Values) == 0 {
		return 0
	}
	return slices.Max(r.Values)
}
