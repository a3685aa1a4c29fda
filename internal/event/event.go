package event

import (
	"math/bits"
	"strconv"
	"time"
)

// Event is one log event as the pipeline's schema defines it (the ClickHouse table logs).
type Event struct {
	EventID   uint32
	Level     string
	Source    string
	Timestamp time.Time
	Computer  string
	User      string
	Message   string
}

// AppendJSON appends e as one JSON object, keys in the schema's order, without a trailing newline. Strings
// are escaped as JSON requires (quote, backslash, control characters; U+2028 and U+2029 too, so the line is
// also safe as JavaScript), and invalid UTF-8 becomes U+FFFD, so the output always passes Strict validation
// as long as Level is not empty and Timestamp lies in 1900..2299. The timestamp is written in UTC with
// TimestampLayout.
func (e Event) AppendJSON(dst []byte) []byte {
	dst = append(dst, `{"eventId":`...)
	dst = strconv.AppendUint(dst, uint64(e.EventID), 10)
	dst = append(dst, `,"level":"`...)
	dst = appendEscaped(dst, e.Level)
	dst = append(dst, `","source":"`...)
	dst = appendEscaped(dst, e.Source)
	dst = append(dst, `","timestamp":"`...)
	dst = appendTimestamp(dst, e.Timestamp)
	dst = append(dst, `","computer":"`...)
	dst = appendEscaped(dst, e.Computer)
	dst = append(dst, `","user":"`...)
	dst = appendEscaped(dst, e.User)
	dst = append(dst, `","message":"`...)
	dst = appendEscaped(dst, e.Message)
	return append(dst, `"}`...)
}

// safe marks the ASCII bytes that appear in a JSON string as themselves.
var safe = func() (t [0x80]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const hexDigits = "0123456789abcdef"

// appendEscaped appends the body of a JSON string holding s (no quotes).
func appendEscaped[T string | []byte](dst []byte, s T) []byte {
	start := 0
	for i := 0; i < len(s); {
		// Eight bytes at a time up to the first one that is not copied as is.
		for i+8 <= len(s) {
			m := special(load64(s, i))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(s) {
			break
		}
		c := s[i]
		if c < 0x80 {
			if safe[c] {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
			}
			i++
			start = i
			continue
		}
		n := runeAt(s, i)
		switch {
		case n == 0:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i++
			start = i
		case n == 3 && c == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9):
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]&0xF])
			i += 3
			start = i
		default:
			i += n
		}
	}
	return append(dst, s[start:]...)
}

// load64 reads s[i:i+8] as a little-endian word; the compiler turns it into a single load.
func load64[T string | []byte](s T, i int) uint64 {
	s = s[i : i+8]
	return uint64(s[0]) | uint64(s[1])<<8 | uint64(s[2])<<16 | uint64(s[3])<<24 |
		uint64(s[4])<<32 | uint64(s[5])<<40 | uint64(s[6])<<48 | uint64(s[7])<<56
}

// needsEscape reports whether b holds a byte that appendEscaped might change. Non-ASCII counts, so this is
// conservative; it is exact for ASCII.
func needsEscape(b []byte) bool {
	i := 0
	for ; i+8 <= len(b); i += 8 {
		if special(load64(b, i)) != 0 {
			return true
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c >= 0x80 || !safe[c] {
			return true
		}
	}
	return false
}
