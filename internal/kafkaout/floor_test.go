package kafkaout

import (
	"context"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
)

// BenchmarkProduceFloor measures what the producer alone costs per message: generated events of about 300
// bytes, one per message, through Producer (its ring of pending messages and its delivery reports) with the
// benchmark's settings (acks=all, idempotence, lz4, 5 ms linger, 1 MiB batches, an 8 MiB queue), and nothing
// read from a socket or validated. Its cpu-s/M-msgs, user plus system time of the whole process (librdkafka's
// threads included) per million messages, is the floor under any reader built on this producer at one event
// per message; make bench sets it beside kcat's cost for a whole run.
//
//	BENCH_KAFKA=127.0.0.1:29092 go test -run '^$' -bench ProduceFloor -benchtime 500000x ./internal/kafkaout/
//
// The binding sub-benchmark sends the same messages with confluent-kafka-go's own Produce and delivery
// reports and nothing of this package: what the binding costs, and so what Producer adds to it.
func BenchmarkProduceFloor(b *testing.B) {
	bootstrap := kafkatest.BenchBootstrap(b)
	// Distinct events, so that lz4 compresses them as it does a real stream, not one line repeated.
	const distinct = 4096
	gen := event.NewGenerator(42, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	values := make([][]byte, distinct)
	for i := range values {
		values[i] = gen.AppendAt(nil, uint64(i))
	}
	b.Run("producer", func(b *testing.B) { produceFloor(b, bootstrap, values) })
	b.Run("binding", func(b *testing.B) { bindingFloor(b, bootstrap, values) })
}

func meanLen(values [][]byte) int64 {
	n := 0
	for _, v := range values {
		n += len(v)
	}
	return int64(n / len(values))
}

// floor is one side of the producer floor: produce sends a message, waiting for room in the queue as
// needed; the counts are what the delivery reports said.
type floor struct {
	produce           func(value []byte) error
	delivered, failed atomic.Uint64
}

func (f *floor) report(err error) {
	if err != nil {
		f.failed.Add(1)
		return
	}
	f.delivered.Add(1)
}

// settled waits until want reports arrived: the clients deliver reports on their own goroutines.
func (f *floor) settled(b *testing.B, want uint64) {
	for deadline := time.Now().Add(30 * time.Second); f.delivered.Load()+f.failed.Load() < want; {
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d delivery reports arrived", f.delivered.Load()+f.failed.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

// run sends one message first (the connection, the metadata and the producer id are not the floor), then
// b.N, and reports the process's CPU per million messages until the last report.
func (f *floor) run(b *testing.B, values [][]byte) {
	if err := f.produce(values[0]); err != nil {
		b.Fatal(err)
	}
	f.settled(b, 1)
	f.delivered.Store(0)
	f.failed.Store(0)

	b.SetBytes(meanLen(values))
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		if err := f.produce(values[i%len(values)]); err != nil {
			b.Fatal(err)
		}
	}
	f.settled(b, uint64(b.N))
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	if d, fl := f.delivered.Load(), f.failed.Load(); d != uint64(b.N) || fl != 0 {
		b.Fatalf("delivered %d and failed %d of %d messages", d, fl, b.N)
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/M-msgs")
}

// processCPU is the user plus system time the process has used so far, every thread included.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func produceFloor(b *testing.B, bootstrap string, values [][]byte) {
	topic := kafkatest.UniqueTopic("bench_floor")
	kafkatest.CreateTopic(b, bootstrap, topic, 3)
	var f floor
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext},
		Compression: "lz4", LingerMs: 5, BatchBytes: 1 << 20, QueueMaxKBytes: 8 << 10, QueueMaxMessages: 100000},
		func(_ string, _ []byte, err error) { f.report(err) })
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	f.produce = func(v []byte) error { return p.Produce(ctx, topic, v) }
	f.run(b, values)
}

func bindingFloor(b *testing.B, bootstrap string, values [][]byte) {
	topic := kafkatest.UniqueTopic("bench_floor")
	kafkatest.CreateTopic(b, bootstrap, topic, 3)
	p, err := kafka.NewProducer(&kafka.ConfigMap{"bootstrap.servers": bootstrap, "acks": "all",
		"enable.idempotence": true, "compression.type": "lz4", "linger.ms": 5, "batch.size": 1 << 20,
		"queue.buffering.max.kbytes": 8 << 10, "queue.buffering.max.messages": 100000,
		"go.delivery.report.fields": "none", "go.produce.channel.size": 0})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	var f floor
	space := make(chan struct{}, 1)
	go func() { // ends when Close closes the events channel
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				f.report(m.TopicPartition.Error)
				select {
				case space <- struct{}{}:
				default:
				}
			}
		}
	}()
	msg := kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}}
	f.produce = func(v []byte) error {
		msg.Value = v
		for {
			err := p.Produce(&msg, nil)
			if err == nil || !isQueueFull(err) {
				return err
			}
			select {
			case <-space:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	f.run(b, values)
}
