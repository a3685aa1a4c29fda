package event

import (
	"errors"
	"strings"
)

// ErrUnknownMode is returned by ParseMode for anything but "strict" or "lenient".
var ErrUnknownMode = errors.New("unknown validation mode")

// Reason is a machine-readable dead-letter reason. Its values are stable: dead-letter consumers, metrics
// labels and dashboards key on them.
type Reason string

// The reasons a line can be rejected for.
const (
	ReasonOversized    Reason = "oversized_line"        // set by the framer: line over the length limit
	ReasonTruncated    Reason = "truncated_line"        // set by the framer: line cut by a disconnect
	ReasonEmpty        Reason = "empty_line"            // empty or whitespace-only
	ReasonInvalidUTF8  Reason = "invalid_utf8"          // bytes that are not UTF-8, or a lone surrogate escape (strict)
	ReasonInvalidJSON  Reason = "invalid_json"          // not JSON at all (includes NUL bytes and a leading BOM)
	ReasonNotObject    Reason = "not_object"            // valid JSON, but not an object
	ReasonMissingField Reason = "missing_field"         // a required key is absent (or level is empty)
	ReasonWrongType    Reason = "wrong_type"            // a required key holds the wrong JSON type
	ReasonEventIDRange Reason = "event_id_out_of_range" // eventId negative or above 4294967295
	ReasonBadTimestamp Reason = "bad_timestamp"         // timestamp not parseable into DateTime64(6)
	ReasonDuplicateKey Reason = "duplicate_key"         // a required key appears more than once
	ReasonTooDeep      Reason = "too_deep"              // nesting deeper than MaxDepth
)

// The reasons a syslog frame can be rejected for (--source-format syslog), set by the reader's syslog
// framing and header parsing before validation.
const (
	ReasonSyslogCountOverLimit Reason = "syslog_count_over_limit" // an octet count above the line limit
	ReasonSyslogBadCount       Reason = "syslog_bad_count"        // an octet count that is not a number (non-digits, too long, 0)
	ReasonSyslogCountMismatch  Reason = "syslog_count_mismatch"   // an octet count that disagrees with the data
	ReasonSyslogTruncatedFrame Reason = "syslog_truncated_frame"  // a frame cut by a disconnect or the reader stopping
	ReasonSyslogBadHeader      Reason = "syslog_bad_header"       // a header that is neither RFC 5424 nor RFC 3164
	ReasonSyslogMsgNotJSON     Reason = "syslog_msg_not_json"     // an MSG that is not a JSON object
	ReasonSyslogNoEventID      Reason = "syslog_missing_event_id" // a JSON event in MSG without a top-level eventId
)

// Error describes why a line was rejected. Field names the offending top-level key when there is one; Detail
// is short and never quotes more than a bounded sample of the input (sampleBytes), so it is safe to log.
type Error struct {
	Reason Reason
	Field  string
	Detail string
}

// Error reads "reason (field f): detail".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Reason))
	if e.Field != "" {
		b.WriteString(" (field ")
		b.WriteString(e.Field)
		b.WriteString(")")
	}
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// ReasonOf returns the Reason of err when it is (or wraps) an *Error, and "" otherwise.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ""
}
