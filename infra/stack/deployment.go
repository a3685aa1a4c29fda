package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapplicationautoscaling"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsecs"
	"github.com/aws/jsii-runtime-go"
)

// ReaderCPUTarget is the average CPU utilization, in percent, that listen mode's autoscaling keeps the
// readers at.
const ReaderCPUTarget = 60

// deploymentPercents is the service's rolling-deploy window. In connect mode each reader dials the source
// itself, so a replacement started beside the old task would read the same source twice (the source either
// duplicates its stream or splits it between them): the old task stops first (minimum 0 %) and no extra
// task is started (maximum 100 %). The gap is the old task's drain, bounded by the container's stop timeout,
// plus the new task's start. In listen mode the load balancer spreads sources over the readers, so a
// replacement starts before the old one drains (100 % / 200 %).
func deploymentPercents(props Props) (minHealthy, maxHealthy float64) {
	if props.SourceMode == SourceConnect {
		return 0, 100
	}
	return 100, 200
}

// addReaderScaling scales listen mode's readers on CPU between ReaderDesiredCount and ReaderMaxCount.
// Connect mode does not scale: each task is one more dialer of the same source.
func addReaderScaling(p *Pipeline, props Props) {
	if props.SourceMode != SourceListen || p.Service == nil || props.ReaderMaxCount <= props.ReaderDesiredCount {
		return
	}
	scaling := p.Service.AutoScaleTaskCount(&awsapplicationautoscaling.EnableScalingProps{
		MinCapacity: jsii.Number(float64(props.ReaderDesiredCount)),
		MaxCapacity: jsii.Number(float64(props.ReaderMaxCount)),
	})
	scaling.ScaleOnCpuUtilization(jsii.String("Cpu"), &awsecs.CpuUtilizationScalingProps{
		TargetUtilizationPercent: jsii.Number(ReaderCPUTarget),
		ScaleOutCooldown:         awscdk.Duration_Minutes(jsii.Number(1)),
		// Scaling in stops a reader, which drains its connections: not more often than every 5 minutes.
		ScaleInCooldown: awscdk.Duration_Minutes(jsii.Number(5)),
	})
}
