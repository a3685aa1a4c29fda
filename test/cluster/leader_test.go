package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// scenario is one run of the reader through a broker's outage.
type scenario struct {
	row    string        // the report's scenario name
	kill   bool          // SIGKILL the broker (a crash) instead of stopping it cleanly
	outage time.Duration // from the moment its partitions have no leader to its restart
	// messageTimeout, when set, is the reader's librdkafka message.timeout.ms: shorter than the outage, so the
	// messages waiting for the stopped broker's partitions time out and are dead-lettered.
	messageTimeout time.Duration
}

// TestPartitionLeaderStopped: one broker of three stops cleanly while the reader streams. Its partitions
// have no leader until it is back; the reader sends to the others meanwhile, so reading never stops, and the
// messages that were waiting for the stopped partitions arrive after the restart: every event exactly once.
func TestPartitionLeaderStopped(t *testing.T) {
	run(t, scenario{row: "10. a partition's leader stopped (one broker of three)", outage: pick(10*time.Second, 30*time.Second)})
}

// TestPartitionLeaderKilledPastMessageTimeout: one broker of three is SIGKILLed and stays away longer than the
// reader's message timeout (5 s here). Until the controller fences it (broker.session.timeout.ms, 9 s) its
// partitions still name it as their leader, so messages go there and wait; those time out and are
// dead-lettered as delivery_failed. Nothing is lost: every event is in the topic or among the dead letters.
func TestPartitionLeaderKilledPastMessageTimeout(t *testing.T) {
	run(t, scenario{row: "10. a partition's leader SIGKILLed past the message timeout (one broker of three)", kill: true,
		outage: pick(10*time.Second, 30*time.Second), messageTimeout: 5 * time.Second})
}

func pick[T any](quick, fullValue T) T {
	if full {
		return fullValue
	}
	return quick
}

