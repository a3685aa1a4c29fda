package syslog

import (
	"bytes"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// cee is the cookie that may precede a JSON MSG (CEE's syslog mapping, as rsyslog's mmjsonparse reads it).
const cee = "@cee:"

// The fields of the event that Event looks for at the top level of MSG, as bits of a mask.
const (
	hasEventID = 1 << iota
	hasTimestamp
	hasComputer
	hasSource
	hasLevel
)

// Levels maps a syslog severity (0 to 7) to the event's level: emergency, alert and critical are
// Critical, error is Error, warning is Warning, notice and informational are Info, debug is Debug.
var Levels = [8]string{"Critical", "Critical", "Critical", "Error", "Warning", "Info", "Info", "Debug"}

// Event returns the JSON event a syslog frame carries: the JSON object in its MSG, after an optional
// "@cee:" cookie and the whitespace around it. Without fill the event is MSG's own bytes (a sub-slice of
// frame; nothing is copied). With fill, the fields the event lacks among timestamp (the header's time, in
// UTC, in event.TimestampLayout), computer (HOSTNAME), source (APP-NAME or TAG) and level (the severity, see
// Levels) are added from the header, and the event is built at the end of dst; out is dst with it appended
// (pass it back in as dst, emptied, to reuse its memory). An event that needs no field is still MSG's bytes.
//
// A frame is rejected when its header does not parse, when MSG is not a JSON object, and when the object
// has no top-level eventId: the event's key in the table must come from the event itself.
func Event(dst, frame []byte, fill bool, now time.Time) (ev, out []byte, rej Reject) {
	h, msg, err := Parse(frame, now)
	if err != nil {
		return nil, dst, Reject{Reason: event.ReasonSyslogBadHeader, Detail: err.Error(), Sample: frame}
	}
	msg = trimSpace(msg)
	if len(msg) >= len(cee) && string(msg[:len(cee)]) == cee {
		msg = trimSpace(msg[len(cee):])
	}
	have, why := topLevelKeys(msg)
	if why != "" {
		return nil, dst, Reject{Reason: event.ReasonSyslogMsgNotJSON, Detail: fmt.Sprintf("%s MSG is not a JSON object: %s", h.Format, why), Sample: frame}
	}
	if have&hasEventID == 0 {
		return nil, dst, Reject{Reason: event.ReasonSyslogNoEventID, Detail: "the JSON event in MSG has no top-level eventId", Sample: frame}
	}
	if !fill {
		return msg, dst, Reject{}
	}
	start := len(dst)
	out = append(dst, '{')
	if have&hasTimestamp == 0 && !h.Time.IsZero() {
		out = append(out, `"timestamp":"`...)
		out = h.Time.UTC().AppendFormat(out, event.TimestampLayout)
		out = append(out, `",`...)
	}
	if have&hasComputer == 0 && h.Hostname != nil {
		out = appendField(out, "computer", h.Hostname)
	}
	if have&hasSource == 0 && h.AppName != nil {
		out = appendField(out, "source", h.AppName)
	}
	if have&hasLevel == 0 {
		out = append(out, `"level":"`...)
		out = append(out, Levels[h.Severity()]...)
		out = append(out, `",`...)
	}
	if len(out) == start+1 {
		return msg, out[:start], Reject{} // nothing to fill (the memory is kept for the next frame)
	}
	out = append(out, trimSpace(msg[1:])...) // the object has a key (eventId): its rest follows the comma
	return out[start:], out, Reject{}
}

// appendField appends "key":"value", with value's '"', '\' and control bytes escaped.
func appendField(dst []byte, key string, value []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, `":"`...)
	const hex = "0123456789abcdef"
	for i := 0; i < len(value); {
		c := value[i]
		if c >= utf8.RuneSelf {
			// Bytes that are not UTF-8 (an RFC 3164 TAG may hold any) become U+FFFD: the event stays UTF-8.
			r, n := utf8.DecodeRune(value[i:])
			if r == utf8.RuneError && n == 1 {
				dst = append(dst, "\ufffd"...)
			} else {
				dst = append(dst, value[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c == 0x7f:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, `",`...)
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && isSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// topLevelKeys reports which of the event's fields b, a JSON object, has at its top level, or why b is not
// a JSON object. It checks the structure only as far as it needs to find the keys (strings, nesting,
// separators); the validator checks the rest.
func topLevelKeys(b []byte) (have int, why string) {
	if len(b) == 0 {
		return 0, "MSG is empty"
	}
	if b[0] != '{' {
		return 0, fmt.Sprintf("starts with %q", sample(b, 16))
	}
	i := skipWS(b, 1)
	if i < len(b) && b[i] == '}' {
		if skipWS(b, i+1) != len(b) {
			return 0, "data after the object"
		}
		return 0, ""
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, fmt.Sprintf("a key expected at byte %d", i)
		}
		end, esc := skipString(b, i)
		if end < 0 {
			return 0, "a key's string is not closed"
		}
		if !esc {
			switch string(b[i+1 : end-1]) {
			case "eventId":
				have |= hasEventID
			case "timestamp":
				have |= hasTimestamp
			case "computer":
				have |= hasComputer
			case "source":
				have |= hasSource
			case "level":
				have |= hasLevel
			}
		}
		i = skipWS(b, end)
		if i >= len(b) || b[i] != ':' {
			return 0, fmt.Sprintf("':' expected at byte %d", i)
		}
		if i = skipValue(b, skipWS(b, i+1)); i < 0 {
			return 0, "a value is not JSON"
		}
		i = skipWS(b, i)
		if i >= len(b) {
			return 0, "the object is not closed"
		}
		switch b[i] {
		case ',':
			i = skipWS(b, i+1)
		case '}':
			if skipWS(b, i+1) != len(b) {
				return 0, "data after the object"
			}
			return have, ""
		default:
			return 0, fmt.Sprintf("',' or '}' expected at byte %d", i)
		}
	}
}

func skipWS(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index after the string starting at b[i] ('"'), or -1, and whether it has escapes.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	for j := i + 1; j < len(b); {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return -1, esc
		}
		q := j + k
		// The quote ends the string unless an odd number of backslashes precede it.
		n := 0
		for n < q-i-1 && b[q-1-n] == '\\' {
			n++
		}
		if n > 0 {
			esc = true
		}
		if n%2 == 0 {
			if !esc && bytes.IndexByte(b[i+1:q], '\\') >= 0 {
				esc = true
			}
			return q + 1, esc
		}
		j = q + 1
	}
	return -1, esc
}

// skipValue returns the index after the JSON value starting at b[i], or -1. Nested objects and arrays are
// skipped by counting brackets outside strings.
func skipValue(b []byte, i int) int {
	if i >= len(b) {
		return -1
	}
	switch c := b[i]; {
	case c == '"':
		end, _ := skipString(b, i)
		return end
	case c == '{' || c == '[':
		depth := 0
		for j := i; j < len(b); j++ {
			switch b[j] {
			case '"':
				end, _ := skipString(b, j)
				if end < 0 {
					return -1
				}
				j = end - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return j + 1
				}
			}
		}
		return -1
	default:
		j := i
		for j < len(b) && !isSpace(b[j]) && b[j] != ',' && b[j] != '}' && b[j] != ']' {
			j++
		}
		if j == i {
			return -1
		}
		return j
	}
}
