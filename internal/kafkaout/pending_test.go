package kafkaout

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func TestPendingHoldsEveryValueUntilSettled(t *testing.T) {
	r := newPending(1024, 16)
	var seqs []uint64
	for i := range 10 {
		v := []byte(fmt.Sprintf("line %d", i))
		seq, key, ok, err := r.reserve(v)
		if err != nil || !ok {
			t.Fatalf("reserve %d: ok %t, err %v", i, ok, err)
		}
		if got, ok := r.seqOf(key); !ok || got != seq {
			t.Fatalf("key %x reads back as %d, %t; want %d", key, got, ok, seq)
		}
		seqs = append(seqs, seq)
	}
	// Settle out of order, as reports from different partitions arrive: every other value must stay intact.
	for _, i := range []int{3, 0, 9, 5} {
		r.settle(seqs[i])
		if _, ok := r.value(seqs[i]); ok {
			t.Errorf("value of settled sequence %d still returned", seqs[i])
		}
	}
	for i, seq := range seqs {
		if i == 3 || i == 0 || i == 9 || i == 5 {
			continue
		}
		v, ok := r.value(seq)
		if want := fmt.Sprintf("line %d", i); !ok || string(v) != want {
			t.Errorf("value(%d) = %q, %t; want %q", seq, v, ok, want)
		}
	}
	if r.head != 1 {
		t.Errorf("head = %d: only sequence 0 was settled with nothing older unsettled, so head should be 1", r.head)
	}
	for _, seq := range seqs {
		r.settle(seq)
		r.settle(seq) // twice is harmless
	}
	if r.head != r.tail || r.headPos != r.tailPos {
		t.Errorf("after settling everything: head %d tail %d, positions %d %d", r.head, r.tail, r.headPos, r.tailPos)
	}
}

func TestPendingFullAndWrap(t *testing.T) {
	tests := []struct {
		name        string
		arena, msgs int
		values      []int // lengths reserved in order
		wantFullAt  int   // index of the first reserve that finds the ring full; -1 for none
	}{
		{"slots run out first", 1 << 10, 4, []int{10, 10, 10, 10, 10}, 4},
		{"bytes run out first", 80, 64, []int{20, 20, 20}, 2}, // 16-byte key + 20, aligned: 40 bytes each
		{"everything fits", 1 << 10, 8, []int{100, 100, 100}, -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPending(tt.arena, tt.msgs)
			full := -1
			for i, n := range tt.values {
				_, _, ok, err := r.reserve(make([]byte, n))
				if err != nil {
					t.Fatalf("reserve %d: %v", i, err)
				}
				if !ok {
					full = i
					break
				}
			}
			if full != tt.wantFullAt {
				t.Errorf("first full reserve at %d, want %d", full, tt.wantFullAt)
			}
		})
	}

	// A value that does not fit before the arena's end starts the next lap, whole, once the oldest entry
	// leaves room there.
	r := newPending(112, 8)
	a, _, _, _ := r.reserve(bytes.Repeat([]byte("a"), 40)) // 56 bytes at 0
	b, _, _, _ := r.reserve(bytes.Repeat([]byte("b"), 20)) // 40 bytes at 56: 96 used
	if _, _, ok, _ := r.reserve(bytes.Repeat([]byte("c"), 30)); ok {
		t.Fatal("46 bytes fitted into the 16 left before the end while the start is taken")
	}
	r.settle(a)
	c, _, ok, _ := r.reserve(bytes.Repeat([]byte("c"), 30))
	if !ok {
		t.Fatal("46 bytes did not fit at the start of the next lap once the oldest entry was settled")
	}
	for seq, want := range map[uint64]string{b: string(bytes.Repeat([]byte("b"), 20)), c: string(bytes.Repeat([]byte("c"), 30))} {
		if v, ok := r.value(seq); !ok || string(v) != want {
			t.Errorf("value(%d) = %q, %t; want %q", seq, v, ok, want)
		}
	}

	if _, _, _, err := r.reserve(make([]byte, 100)); !errors.Is(err, errTooLarge) {
		t.Errorf("a value larger than the arena: err %v, want errTooLarge", err)
	}
	// Emptied, the ring takes a value as large as it is (less its key).
	r.settle(b)
	r.settle(c)
	if _, _, ok, err := r.reserve(make([]byte, 112-keyBytes)); !ok || err != nil {
		t.Errorf("a whole-arena value into the empty ring: ok %t, err %v", ok, err)
	}
}

func TestSeqOfRejectsForeignKeys(t *testing.T) {
	r, other := newPending(1024, 16), newPending(1024, 16)
	_, theirs, _, _ := other.reserve([]byte("line"))
	for _, k := range [][]byte{nil, []byte("short"), make([]byte, 9), make([]byte, keyBytes), theirs} {
		if _, ok := r.seqOf(k); ok {
			t.Errorf("seqOf(%x) accepted a key that is not one of its own", k)
		}
	}
}

