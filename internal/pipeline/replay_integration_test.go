package pipeline

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/kafkatest"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
)

// TestIntegrationReplay replays dead letters written by the reader's own sinks, from the dead-letter topic
// and from a file, against the local broker: only delivery_failed lines holding their whole line are
// candidates; --dedupe sends exactly the ones the topic lacks (also inside a many-events message), so a
// second replay sends nothing; --dedupe=false never sends a line marked possibly_persisted.
func TestIntegrationReplay(t *testing.T) {
	st := stacktest.Load(t)
	bootstrap := st.Get(t, "KAFKA_PLAINTEXT_BOOTSTRAP")
	lines := make([][]byte, 9)
	for i := range lines {
		lines[i] = validLine(t, 1000+i)
	}
	failed := func(i int, possiblyPersisted bool) DeadLetter {
		return DeadLetter{Time: time.Now(), Reason: ReasonDeliveryFailed, Detail: "Local: Message timed out", Source: "delivery-report",
			Line: lines[i], LineBytes: len(lines[i]), PossiblyPersisted: possiblyPersisted}
	}
	letters := []DeadLetter{
		failed(0, true), failed(1, true), failed(2, true), // the broker appended them after all
		failed(3, true), failed(4, true), // it did not
		failed(5, false), failed(6, false), // never sent
		{Time: time.Now(), Reason: ReasonDeliveryFailed, Line: lines[7][:40], LineBytes: len(lines[7])}, // a sample only
		{Time: time.Now(), Reason: "invalid_json", Line: []byte("nope"), LineBytes: 4},
	}
	replayArgs := func(topic string, extra ...string) []string {
		return append([]string{"--bootstrap", bootstrap, "--security-protocol", "plaintext", "--topic", topic}, extra...)
	}
	replay := func(t *testing.T, args ...string) ReplaySummary {
		t.Helper()
		cfg, err := ParseReplayConfig(args, func(string) string { return "" }, io.Discard, io.Discard)
		if err != nil {
			t.Fatalf("ParseReplayConfig: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var out bytes.Buffer
		sum, err := Replay(ctx, cfg, &out, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatalf("Replay: %v (%s)", err, out.String())
		}
		t.Logf("replay %s", bytes.TrimSpace(out.Bytes()))
		return sum
	}
	// wantTopic checks that topic holds lines 0-6 and 8 exactly once each and nothing else.
	wantTopic := func(t *testing.T, topic string) {
		t.Helper()
		count := map[string]int{}
		kafkatest.ReadToEnd(t, bootstrap, topic, func(r kafkatest.Record) {
			for line := range bytes.SplitSeq(r.Value, []byte{'\n'}) {
				count[string(line)]++
			}
		})
		for i, line := range lines {
			if want := map[bool]int{true: 0, false: 1}[i == 7]; count[string(line)] != want {
				t.Errorf("line %d is in the topic %d times, want %d", i, count[string(line)], want)
			}
			delete(count, string(line))
		}
		if len(count) != 0 {
			t.Errorf("the topic holds other lines: %v", count)
		}
	}
	wantSummary := func(t *testing.T, got ReplaySummary, already, sent, skipped uint64) {
		t.Helper()
		if got.DeadLetters[ReasonDeliveryFailed] != 8 || got.DeadLetters["invalid_json"] != 1 || got.Candidates != 7 ||
			got.SampleOnly != 1 || got.PossiblyPersisted != 5 || got.AlreadyInTopic != already || got.Replayed != sent ||
			got.SkippedPossiblyPersisted != skipped || got.Failed != 0 {
			t.Errorf("replay summary %+v; want 9 dead letters, 7 candidates, 1 sample only, 5 possibly persisted, "+
				"%d already in the topic, %d sent, %d skipped", got, already, sent, skipped)
		}
	}
	// setUp creates the topics and puts lines 0-2 in the event topic, line 2 inside a many-events message.
	setUp := func(t *testing.T) (topic, dlq string) {
		topic, dlq = kafkatest.TopicPair(t, bootstrap, "replay", 3)
		kafkatest.Produce(t, bootstrap, topic, [][]byte{lines[0], lines[1], bytes.Join([][]byte{lines[8], lines[2]}, []byte{'\n'})})
		return topic, dlq
	}

	t.Run("topic", func(t *testing.T) {
		topic, dlq := setUp(t)
		sink := &kafkaSink{topic: dlq}
		acked := make(chan error, len(letters))
		prod, err := kafkaout.New(kafkaout.Config{Connection: kafkaout.Connection{Brokers: bootstrap, SecurityProtocol: kafkaout.Plaintext},
			Logger: slog.New(slog.DiscardHandler)}, func(_ string, _ []byte, err error) { acked <- err })
		if err != nil {
			t.Fatal(err)
		}
		defer prod.Close()
		sink.p = prod
		for _, dl := range letters {
			if _, err := sink.Put(context.Background(), dl); err != nil {
				t.Fatal(err)
			}
		}
		for range letters {
			if err := <-acked; err != nil {
				t.Fatalf("dead letter not acknowledged: %v", err)
			}
		}
		wantSummary(t, replay(t, replayArgs(topic, "--dlq-topic", dlq, "--dry-run", "--dedupe=false")...), 0, 0, 5)
		wantSummary(t, replay(t, replayArgs(topic, "--dlq-topic", dlq)...), 3, 4, 0)
		wantTopic(t, topic)
		wantSummary(t, replay(t, replayArgs(topic, "--dlq-topic", dlq)...), 7, 0, 0)
		wantTopic(t, topic)
	})

	t.Run("file", func(t *testing.T) {
		topic, _ := setUp(t)
		path := filepath.Join(t.TempDir(), "dlq.jsonl")
		sink, err := newFileSink(path, &Counts{}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		for _, dl := range letters {
			if _, err := sink.Put(context.Background(), dl); err != nil {
				t.Fatal(err)
			}
		}
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		// Without the lookup, only the lines that never reached a broker are sent.
		wantSummary(t, replay(t, replayArgs(topic, "--dlq-file", path, "--dedupe=false")...), 0, 2, 5)
		wantSummary(t, replay(t, replayArgs(topic, "--dlq-file", path)...), 5, 2, 0)
		wantTopic(t, topic)
	})
}