func run(t *testing.T, sc scenario) {
	const (
		rate    = 5000 // lines per second: the stream runs through the whole outage
		queueKB = 2048 // a small local queue: a stalled partition would fill it (and the ring) within seconds
	)
	bootstrap := cl.PlaintextBootstrap()
	name := strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	topic, dlq := kafkatest.TopicPair(t, bootstrap, "cluster_"+name, 6)
	leaders := partitionLeaders(t, bootstrap, topic)
	// The broker to stop leads some of the topic's partitions but not the dead-letter topic's one, and is
	// not broker 1, the cluster's controller.
	dlqLeader := partitionLeaders(t, bootstrap, dlq)[0]
	var victim int32
	for _, id := range []int32{3, 2} {
		if id != dlqLeader && slices.Contains(mapValues(leaders), id) {
			victim = id
			break
		}
	}
	if victim == 0 {
		t.Fatalf("%v: leaders %v, dead-letter topic on broker %d", errNoVictim, leaders, dlqLeader)
	}
	var stalled []int32
	for p, id := range leaders {
		if id == victim {
			stalled = append(stalled, p)
		}
	}
	slices.Sort(stalled)
	t.Cleanup(func() {
		if err := cl.broker("kafka-start", victim); err != nil {
			t.Errorf("starting broker %d again after the scenario: %v", victim, err)
		}
	})

	// The stream must outlast the outage: the stop comes after 2 s of it, and the restart takes a while.
	n := uint64(rate) * uint64((sc.outage+40*time.Second)/time.Second)
	src := harness.NewSource(t, n, harness.SourceOptions{Rate: rate})
	args := []string{"--source-mode", "connect", "--source-addr", src.Addr(),
		"--credentials", "env", "--ca-file", cl.Get("KAFKA_CA_FILE"), "--topic", topic, "--dlq-topic", dlq,
		"--max-events", strconv.FormatUint(n, 10), "--drain-timeout", "5m", "--queue-max-kbytes", strconv.Itoa(queueKB)}
	if sc.messageTimeout > 0 {
		args = append(args, "--kafka-property", fmt.Sprintf("message.timeout.ms=%d", sc.messageTimeout.Milliseconds()))
	}
	r := harness.StartReader(t, readerBin, harness.ReaderEnv(
		"KAFKA_BOOTSTRAP_SERVER="+cl.Get("KAFKA_BOOTSTRAP_SERVER"),
		"KAFKA_SASL_USERNAME="+cl.Get("KAFKA_SASL_USERNAME"),
		"KAFKA_SASL_PASSWORD="+cl.Get("KAFKA_SASL_PASSWORD")), args...)
	if err := src.WaitWritten(2*rate, 3*time.Minute); err != nil {
		t.Fatalf("waiting for the stream to run: %v (written %d)", err, src.Written())
	}
	verb, how := []string{}, "stopped"
	if sc.kill {
		verb, how = []string{"--kill"}, "SIGKILLed"
	}
	stoppedAt, writtenAtStop := time.Now(), src.Written()
	if err := cl.broker("kafka-stop", victim, verb...); err != nil {
		t.Fatal(err)
	}
	// The fault took hold once the remaining brokers say the victim's partitions have no leader.
	waitLeaderless(t, bootstrap, topic, stalled, time.Minute)
	leaderless := time.Since(stoppedAt)

	// Through the outage the source keeps writing and the reader keeps delivering.
	type point struct {
		written          uint64
		delivered, stuck float64
	}
	at := func() point {
		m, err := r.Metrics()
		if err != nil {
			t.Fatalf("scraping the reader's metrics: %v", err)
		}
		return point{src.Written(), m["logreader_events_delivered_total"], m["logreader_lines_in_flight"]}
	}
	p0 := at()
	time.Sleep(sc.outage / 2)
	p1 := at()
	time.Sleep(sc.outage - sc.outage/2)
	p2 := at()
	if err := cl.broker("kafka-start", victim); err != nil {
		t.Fatal(err)
	}
	down := time.Since(stoppedAt)

	code, sum := r.Wait(6 * time.Minute)
	tally := harness.ReadEvents(t, bootstrap, topic, 1, n)
	dls := harness.ReadDeadLetters(t, bootstrap, dlq)
	perStalled := stalledCounts(t, bootstrap, topic, stalled)
	// An event is lost when it is neither in the topic nor among the dead letters.
	dead := make(map[uint32]bool, len(dls))
	for _, d := range dls {
		var e struct {
			EventID uint32 `json:"eventId"`
		}
		if json.Unmarshal(d.Value, &e) == nil {
			dead[e.EventID] = true
		}
	}
	var lost, both uint64
	for i := range n {
		inTopic, inDLQ := tally.Seen(i), dead[uint32(i)+1]
		if !inTopic && !inDLQ {
			lost++
		}
		if inTopic && inDLQ {
			both++
		}
	}
	half := (sc.outage / 2).Seconds()
	report.Add(harness.Row{Scenario: sc.row, Sent: src.Written(), Delivered: tally.Unique, DeadLettered: uint64(len(dls)),
		Lost: lost, Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("broker %d %s at %d written, leading partitions %v (no leader %.1fs later); during the outage the source wrote %d lines/s "+
			"and the reader delivered %.0f events/s (second half), %.0f lines waited at its end; the stalled partitions hold %v after the restart "+
			"(down %.1fs); dead letters %v, %d of them also in the topic; reader exit %d in %.1fs, summary received %d delivered %d dead-lettered %d failed %d; peak RSS %.0f MiB",
			victim, how, writtenAtStop, stalled, leaderless.Seconds(), uint64(float64(p2.written-p1.written)/half),
			(p2.delivered-p1.delivered)/half, p2.stuck, perStalled, down.Seconds(), harness.ReasonCounts(dls), both,
			code, sum.Duration, sum.Received, sum.Delivered, sum.DeadLettered, sum.Failed, float64(r.PeakRSS())/(1<<20))})
	t.Logf("%s; summary %+v; points %+v %+v %+v", tally, sum, p0, p1, p2)

	// The other partitions kept flowing: in the second half of the outage the source wrote, and the reader
	// delivered, at least half the stream's rate.
	if p2.written >= n {
		t.Fatalf("the stream ended during the outage (%d lines): nothing measured", n)
	}
	if got, want := float64(p2.written-p1.written)/half, rate/2.0; got < want {
		t.Errorf("the source wrote %.0f lines/s in the second half of the outage, want at least %.0f: reading stalled", got, want)
	}
	if got, want := (p2.delivered-p1.delivered)/half, rate/2.0; got < want {
		t.Errorf("the reader delivered %.0f events/s in the second half of the outage (%.0f then %.0f), want at least %.0f: delivery stalled",
			got, p1.delivered, p2.delivered, want)
	}
	if code != 0 || sum.Received != n || sum.Failed != 0 || !sum.Balanced() {
		t.Errorf("exit %d, summary %+v: want exit 0, %d received, none failed, balanced", code, sum, n)
	}
	if lost != 0 {
		t.Errorf("%d events neither in the topic nor dead-lettered; first missing from the topic %v", lost, tally.Missing(n, 10))
	}
	if tally.Duplicated != 0 || tally.Invalid != 0 || tally.OutOfRange != 0 {
		t.Errorf("topic: %d duplicated, %d invalid, %d out of range", tally.Duplicated, tally.Invalid, tally.OutOfRange)
	}
	for reason, k := range harness.ReasonCounts(dls) {
		if reason != "delivery_failed" {
			t.Errorf("%d dead letters with reason %q, want only delivery_failed", k, reason)
		}
	}
	if sc.messageTimeout == 0 {
		if len(dls) != 0 {
			t.Errorf("%d dead letters, want none: the outage is shorter than the message timeout", len(dls))
		}
		if tally.Unique != n {
			t.Errorf("%d of %d events in the topic", tally.Unique, n)
		}
	} else if len(dls) == 0 {
		t.Errorf("no dead letter: no message waited for the killed broker longer than the %v message timeout, so the scenario proved nothing", sc.messageTimeout)
	}
}

