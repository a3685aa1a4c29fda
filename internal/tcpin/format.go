package tcpin

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/syslog"
)

// Format is what a source sends.
type Format int

const (
	// NDJSON is one JSON event per LF-terminated line (the default).
	NDJSON Format = iota
	// Syslog is syslog around the JSON event: per frame, RFC 6587 octet counting or LF framing, and an
	// RFC 5424 or RFC 3164 header, each detected (see package syslog). The event is the JSON object in MSG.
	Syslog
)

// ParseFormat turns "ndjson" or "syslog" into a Format.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "ndjson":
		return NDJSON, nil
	case "syslog":
		return Syslog, nil
	}
	return 0, fmt.Errorf("%w: source format %q (want ndjson or syslog)", ErrInvalidConfig, s)
}

func (f Format) String() string {
	if f == Syslog {
		return "syslog"
	}
	return "ndjson"
}

// Set parses s (see ParseFormat) into f, so a Format is a flag.Value.
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f = v
	return nil
}

// syslogFrames is a framer's syslog state: the frame scanner and the memory of the events it filled.
type syslogFrames struct {
	sc   *syslog.Scanner
	fill bool
	// filled holds the events of one split that needed fields filled; reused from split to split.
	filled []byte
	// done counts the bytes of frames completed since the serve loop last took it: progress for the idle
	// timeout (octet-counted frames need not end in LF).
	done int
}

// splitSyslog is split for Format Syslog: it hands on the JSON event of every complete frame, and rejects
// what carries none. atEOF rejects a frame still incomplete as truncated (cause says why the stream ended).
func (f *framer) splitSyslog(ctx context.Context, h Handler, src Source, atEOF bool, cause string) {
	s := f.sys
	f.handOverBudget(ctx, h, src)
	if f.discarding { // the budget refused a frame and its start was dropped
		f.discarding = false
		s.sc.Resync()
	}
	f.lines = f.lines[:0]
	s.filled = s.filled[:0]
	now := time.Now()
	for {
		n, frame, rej := s.sc.Next(f.buf[f.start:f.end], atEOF)
		f.start += n
		if rej.Reason != "" {
			f.flush(ctx, h, src)
			if atEOF && rej.Reason == event.ReasonSyslogTruncatedFrame {
				rej.Detail = cause + ": " + rej.Detail
			}
			h.HandleReject(ctx, src, sample(rej.Sample), rej.Reason, rej.Detail)
			s.done += n
			continue
		}
		if frame == nil {
			break
		}
		s.done += n
		ev, out, rej := syslog.Event(s.filled, frame, s.fill, now)
		s.filled = out
		if rej.Reason != "" {
			f.flush(ctx, h, src)
			h.HandleReject(ctx, src, sample(rej.Sample), rej.Reason, rej.Detail)
			continue
		}
		f.lines = append(f.lines, ev)
	}
	f.flush(ctx, h, src)
	if cap(s.filled) > 4*f.initial {
		s.filled = nil // grown by an unusual read: do not keep it
	}
	if atEOF {
		f.start, f.end = 0, 0
	}
	f.shrink()
}

// newFramerFor returns the framer of one connection for cfg's format.
func newFramerFor(cfg Config) *framer {
	f := newFramer(cfg.ReadBufferBytes, cfg.MaxLineBytes)
	f.budget = cfg.shared.partial
	if cfg.Format == Syslog {
		f.sys = &syslogFrames{sc: syslog.NewScanner(cfg.MaxLineBytes), fill: cfg.SyslogFill}
	}
	return f
}

// readFramed reads conn into f until it ends or ctx is done, handing what f frames to h.
func readFramed(ctx, hctx context.Context, cfg Config, conn net.Conn, src Source, f *framer, h Handler) error {
	defer f.release()
	d := newDeadliner(ctx, conn, cfg)
	defer d.stop()
	defer d.closing(src)
	for {
		d.arm(ctx)
		n, err := f.fill(conn)
		if n > 0 {
			cfg.Observer.BytesRead(n)
			// Only a read that ends a line (a frame) extends the idle deadline and counts as progress: a
			// source that trickles a line a byte at a time (slowloris), or streams one endless line, is closed
			// after IdleTimeout like a silent one. TCPLogReader behaves the same.
			if f.sys == nil {
				if i := bytes.LastIndexByte(f.buf[f.end-n:f.end], '\n'); i >= 0 {
					d.lines(i + 1)
				}
			}
			f.split(hctx, h, src)
			if f.sys != nil && f.sys.done > 0 {
				d.lines(f.sys.done)
				f.sys.done = 0
			}
		}
		if err != nil {
			if d.again(ctx, err) {
				continue
			}
			cause, rerr := d.endCause(ctx, err)
			f.finish(hctx, h, src, cause)
			return rerr
		}
	}
}
