package logsource

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// BadClass names a kind of input injected between good lines to exercise a reader's dead-letter path.
type BadClass string

// The classes of injected input. All but BadCRLF are bad lines that carry no eventId of the good stream (those
// that need one use 0). BadCRLF is a good line: the good event at the injection point ends in "\r\n".
const (
	BadOversized    BadClass = "oversized"      // a line of Config.OversizeBytes bytes
	BadInvalidUTF8  BadClass = "invalid_utf8"   // an event whose message holds bytes that are not UTF-8
	BadInvalidJSON  BadClass = "invalid_json"   // an object with a bare word in it
	BadArray        BadClass = "array"          // an event wrapped in an array
	BadMissingField BadClass = "missing_field"  // an event without its user key
	BadWrongType    BadClass = "wrong_type"     // eventId as a string
	BadEventIDRange BadClass = "event_id_range" // eventId 4294967296
	BadTimestamp    BadClass = "bad_timestamp"  // timestamp as DD/MM/YYYY
	BadEmpty        BadClass = "empty"          // an empty line
	BadTruncated    BadClass = "truncated"      // half an event, then the connection closes
	BadNUL          BadClass = "nul"            // a NUL byte inside the message
	BadBOM          BadClass = "bom"            // an event preceded by a UTF-8 byte order mark
	BadCRLF         BadClass = "crlf"           // a good event ending in \r\n (good, counted in sent)
	BadDeep         BadClass = "deep"           // an event with an extra key nested 100 arrays deep
	BadHugeNumber   BadClass = "huge_number"    // eventId of 40 digits
	BadDuplicateKey BadClass = "duplicate_key"  // an event with level twice
)

// AllBadClasses lists every class, in a fixed order.
var AllBadClasses = []BadClass{
	BadOversized, BadInvalidUTF8, BadInvalidJSON, BadArray, BadMissingField, BadWrongType, BadEventIDRange,
	BadTimestamp, BadEmpty, BadTruncated, BadNUL, BadBOM, BadCRLF, BadDeep, BadHugeNumber, BadDuplicateKey,
}

var classIndex = func() map[BadClass]int {
	m := make(map[BadClass]int, len(AllBadClasses))
	for i, c := range AllBadClasses {
		m[c] = i
	}
	return m
}()

// ParseBadClasses parses a comma-separated list of class names; "all" stands for AllBadClasses.
func ParseBadClasses(s string) ([]BadClass, error) {
	var out []BadClass
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "":
			continue
		case name == "all":
			out = append(out, AllBadClasses...)
			continue
		}
		c := BadClass(name)
		if _, ok := classIndex[c]; !ok {
			return nil, fmt.Errorf("parsing bad classes: %q (want some of %s): %w", name, joinClasses(AllBadClasses), ErrUnknownBadClass)
		}
		out = append(out, c)
	}
	return out, nil
}

func joinClasses(cs []BadClass) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = string(c)
	}
	return strings.Join(names, ",")
}

// Reason returns the dead-letter reason a reader validating in mode m gives a line of class c, or "" when
// the line is delivered (always for BadCRLF; in lenient mode for the classes that are valid JSON objects).
// Oversized and truncated lines are rejected by the reader's framer, before validation.
func (c BadClass) Reason(m event.Mode) event.Reason {
	switch c {
	case BadOversized:
		return event.ReasonOversized
	case BadTruncated:
		return event.ReasonTruncated
	case BadInvalidUTF8:
		return event.ReasonInvalidUTF8
	case BadInvalidJSON, BadNUL, BadBOM:
		return event.ReasonInvalidJSON
	case BadArray:
		return event.ReasonNotObject
	case BadEmpty:
		return event.ReasonEmpty
	case BadDeep:
		return event.ReasonTooDeep
	}
	if m == event.Lenient {
		return ""
	}
	switch c {
	case BadMissingField:
		return event.ReasonMissingField
	case BadWrongType:
		return event.ReasonWrongType
	case BadEventIDRange, BadHugeNumber:
		return event.ReasonEventIDRange
	case BadTimestamp:
		return event.ReasonBadTimestamp
	case BadDuplicateKey:
		return event.ReasonDuplicateKey
	}
	return ""
}

// badLines builds, once per run, the bytes written for each class: a whole line with its newline, except
// truncated (no newline: the connection closes after it) and crlf (nil: it changes a good line's ending).
func badLines(start time.Time, oversize int) [][]byte {
	base := event.Event{EventID: 0, Level: "Info", Source: "logsource", Timestamp: start, Computer: "logsource", User: "-",
		Message: "injected line"}
	good := string(base.AppendJSON(nil))
	replace := func(old, new string) string {
		if !strings.Contains(good, old) {
			panic("logsource: bad line template lost " + old) // a programming error, caught by the tests
		}
		return strings.Replace(good, old, new, 1)
	}
	withoutBrace := strings.TrimSuffix(good, "}")
	ts := start.UTC().Format(event.TimestampLayout)
	lines := map[BadClass]string{
		BadInvalidUTF8:  replace(`"message":"`, "\"message\":\"\xff\xfe not UTF-8 "),
		BadInvalidJSON:  replace(`,"message"`, ` oops,"message"`),
		BadArray:        "[" + good + "]",
		BadMissingField: replace(`"user":"-",`, ""),
		BadWrongType:    replace(`"eventId":0,`, `"eventId":"0",`),
		BadEventIDRange: replace(`"eventId":0,`, `"eventId":4294967296,`),
		BadTimestamp:    replace(ts, start.UTC().Format("02/01/2006 15:04:05")),
		BadEmpty:        "",
		BadNUL:          replace(`"message":"`, "\"message\":\"\x00"),
		BadBOM:          "\xEF\xBB\xBF" + good,
		BadDeep:         withoutBrace + `,"nested":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + "}",
		BadHugeNumber:   replace(`"eventId":0,`, `"eventId":`+strings.Repeat("9", 40)+`,`),
		BadDuplicateKey: withoutBrace + `,"level":"Error"}`,
	}
	out := make([][]byte, len(AllBadClasses))
	for c, l := range lines {
		out[classIndex[c]] = []byte(l + "\n")
	}
	out[classIndex[BadTruncated]] = []byte(good[:len(good)/2])
	out[classIndex[BadOversized]] = oversized(oversize)
	return out
}

// oversized returns an event-like line padded in its message to exactly n bytes, plus a newline.
func oversized(n int) []byte {
	head, tail := `{"eventId":0,"level":"Info","source":"logsource","message":"`, `"}`
	if n < len(head)+len(tail) {
		return append(bytes.Repeat([]byte("x"), n), '\n')
	}
	b := make([]byte, 0, n+1)
	b = append(b, head...)
	b = append(b, bytes.Repeat([]byte("x"), n-len(head)-len(tail))...)
	b = append(b, tail...)
	return append(b, '\n')
}
