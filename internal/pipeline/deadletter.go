package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
)

// Reasons the pipeline itself adds to the event package's validation reasons.
const (
	// ReasonDeliveryFailed marks a valid line Kafka did not take (message timeout, purge at shutdown).
	ReasonDeliveryFailed = "delivery_failed"
)

// DeadLetter is one rejected line: a bounded sample of its bytes and why.
type DeadLetter struct {
	Time   time.Time
	Reason string
	Detail string
	Source string
	Line   []byte
	// LineBytes is the line's length; more than len(Line) when Line is only a sample.
	LineBytes int
	// PossiblyPersisted marks a line whose delivery failed after it may have reached the broker (a message
	// timeout, a purge in flight): it may be in the topic already, so a replay must check before sending it.
	PossiblyPersisted bool
}

// DeadLetterSink stores dead letters. Put is called concurrently. A sink that settles asynchronously reports
// the outcome later in the ledger (Kafka through the delivery reports, the file when it syncs); a synchronous
// one returns its error.
type DeadLetterSink interface {
	// Put stores dl; async reports whether the outcome arrives later through a delivery report.
	Put(ctx context.Context, dl DeadLetter) (async bool, err error)
	Close() error
}

// fileSyncEvery is how often the dead-letter file is written out and synced: a dead letter waits at most
// about this long (in flight in the ledger) before it counts as dead-lettered.
const fileSyncEvery = time.Second

// fileBufferBytes is how much the dead-letter file buffers before writing it out between syncs.
const fileBufferBytes = 64 << 10

// fileSink appends dead letters to a file as JSON lines (for local runs and as a fallback that needs no
// broker). A dead letter counts as dead-lettered only once it is in the file and the file is synced: Put
// buffers the record, the buffer is written out when it holds fileBufferBytes, and every fileSyncEvery (and
// at Close) what is buffered is written and fsynced, and the records that made it are settled in the ledger.
// A record that cannot be written (a full disk) or synced is counted failed; the file keeps only whole
// records. A failure is one ERROR when it starts, then one INFO when writes succeed again (or one WARN at
// Close if they never do) with how many lines it cost: never a line per dead letter.
// Put and Close are safe for concurrent use.
type fileSink struct {
	path   string
	counts *Counts
	log    *slog.Logger
	stop   context.CancelFunc
	done   chan struct{}

	syncMu sync.Mutex // one sync at a time, so records are settled in the order they were written

	mu      sync.Mutex // guards what follows
	f       *os.File
	buf     []byte // whole records not yet written
	records uint64 // records in buf
	written uint64 // records written to the file and not yet synced
	size    int64  // the file's length up to its last whole record
	// newline: the file ends with part of a record (left by an earlier run, or a failed write that could
	// not be cut off), so the next write starts with a newline to keep records apart.
	newline bool
	closed  bool
	// failing is set from the first failed write or sync until a write succeeds again; lost counts the
	// lines that failure cost.
	failing bool
	lost    uint64
}

// newFileSink opens (appending to) or creates path. Stored and failed dead letters are settled in counts.
func newFileSink(path string, counts *Counts, log *slog.Logger) (*fileSink, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening dead-letter file: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("opening dead-letter file: %w", err)
	}
	s := &fileSink{path: path, counts: counts, log: log, f: f, size: fi.Size(), done: make(chan struct{})}
	if s.size > 0 {
		last := make([]byte, 1)
		if _, err := f.ReadAt(last, s.size-1); err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the end of the dead-letter file: %w", err)
		}
		s.newline = last[0] != '\n'
	}
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	go s.syncLoop(ctx)
	return s, nil
}

