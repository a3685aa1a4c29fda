package kafkaout

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// waitKnown waits until s knows topic's partition count (its lookup runs in the background).
func waitKnown(t *testing.T, s *sticky, topic string) {
	t.Helper()
	s.partition(topic, 0) // starts the lookup
	for deadline := time.Now().Add(5 * time.Second); ; {
		s.mu.Lock()
		n := s.topics[topic].partitions
		s.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the partition count of %s never became known", topic)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestStickyStaysOnOnePartitionForABatch(t *testing.T) {
	s := newSticky(func(context.Context, string) (int32, error) { return 3, nil }, 1000)
	s.window = time.Hour // only the bytes move it on here
	defer s.close()
	waitKnown(t, s, "logs")

	first := s.partition("logs", 100)
	for i := range 9 { // 1,000 bytes in all: still the same partition
		if p := s.partition("logs", 100); p != first {
			t.Fatalf("message %d went to partition %d, the batch's partition is %d", i+2, p, first)
		}
	}
	next := s.partition("logs", 100)
	if next == first || next < 0 || next >= 3 {
		t.Fatalf("after a full batch the partition is %d (was %d); want another of 0-2", next, first)
	}
	// Every partition gets its turn.
	seen := map[int32]bool{first: true, next: true}
	for range 30 {
		seen[s.partition("logs", 1000)] = true
	}
	if len(seen) != 3 {
		t.Fatalf("partitions used: %v, want all of 0-2", seen)
	}
}

func TestStickyMovesOnAfterItsWindow(t *testing.T) {
	s := newSticky(func(context.Context, string) (int32, error) { return 2, nil }, 1<<20)
	s.window = 20 * time.Millisecond
	defer s.close()
	waitKnown(t, s, "logs")
	first := s.partition("logs", 10)
	time.Sleep(s.window + 5*time.Millisecond)
	if p := s.partition("logs", 10); p == first {
		t.Fatalf("still on partition %d after the %v window", p, s.window)
	}
}

func TestStickyLeavesPartitioningToLibrdkafkaUntilTheCountIsKnown(t *testing.T) {
	var calls atomic.Int32
	s := newSticky(func(context.Context, string) (int32, error) {
		calls.Add(1)
		return 0, errors.New("no metadata")
	}, 1000)
	defer s.close()
	for range 5 {
		if p := s.partition("logs", 100); p != kafka.PartitionAny {
			t.Fatalf("partition %d before the count is known, want PartitionAny", p)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); calls.Load() == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the partition count was never looked up")
		}
		time.Sleep(time.Millisecond)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d lookups for one topic, want one (retried later, not per message)", n)
	}
}

func TestStickyFollowsAShrunkPartitionCount(t *testing.T) {
	s := newSticky(func(context.Context, string) (int32, error) { return 4, nil }, 100)
	s.window = time.Hour
	defer s.close()
	waitKnown(t, s, "logs")
	for i := 0; s.partition("logs", 100) != 3; i++ {
		if i > 8 {
			t.Fatal("partition 3 of 4 never came up")
		}
	}
	s.mu.Lock()
	s.topics["logs"].partitions = 2 // as a refresh would set it
	s.mu.Unlock()
	if p := s.partition("logs", 1); p < 0 || p >= 2 {
		t.Fatalf("partition %d of a topic now with 2", p)
	}
}