func mapValues(m map[int32]int32) []int32 {
	out := make([]int32, 0, len(m))
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func admin(t *testing.T, bootstrap string) *kafka.AdminClient {
	t.Helper()
	a, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "log_level": 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// partitionLeaders returns each partition's leader.
func partitionLeaders(t *testing.T, bootstrap, topic string) map[int32]int32 {
	t.Helper()
	md, err := admin(t, bootstrap).GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatalf("metadata of %s: %v", topic, err)
	}
	out := make(map[int32]int32)
	for _, p := range md.Topics[topic].Partitions {
		out[p.ID] = p.Leader
	}
	return out
}

// waitLeaderless waits until the brokers still up report no leader for any of partitions.
func waitLeaderless(t *testing.T, bootstrap, topic string, partitions []int32, limit time.Duration) {
	t.Helper()
	a := admin(t, bootstrap)
	for deadline := time.Now().Add(limit); ; {
		md, err := a.GetMetadata(&topic, false, 5000)
		if err == nil {
			none := 0
			for _, p := range md.Topics[topic].Partitions {
				if slices.Contains(partitions, p.ID) && p.Leader < 0 {
					none++
				}
			}
			if none == len(partitions) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("partitions %v of %s still have a leader %v after the broker stopped (%v)", partitions, topic, limit, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stalledCounts returns how many messages each of partitions holds.
func stalledCounts(t *testing.T, bootstrap, topic string, partitions []int32) map[int32]int64 {
	t.Helper()
	a := admin(t, bootstrap)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out := make(map[int32]int64)
	for _, p := range partitions {
		tp := kafka.TopicPartition{Topic: &topic, Partition: p}
		res, err := a.ListOffsets(ctx, map[kafka.TopicPartition]kafka.OffsetSpec{tp: kafka.LatestOffsetSpec})
		if err != nil {
			t.Fatalf("offsets of %s[%d]: %v", topic, p, err)
		}
		for _, info := range res.ResultInfos {
			out[p] = int64(info.Offset)
		}
	}
	return out
}
