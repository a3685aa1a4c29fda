package syslog

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// maxCountDigits is the most digits an octet count may have: ten digits already exceed any line limit.
const maxCountDigits = 10

// Reject is a part of the stream that carries no event, with the reason it is dead-lettered for. Sample is
// the rejected bytes as far as they were read (a sub-slice of the scanned data, valid as long as it is);
// callers bound it before keeping it. The zero Reject (Reason "") means none.
type Reject struct {
	Reason event.Reason
	Detail string
	Sample []byte
}

// Scanner splits a byte stream into syslog frames as RFC 6587 describes, deciding for each frame from its
// first byte: a digit starts an octet-counted frame ("LEN SP MSG", the only framing RFC 5425 allows over
// TLS), anything else a frame that ends at LF (non-transparent framing; a CR before the LF is dropped).
// Empty lines between frames, and an LF or CRLF trailer after an octet-counted frame, are skipped.
//
// Bad framing is rejected without losing what follows it: a frame over the limit is skipped exactly (its
// count says how far) or up to its LF; a count that is not a number, or one that disagrees with the data
// (the bytes after the frame do not start another), makes the scanner skip to the next place a frame
// plausibly starts: after an LF, or at "LEN SP <PRI>".
//
// A Scanner keeps state between calls (a frame skipped across reads) and is used by one goroutine.
type Scanner struct {
	max        int  // the longest frame accepted (MSG and header, without the count)
	skip       int  // bytes of an over-limit octet-counted frame still to skip
	toLF       bool // skipping the rest of an over-limit LF-terminated frame
	resync     bool // skipping to the next plausible frame start
	toSpace    bool // skipping the rest of a bad count, before resync
	afterCount bool // the previous frame was octet-counted
}

// NewScanner returns a Scanner that accepts frames of up to maxFrame bytes.
func NewScanner(maxFrame int) *Scanner {
	return &Scanner{max: maxFrame}
}

// Resync makes the scanner skip to the next plausible frame start (after the caller dropped bytes).
func (s *Scanner) Resync() {
	s.resync, s.skip, s.toLF, s.toSpace = true, 0, false, false
}

// Next scans data, the unread bytes, for the next frame. It returns how many bytes of data it consumed,
// and either a frame (a sub-slice of data), or a Reject, or neither when it needs more data (the caller then
// keeps data[n:] and reads more). atEOF says no more bytes will come: a frame still incomplete is rejected as
// truncated. Next does not allocate unless it rejects.
func (s *Scanner) Next(data []byte, atEOF bool) (n int, frame []byte, rej Reject) {
	for {
		rest := data[n:]
		switch {
		case s.skip > 0:
			k := min(s.skip, len(rest))
			s.skip -= k
			n += k
			if s.skip > 0 {
				return n, nil, Reject{}
			}
			continue
		case s.toSpace:
			i := bytes.IndexAny(rest, " \n")
			if i < 0 {
				return len(data), nil, Reject{}
			}
			if rest[i] == ' ' {
				i++
			}
			n += i
			s.toSpace = false
			continue
		case s.toLF:
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				return len(data), nil, Reject{}
			}
			n += i + 1
			s.toLF = false
			continue
		case s.resync:
			p := 0
			switch startsFrame(rest) {
			case undecided:
				if !atEOF {
					return n, nil, Reject{}
				}
				p = resyncPoint(rest)
			case no:
				p = resyncPoint(rest)
			}
			if p < 0 {
				if atEOF {
					s.resync = false
					return len(data), nil, Reject{}
				}
				return n + keepTail(rest, 0), nil, Reject{}
			}
			n += p
			s.resync, s.afterCount = false, false
			continue
		}
		if len(rest) == 0 {
			return n, nil, Reject{}
		}
		switch c := rest[0]; {
		case c == '\n' || c == '\r':
			n++
			continue
		case s.afterCount && !couldStart(rest):
			// The previous frame ended where its count said, and what follows starts no frame: the count
			// was smaller than the message it was sent with.
			s.afterCount = false
			junk := rest[:s.junk(rest, 0, atEOF)]
			return n + len(junk), nil, Reject{Reason: event.ReasonSyslogCountMismatch, Sample: junk,
				Detail: fmt.Sprintf("%d bytes after an octet-counted frame start no frame: the frame's count was smaller than its message", len(junk))}
		case c >= '0' && c <= '9':
			k, frame, rej := s.counted(rest, atEOF)
			return n + k, frame, rej
		}
		k, frame, rej := s.terminated(rest, atEOF)
		return n + k, frame, rej
	}
}