// Keys are unique across producers: two rings (two reader processes, or one restarted) never hand out the
// same key, although both count their sequences from 0. ClickHouse collapses rows with equal keys.
func TestPendingKeysAreUniqueAcrossProducers(t *testing.T) {
	a, b := newPending(1024, 16), newPending(1024, 16)
	sa, ka, _, _ := a.reserve([]byte("line"))
	sb, kb, _, _ := b.reserve([]byte("line"))
	if sa != sb {
		t.Fatalf("sequences %d and %d: both rings should start at the same sequence", sa, sb)
	}
	if len(ka) != keyBytes || bytes.Equal(ka, kb) {
		t.Errorf("keys %x and %x: want %d bytes each, different", ka, kb, keyBytes)
	}
}

// One message that is never acknowledged (its partition has no leader) must not stop the ring: the messages
// after it settle, and their room is used again however far the ring has moved on. What the ring holds is
// bounded by the bytes and the count of its unsettled messages, not by how far the oldest one lies behind.
func TestPendingAnUnsettledMessageDoesNotBlockTheRest(t *testing.T) {
	r := newPending(1024, 16)
	stuck, _, ok, err := r.reserve([]byte("stuck on a partition without a leader"))
	if err != nil || !ok {
		t.Fatalf("reserve: ok %t, err %v", ok, err)
	}
	// 100 laps of the arena and 1,000 times the slots' count, every one of them settled.
	for i := range 16000 {
		v := []byte(fmt.Sprintf("settled %05d", i))
		seq, _, ok, err := r.reserve(v)
		if err != nil || !ok {
			t.Fatalf("reserve #%d behind one unsettled message: ok %t, err %v (held %d bytes in %d messages)", i, ok, err, r.held, r.live)
		}
		if got, ok := r.value(seq); !ok || string(got) != string(v) {
			t.Fatalf("value(%d) = %q, %t; want %q", seq, got, ok, v)
		}
		r.settle(seq)
	}
	if v, ok := r.value(stuck); !ok || string(v) != "stuck on a partition without a leader" {
		t.Fatalf("the unsettled message reads %q, %t after the ring moved on", v, ok)
	}
	r.settle(stuck)
	if _, ok := r.value(stuck); ok {
		t.Fatal("the unsettled message is still held after it settled")
	}
	if r.held != 0 || r.live != 0 || len(r.moved) != 0 {
		t.Fatalf("after settling everything: %d bytes in %d messages held, %d moved", r.held, r.live, len(r.moved))
	}
}

// The bound: whatever the order of settling, unsettled messages hold at most the arena's bytes and the
// slots' count; past that, reserve says full.
func TestPendingBoundsWhatUnsettledMessagesHold(t *testing.T) {
	tests := []struct {
		name        string
		arena, msgs int
		value       int
		wantFull    int // unsettled messages held when reserve first says full
	}{
		{"bytes", 1024, 64, 48, 16}, // 16-byte key + 48: 64 bytes each
		{"count", 1 << 16, 8, 10, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newPending(tt.arena, tt.msgs)
			var kept []uint64 // every other message stays unsettled; the rest settle at once
			for i := 0; ; i++ {
				seq, _, ok, err := r.reserve(bytes.Repeat([]byte{byte(i)}, tt.value))
				if err != nil {
					t.Fatal(err)
				}
				if !ok {
					break
				}
				if i%2 == 0 {
					kept = append(kept, seq)
				} else {
					r.settle(seq)
				}
				if i > 10*tt.msgs+10*tt.arena/tt.value {
					t.Fatalf("%d unsettled messages of %d bytes and still not full", len(kept), tt.value)
				}
			}
			if len(kept) != tt.wantFull {
				t.Fatalf("full with %d unsettled messages, want %d", len(kept), tt.wantFull)
			}
			for i, seq := range kept {
				if v, ok := r.value(seq); !ok || !bytes.Equal(v, bytes.Repeat([]byte{byte(2 * i)}, tt.value)) {
					t.Fatalf("unsettled message %d changed: %v, %t", seq, v, ok)
				}
			}
			// Settling one makes room for one more.
			r.settle(kept[0])
			if _, _, ok, _ := r.reserve(make([]byte, tt.value)); !ok {
				t.Fatal("no room after settling the oldest message")
			}
		})
	}
}

// The bytes value returns stay valid until settle, even when the ring would like to move on past them.
func TestPendingValueStaysValidUntilSettled(t *testing.T) {
	r := newPending(256, 8)
	a, _, _, _ := r.reserve(bytes.Repeat([]byte("a"), 56))
	v, ok := r.value(a) // a delivery report is using these bytes now
	if !ok {
		t.Fatal("value of a reserved message not found")
	}
	for i := range 20 {
		seq, _, ok, _ := r.reserve(bytes.Repeat([]byte("b"), 56))
		if ok {
			r.settle(seq)
		}
		if string(v) != string(bytes.Repeat([]byte("a"), 56)) {
			t.Fatalf("after %d more messages the bytes being reported read %q", i+1, v)
		}
	}
	r.settle(a)
	if _, _, ok, _ := r.reserve(bytes.Repeat([]byte("c"), 56)); !ok {
		t.Fatal("no room once the reported message settled")
	}
}