// fileRecord is one line of the dead-letter file. Line holds the sample when it is valid UTF-8, LineBase64
// (encoding/json's []byte form) otherwise, so any input survives the round trip.
// Reason, Detail, Source, LineBytes and PossiblyPersisted carry the names of the dead-letter topic's headers
// (kafkaout.Header*); Time is its received_at.
type fileRecord struct {
	Time              time.Time `json:"time"`
	Reason            string    `json:"reason"`
	Detail            string    `json:"detail,omitempty"`
	Source            string    `json:"source,omitempty"`
	Line              *string   `json:"line,omitempty"`
	LineBase64        []byte    `json:"line_base64,omitempty"`
	LineBytes         int       `json:"line_bytes,omitempty"`
	PossiblyPersisted bool      `json:"possibly_persisted,omitempty"`
}

func newFileRecord(dl DeadLetter) fileRecord {
	rec := fileRecord{Time: dl.Time.UTC(), Reason: dl.Reason, Detail: dl.Detail, Source: dl.Source,
		LineBytes: dl.LineBytes, PossiblyPersisted: dl.PossiblyPersisted}
	if utf8.Valid(dl.Line) {
		line := string(dl.Line)
		rec.Line = &line
	} else {
		rec.LineBase64 = dl.Line
	}
	return rec
}

// deadLetter returns the dead letter r describes. A record written before line_bytes existed holds the
// whole line.
func (r fileRecord) deadLetter() DeadLetter {
	dl := DeadLetter{Time: r.Time, Reason: r.Reason, Detail: r.Detail, Source: r.Source, Line: r.LineBase64,
		LineBytes: r.LineBytes, PossiblyPersisted: r.PossiblyPersisted}
	if r.Line != nil {
		dl.Line = []byte(*r.Line)
	}
	if dl.LineBytes == 0 {
		dl.LineBytes = len(dl.Line)
	}
	return dl
}

// errSinkClosed answers a Put after Close.
var errSinkClosed = errors.New("dead-letter file closed")

// Put buffers dl; the ledger hears of it when it is synced or fails (it is asynchronous like a delivery report).
func (s *fileSink) Put(_ context.Context, dl DeadLetter) (bool, error) {
	b, err := json.Marshal(newFileRecord(dl))
	if err != nil {
		return false, fmt.Errorf("encoding dead letter: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false, errSinkClosed
	}
	// encoding/json escapes control characters, so the newline is the only one in the record.
	s.buf = append(append(s.buf, b...), '\n')
	s.records++
	if len(s.buf) >= fileBufferBytes {
		s.writeLocked()
	}
	return true, nil
}

// writeLocked writes the buffered records to the file. After a failed (or short) write, the records that
// reached the file whole wait for the sync like the others; a partial one is cut off, and the rest fail.
func (s *fileSink) writeLocked() {
	if s.records == 0 {
		return
	}
	buf := s.buf
	if s.newline {
		buf = append([]byte{'\n'}, buf...)
	}
	n, err := s.f.Write(buf)
	whole := bytes.LastIndexByte(buf[:n], '\n') + 1
	stored := uint64(bytes.Count(buf[:whole], []byte{'\n'}))
	if s.newline && whole > 0 {
		stored-- // the separator
		s.newline = false
	}
	s.size += int64(whole)
	s.written += stored
	if err == nil && s.failing {
		s.failing = false
		s.log.Info("dead-letter file writable again", "file", s.path, "lines_lost", s.lost)
	}
	if err != nil {
		err = fmt.Errorf("writing dead-letter file %s: %w", s.path, err)
		if whole < n {
			if terr := s.f.Truncate(s.size); terr != nil {
				s.size += int64(n - whole) // the partial record stays, set apart by the next write's newline
				s.newline = true
				err = fmt.Errorf("%w; cutting off the partial record: %w", err, terr)
			}
		}
		s.failLocked(s.records-stored, err)
	}
	s.buf, s.records = s.buf[:0], 0
}

// failLocked counts n records as failed and logs the first failure of an episode.
func (s *fileSink) failLocked(n uint64, err error) {
	if n == 0 {
		return
	}
	s.counts.addFailed(n)
	if !s.failing {
		s.failing, s.lost = true, 0
		s.log.Error("dead-letter file failing: lines that cannot be stored are counted failed (lost) until writes succeed again",
			"file", s.path, "err", err)
	}
	s.lost += n
}

// sync writes out what is buffered, fsyncs the file and settles the records that are now stored.
func (s *fileSink) sync() {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	s.writeLocked()
	n := s.written
	s.written = 0
	s.mu.Unlock()
	if n == 0 {
		return
	}
	// Records written meanwhile are synced too, but settled by the next sync: the count stays a lower bound.
	err := s.f.Sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil {
		s.failLocked(n, fmt.Errorf("syncing dead-letter file %s: %w", s.path, err))
		return
	}
	s.counts.addDeadLettered(n)
}

func (s *fileSink) syncLoop(ctx context.Context) {
	defer close(s.done)
	t := time.NewTicker(fileSyncEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sync()
		}
	}
}