// counted scans an octet-counted frame at the start of rest.
func (s *Scanner) counted(rest []byte, atEOF bool) (int, []byte, Reject) {
	count, i := 0, 0
	for ; i < len(rest) && rest[i] != ' '; i++ {
		c := rest[i]
		if c < '0' || c > '9' || i == maxCountDigits {
			return s.badCount(rest, fmt.Sprintf("octet count %q is not a number of at most %d digits followed by a space", sample(rest[:i+1], 16), maxCountDigits), atEOF)
		}
		count = count*10 + int(c-'0')
	}
	if i == len(rest) {
		if atEOF {
			return len(rest), nil, truncated(rest, fmt.Sprintf("an octet count without its frame (%d bytes)", len(rest)))
		}
		return 0, nil, Reject{}
	}
	if rest[0] == '0' {
		return s.badCount(rest, fmt.Sprintf("octet count %q starts with 0", rest[:i]), atEOF)
	}
	if count > s.max {
		have := len(rest) - i - 1
		if have >= count {
			s.afterCount = true
			return i + 1 + count, nil, overLimit(rest[:i+1+count], count, s.max)
		}
		s.skip = count - have
		s.afterCount = true
		return len(rest), nil, overLimit(rest, count, s.max)
	}
	end := i + 1 + count
	if len(rest) < end {
		if atEOF {
			return len(rest), nil, truncated(rest, fmt.Sprintf("%d of the %d bytes its octet count announced", len(rest)-i-1, count))
		}
		return 0, nil, Reject{}
	}
	if end < len(rest) {
		if c := rest[end]; !couldStart(rest[end:]) {
			// What follows the frame starts no frame: the count disagrees with the data (larger or smaller than
			// the message). The frame and what follows, up to the next plausible start, are one reject.
			s.afterCount = false
			bad := rest[:s.junk(rest, i+1, atEOF)]
			return len(bad), nil, Reject{Reason: event.ReasonSyslogCountMismatch, Sample: bad,
				Detail: fmt.Sprintf("octet count %d disagrees with the data: byte %q follows the frame where the next frame should start", count, c)}
		}
	}
	s.afterCount = true
	return end, rest[i+1 : end], Reject{}
}

// badCount rejects a count that is not a number and skips to the next plausible frame start.
func (s *Scanner) badCount(rest []byte, detail string, atEOF bool) (int, []byte, Reject) {
	bad := rest
	// The search starts after the bad count: "12x4 <13>" must not resync at "4 <13>".
	// The frame it counts goes with it: the search for the next frame starts after the "SP <".
	switch tok := bytes.IndexAny(rest, " \n"); {
	case tok < 0:
		s.toSpace, s.resync = !atEOF, !atEOF
	case rest[tok] == '\n':
		bad = rest[:tok+1]
	default:
		bad = rest[:s.junk(rest, tok+1, atEOF)]
	}
	s.afterCount = false
	return len(bad), nil, Reject{Reason: event.ReasonSyslogBadCount, Detail: detail, Sample: bad}
}

// terminated scans an LF-terminated frame at the start of rest.
func (s *Scanner) terminated(rest []byte, atEOF bool) (int, []byte, Reject) {
	s.afterCount = false
	i := bytes.IndexByte(rest, '\n')
	if i < 0 {
		// Already over the limit (max+1 bytes may still be max and the CR of a CRLF).
		if n := len(rest); n > s.max+1 || (n == s.max+1 && rest[n-1] != '\r') {
			s.toLF = !atEOF
			return n, nil, Reject{Reason: event.ReasonOversized, Sample: rest,
				Detail: fmt.Sprintf("frame exceeds the limit of %d bytes", s.max)}
		}
		if atEOF {
			return len(rest), nil, truncated(rest, fmt.Sprintf("%d bytes of a frame without its LF", len(rest)))
		}
		return 0, nil, Reject{}
	}
	frame := rest[:i]
	if j := len(frame) - 1; j >= 0 && frame[j] == '\r' {
		frame = frame[:j]
	}
	if len(frame) > s.max {
		return i + 1, nil, Reject{Reason: event.ReasonOversized, Sample: frame,
			Detail: fmt.Sprintf("frame of %d bytes exceeds the limit of %d bytes", len(frame), s.max)}
	}
	return i + 1, frame, Reject{}
}

// junk returns how much of rest, from from on, to reject before the next plausible frame start. When none
// is in rest yet, the scanner goes on skipping (resync) and the end of rest that could start one is kept.
func (s *Scanner) junk(rest []byte, from int, atEOF bool) int {
	if p := resyncPoint(rest[from:]); p >= 0 {
		return from + p
	}
	if atEOF {
		return len(rest)
	}
	s.resync = true
	return keepTail(rest, from)
}

