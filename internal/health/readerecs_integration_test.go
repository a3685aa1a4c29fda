package health_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/mwaa-kafka/pipeline/internal/cwmetric"
	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// extractEMF does for the test what CloudWatch Logs does with the reader's stdout: it reads each EMF line's
// directive and puts its metrics, with their dimensions and timestamp, into CloudWatch (the emulator).
func extractEMF(t *testing.T, ctx context.Context, cw *cloudwatch.Client, lines []byte) {
	t.Helper()
	for _, line := range bytes.Split(bytes.TrimSpace(lines), []byte{'\n'}) {
		var rec map[string]any
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatalf("EMF line %q: %v", line, err)
		}
		meta := rec["_aws"].(map[string]any)
		ts := time.UnixMilli(int64(meta["Timestamp"].(float64)))
		for _, d := range meta["CloudWatchMetrics"].([]any) {
			dir := d.(map[string]any)
			var dims []cwtypes.Dimension
			for _, name := range dir["Dimensions"].([]any)[0].([]any) {
				dims = append(dims, cwtypes.Dimension{Name: aws.String(name.(string)), Value: aws.String(rec[name.(string)].(string))})
			}
			var data []cwtypes.MetricDatum
			for _, m := range dir["Metrics"].([]any) {
				name := m.(map[string]any)["Name"].(string)
				data = append(data, cwtypes.MetricDatum{MetricName: aws.String(name), Value: aws.Float64(rec[name].(float64)),
					Timestamp: aws.Time(ts), Dimensions: dims, Unit: cwtypes.StandardUnit(m.(map[string]any)["Unit"].(string))})
			}
			if _, err := cw.PutMetricData(ctx, &cloudwatch.PutMetricDataInput{Namespace: aws.String(dir["Namespace"].(string)), MetricData: data}); err != nil {
				t.Fatalf("putting metrics: %v", err)
			}
		}
	}
}

// readerRecord is an EMF record with the reader's metric names, written by the encoder the reader uses.
func readerRecord(t *testing.T, ns, service string, at time.Time, received, delivered, inFlight, stalled float64) []byte {
	t.Helper()
	var b bytes.Buffer
	err := cwmetric.Write(&b, cwmetric.Record{Namespace: ns, Time: at,
		Dimensions: map[string]string{cwmetric.DimService: service},
		Metrics: []cwmetric.Metric{
			{Name: cwmetric.LinesReceived, Unit: "Count", Value: received},
			{Name: cwmetric.EventsDelivered, Unit: "Count", Value: delivered},
			{Name: cwmetric.LinesInFlight, Unit: "Count", Value: inFlight},
			{Name: cwmetric.DeliveryStalled, Unit: "None", Value: stalled},
		}})
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestIntegrationReaderThroughECS drives the connect-mode reader check against the AWS emulator's ECS and
// CloudWatch: a service with no running task, then one running but silent, then one whose metrics show
// deliveries, then one reporting a stall, then one scaled to zero. Each failure is named.
func TestIntegrationReaderThroughECS(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	endpoint := f.stack.Get(t, "AWS_ENDPOINT_URL_SECRETSMANAGER") // the emulator serves every API on one port
	creds := credentials.NewStaticCredentialsProvider(f.stack.Get(t, "AWS_ACCESS_KEY_ID"), f.stack.Get(t, "AWS_SECRET_ACCESS_KEY"), "")
	region := f.stack.Get(t, "AWS_REGION")
	ecsc := ecs.New(ecs.Options{Region: region, BaseEndpoint: aws.String(endpoint), Credentials: creds})
	// The emulator does not read gzip-compressed PutMetricData bodies.
	cwc := cloudwatch.New(cloudwatch.Options{Region: region, BaseEndpoint: aws.String(endpoint), Credentials: creds,
		DisableRequestCompression: true})

	name := kafkatest.UniqueTopic("health_reader")
	if _, err := ecsc.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(name)}); err != nil {
		t.Fatalf("creating cluster: %v", err)
	}
	if _, err := ecsc.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(name),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("reader"), Image: aws.String("reader:test"), Memory: aws.Int32(512)}}}); err != nil {
		t.Fatalf("registering task definition: %v", err)
	}
	if _, err := ecsc.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String(name), ServiceName: aws.String("reader"),
		TaskDefinition: aws.String(name), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatalf("creating service: %v", err)
	}
	t.Cleanup(func() {
		ecsc.DeleteService(ctx, &ecs.DeleteServiceInput{Cluster: aws.String(name), Service: aws.String("reader"), Force: aws.Bool(true)})
		ecsc.DeleteCluster(ctx, &ecs.DeleteClusterInput{Cluster: aws.String(name)})
	})
	setDesired := func(n int32) {
		t.Helper()
		if _, err := ecsc.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(name), Service: aws.String("reader"), DesiredCount: aws.Int32(n)}); err != nil {
			t.Fatalf("updating service: %v", err)
		}
	}

	cfg := f.config(t, f.secret(t, f.goodSecret(t)))
	cfg.ReaderCheck, cfg.ECSCluster, cfg.ECSService = health.ReaderCheckECS, name, "reader"
	cfg.ECSEndpoint, cfg.CloudWatchEndpoint = endpoint, endpoint
	// This test's metrics only: the emulator matches a query's dimensions but not its namespace, so the
	// Service dimension is the test's own too.
	cfg.Namespace, cfg.ReaderService = "HealthTest/"+name, name
	now := time.Now().UTC()
	steps := []struct {
		name     string
		before   func()
		want     error
		mentions string
	}{
		{"service created, no task running yet", nil, health.ErrReaderStopped, "0 of 1 desired"},
		{"task running, no metrics", func() { setDesired(1) }, health.ErrReaderSilent, "no LinesReceived"},
		{"delivering", func() {
			extractEMF(t, ctx, cwc, append(readerRecord(t, cfg.Namespace, cfg.ReaderService, now.Add(-3*time.Minute), 6000, 5990, 10, 0),
				readerRecord(t, cfg.Namespace, cfg.ReaderService, now.Add(-2*time.Minute), 6000, 6000, 12, 0)...))
		}, nil, ""},
		{"stall reported", func() {
			extractEMF(t, ctx, cwc, readerRecord(t, cfg.Namespace, cfg.ReaderService, now.Add(-time.Minute), 0, 0, 14000, 1))
		}, health.ErrReaderStalled, "DeliveryStalled=1"},
		{"scaled to zero", func() { setDesired(0) }, health.ErrReaderStopped, "scaled to 0"},
	}
	for _, st := range steps {
		if st.before != nil {
			st.before()
		}
		v := run(t, cfg)
		r, ok := v.Check(health.CheckReader)
		if !ok {
			t.Fatalf("%s: no reader check in %+v", st.name, v.Checks)
		}
		t.Logf("%s: reader check %+v", st.name, r)
		if st.want == nil {
			if !r.OK || !v.OK {
				t.Errorf("%s: reader check = %+v, verdict %v; want OK", st.name, r, v.OK)
			}
			continue
		}
		if r.OK || v.OK || !errors.Is(r.Err(), st.want) || !strings.Contains(r.Error, st.mentions) {
			t.Errorf("%s: reader check = %+v; want %v mentioning %q", st.name, r, st.want, st.mentions)
		}
	}
}