// Close stores what is buffered (settling it), stops the periodic sync and closes the file.
func (s *fileSink) Close() error {
	s.stop()
	<-s.done
	s.sync()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if s.failing {
		s.log.Warn("dead-letter file still failing at shutdown", "file", s.path, "lines_lost", s.lost)
	}
	if err := s.f.Close(); err != nil {
		return fmt.Errorf("closing dead-letter file: %w", err)
	}
	return nil
}

// producer is what the pipeline needs of kafkaout.Producer.
type producer interface {
	Produce(ctx context.Context, topic string, value []byte, headers ...kafkaout.Header) error
}

// kafkaSink produces dead letters to a topic: the value is the line's sample, headers say why.
type kafkaSink struct {
	p     producer
	topic string
}

func (s *kafkaSink) Put(ctx context.Context, dl DeadLetter) (bool, error) {
	return true, s.p.Produce(ctx, s.topic, dl.Line, deadLetterHeaders(dl)...)
}

// deadLetterHeaders describes dl in the dead-letter topic's headers.
func deadLetterHeaders(dl DeadLetter) []kafkaout.Header {
	h := []kafkaout.Header{
		{Key: kafkaout.HeaderReason, Value: []byte(dl.Reason)},
		{Key: kafkaout.HeaderDetail, Value: []byte(dl.Detail)},
		{Key: kafkaout.HeaderSource, Value: []byte(dl.Source)},
		{Key: kafkaout.HeaderReceivedAt, Value: []byte(dl.Time.UTC().Format(time.RFC3339Nano))},
		{Key: kafkaout.HeaderLineBytes, Value: strconv.AppendInt(nil, int64(dl.LineBytes), 10)},
	}
	if dl.PossiblyPersisted {
		h = append(h, kafkaout.Header{Key: kafkaout.HeaderPossiblyPersisted, Value: []byte("true")})
	}
	return h
}

// deadLetterFromMessage reads a record of the dead-letter topic. A record written before line_bytes existed
// holds the whole line.
func deadLetterFromMessage(m kafkaout.Message) DeadLetter {
	dl := DeadLetter{Line: m.Value, LineBytes: len(m.Value)}
	dl.Reason, _ = m.Header(kafkaout.HeaderReason)
	dl.Detail, _ = m.Header(kafkaout.HeaderDetail)
	dl.Source, _ = m.Header(kafkaout.HeaderSource)
	if v, ok := m.Header(kafkaout.HeaderReceivedAt); ok {
		dl.Time, _ = time.Parse(time.RFC3339Nano, v)
	}
	if dl.Time.IsZero() {
		dl.Time = m.Time
	}
	if v, ok := m.Header(kafkaout.HeaderLineBytes); ok {
		if n, err := strconv.Atoi(v); err == nil {
			dl.LineBytes = n
		}
	}
	v, _ := m.Header(kafkaout.HeaderPossiblyPersisted)
	dl.PossiblyPersisted = v == "true"
	return dl
}

func (s *kafkaSink) Close() error { return nil }