// keepTail returns where the end of b that could still start a frame ("LEN SP <PRI>" not yet all read)
// begins, not before from: the digits of a count are kept whole.
func keepTail(b []byte, from int) int {
	cut := max(from, len(b)-maxCountDigits-6)
	for low := cut - maxCountDigits; cut > from && cut > low && digit(b[cut-1]); {
		cut--
	}
	return cut
}

func overLimit(b []byte, count, limit int) Reject {
	return Reject{Reason: event.ReasonSyslogCountOverLimit, Sample: b,
		Detail: fmt.Sprintf("octet count %d exceeds the limit of %d bytes; the frame is skipped", count, limit)}
}

func truncated(b []byte, what string) Reject {
	return Reject{Reason: event.ReasonSyslogTruncatedFrame, Sample: b, Detail: "stream ended after " + what}
}

// resyncPoint returns the first position after the start of b where a frame plausibly starts: just after
// an LF, at an octet count followed by " <PRI>", or at a "<PRI>" followed by "1 " (RFC 5424) or by the
// first letter of a month or a digit (RFC 3164); -1 when there is none in b, or when the end of b may be the
// start of one (see keepTail).
func resyncPoint(b []byte) int {
	lf := bytes.IndexByte(b, '\n')
	limit := len(b)
	if lf >= 0 {
		limit = lf + 1
	}
	for from := 1; from < limit; {
		k := bytes.IndexByte(b[from:limit], '<')
		if k < 0 {
			break
		}
		lt := from + k
		from = lt + 1
		switch headerAt(b[lt:]) {
		case no:
			continue
		case undecided:
			return -1
		}
		// A count before it makes the frame start there.
		if b[lt-1] == ' ' {
			start := lt - 1
			for start > 0 && lt-1-start < maxCountDigits && digit(b[start-1]) {
				start--
			}
			if start < lt-1 && b[start] != '0' && (start == 0 || !digit(b[start-1])) {
				if start == 0 {
					continue // the start of b is where the search began, not a new frame
				}
				return start
			}
		}
		return lt
	}
	if lf >= 0 {
		return lf + 1
	}
	return -1
}

// headerAt reports whether b starts with "<PRI>" and the first byte of what follows it in RFC 5424 ("1 ")
// or RFC 3164 (a month's capital letter, or a digit of an RFC 3339 time): yes, no or undecided.
func headerAt(b []byte) tri {
	if priAt(b) != yes {
		return priAt(b)
	}
	i := bytes.IndexByte(b, '>') + 1
	if i >= len(b) {
		return undecided
	}
	switch c := b[i]; {
	case c == '1':
		if i+1 >= len(b) {
			return undecided
		}
		if b[i+1] == ' ' || digit(b[i+1]) {
			return yes
		}
	case digit(c) || strings.IndexByte("JFMASOND", c) >= 0:
		return yes
	}
	return no
}

// couldStart reports whether b, what follows an octet-counted frame, starts a frame, or may still when more
// bytes come: an LF or CR (a trailer), "<PRI>", or "LEN SP <PRI>".
func couldStart(b []byte) bool {
	switch c := b[0]; {
	case c == '\n' || c == '\r':
		return true
	case c == '<':
		return headerAt(b) != no
	case c < '1' || c > '9':
		return false
	}
	i := 0
	for i < len(b) && i < maxCountDigits && digit(b[i]) {
		i++
	}
	if i == len(b) {
		return true
	}
	return b[i] == ' ' && headerAt(b[i+1:]) != no
}

// startsFrame reports whether b starts with an octet count followed by " <PRI>": yes, no or undecided.
func startsFrame(b []byte) tri {
	i := 0
	for i < len(b) && i < maxCountDigits && digit(b[i]) {
		i++
	}
	switch {
	case i == 0 || b[0] == '0':
		return no
	case i == len(b):
		return undecided
	case b[i] != ' ':
		return no
	}
	return headerAt(b[i+1:])
}

// priAt reports whether b starts with "<PRI>" (1 to 3 digits): yes, no, or undecided (b ends before it
// could tell).
func priAt(b []byte) tri {
	if len(b) == 0 {
		return undecided
	}
	if b[0] != '<' {
		return no
	}
	for i := 1; i <= 4; i++ {
		if i == len(b) {
			return undecided
		}
		switch c := b[i]; {
		case c == '>' && i > 1:
			return yes
		case !digit(c):
			return no
		}
	}
	return no
}

type tri int8

const (
	no tri = iota
	yes
	undecided
)

func sample(b []byte, n int) []byte {
	if len(b) > n {
		return b[:n]
	}
	return b
}
