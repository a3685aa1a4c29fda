package kafkaout

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"sync"
)

// pending holds a copy of every message librdkafka has not yet reported on, in one byte arena, keyed by
// a sequence number that travels in the message's key (see keyBytes). A delivery report then needs only the key
// back (go.delivery.report.fields=key) to find its message's bytes, instead of confluent-kafka-go
// copying every value back into a fresh Go slice per report: an allocation of the whole line per message
// that the garbage collector then has to account for, used only by the rare report of a failure.
//
// The arena is a ring: values are appended at the tail and freed from the head, so the bytes cost no
// allocation and hold no pointers for the collector to scan. Reports arrive out of order (partitions are
// acknowledged separately, and a partition without a leader holds its messages until it has one again or
// they time out); an entry reported early is marked settled, and the head moves over settled entries. When
// the tail needs room that an unsettled entry at the head still holds, that entry's bytes move out of the
// ring into a copy of their own (moved), and the head goes on: one unacknowledged message never pins the
// traffic behind it. What the ring holds is bounded by its unsettled entries, wherever they lie: at most
// the arena's size in bytes (held, counting moved copies too) and the slots' count in messages (live);
// past that, reserve says full and Produce waits for deliveries. The ring is sized above librdkafka's own
// local-queue bound, so in the steady state the local queue, not the ring, is what makes Produce wait.
type pending struct {
	mu    sync.Mutex
	arena []byte
	slots []pendingSlot // indexed by sequence & mask
	mask  uint64
	// head is the oldest sequence still in the ring, tail the next to hand out; headPos and tailPos are the
	// arena positions (counting up without wrapping; the arena offset is pos % len(arena)) of head's bytes
	// and of the next free byte.
	head, tail       uint64
	headPos, tailPos uint64
	// held is the footprint of every unsettled entry (in the ring or moved), live their count.
	held, live uint64
	// moved holds the values of unsettled entries older than head, moved out of the ring.
	moved map[uint64][]byte
	// instance is the first half of every key: random, drawn once per producer (see keyBytes).
	instance [8]byte
}

type pendingSlot struct {
	pos     uint64
	n       int
	settled bool
	// inUse: value handed these bytes out and settle has not come yet; they must not be moved or reused.
	inUse bool
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
	r := &pending{arena: make([]byte, arenaBytes), slots: make([]pendingSlot, n), mask: n - 1, moved: make(map[uint64][]byte)}
	// crypto/rand.Read never fails (Go 1.24): a producer's keys differ from every other producer's.
	_, _ = rand.Read(r.instance[:])
	return r
}

// footprint is what an entry of n value bytes takes of the ring: its key and value, aligned to 8 bytes.
func footprint(n int) uint64 { return (keyBytes + uint64(n) + 7) &^ 7 }

// reserve copies value into the ring behind its key (the instance and the sequence), and returns the
// sequence and the key (in the ring too: the message's key bytes need no allocation of their own;
// librdkafka copies them on Produce). ok is false while the unsettled entries hold the whole arena or every
// slot; err is errTooLarge for a value that could never fit.
func (r *pending) reserve(value []byte) (seq uint64, key []byte, ok bool, err error) {
	size := uint64(len(r.arena))
	n := keyBytes + uint64(len(value))
	if n > size {
		return 0, nil, false, errTooLarge
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	fp := footprint(len(value))
	if r.live > r.mask || r.held+fp > size {
		return 0, nil, false, nil
	}
	var pos uint64
	for {
		pos = r.tailPos
		if off := pos % size; off+n > size {
			pos += size - off // an entry never wraps: it starts the next lap
		}
		if r.tail-r.head <= r.mask && pos+n-r.headPos <= size {
			break
		}
		// The ring is full by position: move the head entry out of the way (see pending).
		if !r.evictHead() {
			return 0, nil, false, nil
		}
	}
	seq = r.tail
	off := pos % size
	key = r.arena[off : off+keyBytes : off+keyBytes]
	copy(key, r.instance[:])
	binary.BigEndian.PutUint64(key[len(r.instance):], seq)
	copy(r.arena[off+keyBytes:], value)
	r.slots[seq&r.mask] = pendingSlot{pos: pos, n: len(value)}
	r.tail++
	r.tailPos = pos + fp // entries start on 8-byte boundaries: no two share a machine word
	r.held += fp
	r.live++
	return seq, key, true, nil
}

// evictHead moves the head entry's value out of the ring, if it is unsettled, and advances the head. It
// reports false when it cannot: the ring is empty, or the head's bytes are in use by a delivery report.
func (r *pending) evictHead() bool {
	if r.head == r.tail {
		return false
	}
	s := &r.slots[r.head&r.mask]
	if s.inUse {
		return false
	}
	if !s.settled {
		off := s.pos%uint64(len(r.arena)) + keyBytes
		r.moved[r.head] = append([]byte(nil), r.arena[off:off+uint64(s.n)]...)
		s.settled = true // as far as the ring is concerned: its bytes are no longer here
	}
	r.advance()
	return true
}

// value returns the bytes of an unsettled sequence; they stay valid until settle(seq).
func (r *pending) value(seq uint64) ([]byte, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.head {
		v, ok := r.moved[seq]
		return v, ok
	}
	if seq >= r.tail {
		return nil, false
	}
	s := &r.slots[seq&r.mask]
	if s.settled {
		return nil, false
	}
	s.inUse = true
	off := s.pos%uint64(len(r.arena)) + keyBytes
	return r.arena[off : off+uint64(s.n) : off+uint64(s.n)], true
}

// settle frees seq's bytes (the ring's room once every older entry in the ring is settled or moved out).
// Settling twice is harmless.
func (r *pending) settle(seq uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if seq < r.head {
		if v, ok := r.moved[seq]; ok {
			delete(r.moved, seq)
			r.held -= footprint(len(v))
			r.live--
		}
		return
	}
	if seq >= r.tail {
		return
	}
	s := &r.slots[seq&r.mask]
	if s.settled {
		return
	}
	s.settled, s.inUse = true, false
	r.held -= footprint(s.n)
	r.live--
	r.advance()
}

// advance moves the head over settled entries.
func (r *pending) advance() {
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

// keyBytes is the length of a message's key: the producer's random 8-byte instance id, then the message's
// sequence number, big-endian. The key is unique to the message (no other producer, no restart of this one,
// draws the same instance id but with odds of 2^-64) and stays with it: librdkafka's own retries resend it,
// a dead letter keeps it and `reader replay` sends it again. ClickHouse's logs collapses rows on it, so a
// copy of a message at another offset is not a second event.
const keyBytes = 16

// seqOf reads the sequence number back from a key this ring handed out; ok is false for any other key.
func (r *pending) seqOf(key []byte) (uint64, bool) {
	if len(key) != keyBytes || !bytes.Equal(key[:len(r.instance)], r.instance[:]) {
		return 0, false
	}
	return binary.BigEndian.Uint64(key[len(r.instance):]), true
}
