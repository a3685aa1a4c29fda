package kafkaout

import (
	"encoding/binary"
	"errors"
	"sync"
)

// pending holds a copy of every message librdkafka has not yet reported on, in one byte arena, keyed by
// a sequence number that travels as the message's 8-byte key. A delivery report then needs only the key
// back (go.delivery.report.fields=key) to find its message's bytes, instead of confluent-kafka-go
// copying every value back into a fresh Go slice per report: an allocation of the whole line per message
// that the garbage collector then has to account for, used only by the rare report of a failure.
//
// The arena is a ring: values are appended at the tail and freed from the head, so the bytes cost no
// allocation and hold no pointers for the collector to scan. Reports may arrive out of order (partitions
// are acknowledged separately); an entry reported early is marked settled and its bytes are reused once
// every older entry is settled too. The ring is sized above librdkafka's own local-queue bound, so in the
// steady state the local queue, not the ring, is what makes Produce wait; when the ring is full anyway
// (reports arriving out of order), reserve says so and Produce waits for deliveries the same way.
type pending struct {
	mu    sync.Mutex
	arena []byte
	slots []pendingSlot // indexed by sequence & mask
	mask  uint64
	// head is the oldest unsettled sequence, tail the next to hand out; headPos and tailPos are the
	// arena positions (counting up without wrapping; the arena offset is pos % len(arena)) of head's
	// bytes and of the next free byte.
	head, tail       uint64
	headPos, tailPos uint64
}

type pendingSlot struct {
	pos     uint64
	n       int
	settled bool
}

// errTooLarge: a value longer than the whole arena can never be held.
var errTooLarge = errors.New("message larger than the local queue")

// newPending makes a ring of arenaBytes bytes (rounded up to a multiple of 8) for up to maxMessages
// unsettled messages (rounded up to a power of two).
func newPending(arenaBytes, maxMessages int) *pending {
	arenaBytes = (arenaBytes + 7) &^ 7
	n := uint64(1)
	for n < uint64(maxMessages) {
		n <<= 1
	}
	return &pending{arena: make([]byte, arenaBytes), slots: make([]pendingSlot, n), mask: n - 1}
}

// reserve copies value into the ring behind its key, the 8-byte big-endian sequence, and returns the
// sequence and the key (in the ring too: the message's key bytes need no allocation of their own). ok is
// false while the ring is full; err is errTooLarge for a value that could never fit.
func (r *pending) reserve(value []byte) (seq uint64, key []byte, ok bool, err error) {
	size := uint64(len(r.arena))
	n := keyBytes + uint64(len(value))
	if n > size {
		return 0, nil, false, errTooLarge
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.tail-r.head > r.mask {
		return 0, nil, false, nil
	}
	pos := r.tailPos
	if off := pos % size; off+n > size {
		pos += size - off // an entry never wraps: it starts the next lap
	}
	if pos+n-r.headPos > size {
		return 0, nil, false, nil
	}
	seq = r.tail
	off := pos % size
	key = r.arena[off : off+keyBytes : off+keyBytes]
	binary.BigEndian.PutUint64(key, seq)
	copy(r.arena[off+keyBytes:], value)
	r.slots[seq&r.mask] = pendingSlot{pos: pos, n: len(value)}
	r.tail++
	r.tailPos = (pos + n + 7) &^ 7 // entries start on 8-byte boundaries: no two share a machine word
	return seq, key, true, nil
}

// value returns the bytes of an unsettled sequence; they stay valid until settle(seq).
func (r *pending) value(seq uint64) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.head || seq >= r.tail {
		return nil, false
	}
	s := r.slots[seq&r.mask]
	if s.settled {
		return nil, false
	}
	off := s.pos%uint64(len(r.arena)) + keyBytes
	return r.arena[off : off+uint64(s.n) : off+uint64(s.n)], true
}

// settle frees seq's bytes (once every older sequence is settled too). Settling twice is harmless.
func (r *pending) settle(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.head || seq >= r.tail {
		return
	}
	r.slots[seq&r.mask].settled = true
	for r.head < r.tail && r.slots[r.head&r.mask].settled {
		r.head++
	}
	if r.head == r.tail {
		// Empty: start the next value at the beginning of a lap, so even the largest fits.
		size := uint64(len(r.arena))
		r.tailPos = (r.tailPos + size - 1) / size * size
		r.headPos = r.tailPos
		return
	}
	r.headPos = r.slots[r.head&r.mask].pos
}

// keyBytes is the length of a message's key: its sequence number, big-endian.
const keyBytes = 8

// seqOf reads the sequence number back from a message's key.
func seqOf(key []byte) (uint64, bool) {
	if len(key) != keyBytes {
		return 0, false
	}
	return binary.BigEndian.Uint64(key), true
}
