package pipeline

import "testing"

// TestAbandonedLinesSettleOnce: lines a shutdown counted failed while still in flight (the Kafka client's
// close overran the deadline) may still settle afterwards, when the close reports on them; each counts once,
// as what it became, and the ledger balances.
func TestAbandonedLinesSettleOnce(t *testing.T) {
	tests := []struct {
		name                    string
		late                    func(c *Counts)
		delivered, dead, failed uint64
	}{
		{"none settles late", func(*Counts) {}, 2, 0, 8},
		{"dead-lettered late (purged, stored in the file)", func(c *Counts) { c.addDeadLettered(6) }, 2, 6, 2},
		{"failed late (the dead-letter path is closed)", func(c *Counts) { c.addFailed(8) }, 2, 0, 8},
		{"a mix", func(c *Counts) { c.addDelivered(1); c.addDeadLettered(5); c.addFailed(2) }, 3, 5, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &Counts{}
			c.received.Add(10)
			c.addDelivered(2)
			if n := c.abandon(); n != 8 {
				t.Fatalf("abandon() = %d, want the 8 lines in flight", n)
			}
			tt.late(c)
			s := c.Snapshot()
			if s.Delivered != tt.delivered || s.DeadLettered != tt.dead || s.Failed != tt.failed || !s.Balanced() {
				t.Errorf("ledger %+v, want delivered %d, dead-lettered %d, failed %d, balanced", s, tt.delivered, tt.dead, tt.failed)
			}
		})
	}
}
