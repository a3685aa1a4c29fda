package kafkaout

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
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

// TestHandshakeCutByThePeerIsNoTLSRefusal: a broker that dies (or restarts) while the client's TLS handshake
// is under way cuts the connection, and librdkafka reports "SSL handshake failed: Disconnected: connection
// reset by peer" (adding "connecting to a PLAINTEXT broker listener?"). That is the broker going away, not a
// refused certificate: the check must say unreachable and keep waiting, not report a TLS failure (which
// /readyz kept for a whole outage once the broker was SIGKILLed mid-handshake, until a probe passed) or stop
// waiting as if the brokers had refused the client. Here every connection is reset the moment it is
// accepted, which is what the client saw then.
func TestHandshakeCutByThePeerIsNoTLSRefusal(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.(*net.TCPConn).SetLinger(0) // close with a reset
			c.Close()
		}
	}()
	var logs lockedBuffer
	p, err := New(Config{Connection: Connection{Brokers: ln.Addr().String(), SecurityProtocol: SASLSSL, Username: "u", Password: "p"},
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, func(string, []byte, error) {})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = p.CheckTopic(ctx, "events")
	t.Logf("CheckTopic: %v", err)
	if !strings.Contains(logs.String(), "SSL handshake failed: Disconnected") {
		t.Fatalf("the client did not report a cut handshake: the fault did not take hold; its log:\n%s", logs.String())
	}
	if !errors.Is(err, ErrUnreachable) || errors.Is(err, ErrTLS) {
		t.Errorf("CheckTopic = %v, want ErrUnreachable, not ErrTLS", err)
	}
	if p.errs.refused() {
		t.Error("a handshake cut by the peer counts as the brokers refusing the client")
	}
}

// lockedBuffer is a log destination safe for the client's goroutines and the test's reads.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
