package kafkaout

import (
	"context"
	"os"
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
	bootstrap := os.Getenv("BENCH_KAFKA")
	if bootstrap == "" {
		b.Fatal("set BENCH_KAFKA to a PLAINTEXT bootstrap address (the benchmark stack's, e.g. 127.0.0.1:29092)")
	}
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

func produceFloor(b *testing.B, bootstrap string, values [][]byte) {
	distinct := len(values)
	topic := kafkatest.UniqueTopic("bench_floor")
	kafkatest.CreateTopic(b, bootstrap, topic, 3)

	var delivered, failed atomic.Uint64
	p, err := New(Config{Connection: Connection{Brokers: bootstrap, SecurityProtocol: Plaintext},
		Compression: "lz4", LingerMs: 5, BatchBytes: 1 << 20, QueueMaxKBytes: 8 << 10, QueueMaxMessages: 100000},
		func(_ string, _ []byte, err error) {
			if err != nil {
				failed.Add(1)
				return
			}
			delivered.Add(1)
		})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Close()
	ctx := context.Background()
	// One message through first: the connection, the metadata and the producer id are not the floor.
	if err := p.Produce(ctx, topic, values[0]); err != nil {
		b.Fatal(err)
	}
	settled := func(want uint64) {
		// Flush returns once librdkafka holds nothing; the last report may still be on its way to the callback.
		for deadline := time.Now().Add(10 * time.Second); delivered.Load()+failed.Load() < want; {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d delivery reports arrived", delivered.Load()+failed.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := p.Flush(ctx); n != 0 {
		b.Fatalf("%d messages left after the first flush", n)
	}
	settled(1)
	delivered.Store(0)

	b.SetBytes(meanLen(values))
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		if err := p.Produce(ctx, topic, values[i%distinct]); err != nil {
			b.Fatal(err)
		}
	}
	if n := p.Flush(ctx); n != 0 {
		b.Fatalf("%d messages left after the flush", n)
	}
	settled(uint64(b.N))
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	if d, f := delivered.Load(), failed.Load(); d != uint64(b.N) || f != 0 {
		b.Fatalf("delivered %d and failed %d of %d messages", d, f, b.N)
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
	var delivered, failed atomic.Uint64
	space := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range p.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				if m.TopicPartition.Error != nil {
					failed.Add(1)
				} else {
					delivered.Add(1)
				}
				select {
				case space <- struct{}{}:
				default:
				}
			}
		}
	}()
	msg := kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}}
	produce := func(v []byte) {
		msg.Value = v
		for {
			err := p.Produce(&msg, nil)
			if err == nil {
				return
			}
			if !isQueueFull(err) {
				b.Fatal(err)
			}
			select {
			case <-space:
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	settled := func(want uint64) {
		for deadline := time.Now().Add(30 * time.Second); delivered.Load()+failed.Load() < want; {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d delivery reports arrived", delivered.Load()+failed.Load(), want)
			}
			p.Flush(10)
		}
	}
	produce(values[0])
	settled(1)
	delivered.Store(0)

	b.SetBytes(meanLen(values))
	cpu0 := processCPU(b)
	b.ResetTimer()
	for i := range b.N {
		produce(values[i%len(values)])
	}
	settled(uint64(b.N))
	b.StopTimer()
	cpu := processCPU(b) - cpu0
	if d, f := delivered.Load(), failed.Load(); d != uint64(b.N) || f != 0 {
		b.Fatalf("delivered %d and failed %d of %d messages", d, f, b.N)
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N)*1e6, "cpu-s/M-msgs")
}
