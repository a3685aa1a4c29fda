package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

func TestPossiblyPersisted(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{kafka.NewError(kafka.ErrMsgTimedOut, "Local: Message timed out", false), true},
		{kafka.NewError(kafka.ErrPurgeInflight, "Local: Purged in flight", false), true},
		{kafka.NewError(kafka.ErrFatal, "Local: Fatal error", true), true},
		{kafka.NewError(kafka.ErrNotEnoughReplicasAfterAppend, "Broker: Not enough in-sync replicas after append", false), true},
		{kafka.NewError(kafka.ErrRequestTimedOut, "Broker: Request timed out", false), true},
		{fmt.Errorf("delivery: %w", kafka.NewError(kafka.ErrMsgTimedOut, "Local: Message timed out", false)), true},
		{kafka.NewError(kafka.ErrPurgeQueue, "Local: Purged in queue", false), false},
		{kafka.NewError(kafka.ErrMsgSizeTooLarge, "Broker: Message size too large", false), false},
		{kafka.NewError(kafka.ErrTopicAuthorizationFailed, "Broker: Topic authorization failed", false), false},
		{kafka.NewError(kafka.ErrUnknownTopicOrPart, "Broker: Unknown topic or partition", false), false},
		{ErrClosed, false},
		{errors.New("local queue full: context canceled"), false},
	}
	for _, tt := range tests {
		if got := PossiblyPersisted(tt.err); got != tt.want {
			t.Errorf("PossiblyPersisted(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestPossiblyPersistedDeliveryReports classifies librdkafka's own delivery reports, with no broker to
// answer: a message that timed out counts as possibly persisted (the client cannot tell whether it was
// sent), one purged from the queue at Close does not.
func TestPossiblyPersistedDeliveryReports(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing answers there
	for _, tt := range []struct {
		name      string
		timeoutMs string
		close     bool
		wantCode  kafka.ErrorCode
		want      bool
	}{
		{"message timeout", "500", false, kafka.ErrMsgTimedOut, true},
		{"purged from the queue at Close", "60000", true, kafka.ErrPurgeQueue, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			var got []error
			reported := make(chan struct{}, 1)
			p, err := New(Config{Connection: Connection{Brokers: addr, SecurityProtocol: Plaintext},
				Overrides: map[string]string{"message.timeout.ms": tt.timeoutMs}, Logger: slog.New(slog.DiscardHandler)}, func(_ string, _ []byte, err error) {
				mu.Lock()
				got = append(got, err)
				mu.Unlock()
				reported <- struct{}{}
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Produce(context.Background(), "events", []byte(`{"eventId":1}`)); err != nil {
				t.Fatalf("Produce: %v", err)
			}
			if tt.close {
				p.Close()
			}
			select {
			case <-reported:
			case <-time.After(30 * time.Second):
				t.Fatal("no delivery report within 30s")
			}
			p.Close()
			mu.Lock()
			defer mu.Unlock()
			var kerr kafka.Error
			if len(got) != 1 || !errors.As(got[0], &kerr) || kerr.Code() != tt.wantCode {
				t.Fatalf("delivery reports %v, want one with %v", got, tt.wantCode)
			}
			if PossiblyPersisted(got[0]) != tt.want {
				t.Errorf("PossiblyPersisted(%v) = %v, want %v", got[0], !tt.want, tt.want)
			}
		})
	}
}
