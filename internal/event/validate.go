package event

import (
	"encoding/binary"
	"fmt"
	"math/bits"
	"strconv"
	"strings"
)

// MaxDepth is the deepest nesting of objects and arrays a line may have; the top-level object is depth 1.
// Deeper lines are rejected with ReasonTooDeep, which also bounds the work a hostile line can cause.
const MaxDepth = 64

// sampleBytes bounds how much of the input an Error's Detail quotes.
const sampleBytes = 16

// Validator checks lines against the event schema. It holds only its mode, so one Validator is safe for
// concurrent use by any number of goroutines.
type Validator struct {
	mode Mode
}

// NewValidator returns a Validator for mode m.
func NewValidator(m Mode) *Validator {
	return &Validator{mode: m}
}

// Mode returns the validator's mode.
func (v *Validator) Mode() Mode { return v.mode }

// Validate returns nil when line (without its newline) is acceptable in the validator's mode, and an *Error
// saying why not otherwise. It reads line once, does not retain it, and does not allocate unless it rejects.
func (v *Validator) Validate(line []byte) error {
	s := scanner{buf: line, strict: v.mode == Strict}
	if s.line() {
		return nil
	}
	return s.err()
}

// The required top-level keys, as bits of scanner.seen.
const (
	fieldNone = iota
	fieldEventID
	fieldLevel
	fieldSource
	fieldTimestamp
	fieldComputer
	fieldUser
	fieldMessage
	fieldCount
)

const allFields = 1<<fieldCount - 2 // bits 1..7

var fieldNames = [fieldCount]string{"", "eventId", "level", "source", "timestamp", "computer", "user", "message"}

// scanner is the state of one Validate call. It lives on the caller's stack.
type scanner struct {
	buf    []byte
	pos    int
	strict bool
	seen   uint8 // required keys met so far
	cur    int   // the required key whose value is being scanned, or fieldNone
	esc    bool  // the string just scanned had escape sequences

	// The failure that stopped the scan.
	reason Reason
	msg    string
	at     int
	field  int

	// The first schema violation (strict mode). It is reported only if the line turns out to be
	// syntactically valid, so that a broken line is always reported as broken.
	schemaReason Reason
	schemaMsg    string
	schemaField  int
}

// line scans a whole line and reports whether it is acceptable.
func (s *scanner) line() bool {
	b := s.buf
	if len(b) >= 3 && b[0] == 0xEF && b[1] == 0xBB && b[2] == 0xBF {
		return s.failMsg(ReasonInvalidJSON, "line starts with a UTF-8 byte order mark (BOM)")
	}
	s.skipWS()
	if s.pos == len(b) {
		return s.failMsg(ReasonEmpty, "line is empty or only whitespace")
	}
	if b[s.pos] != '{' {
		// Tell a JSON value that is not an object from a line that is not JSON at all.
		kind := kindOf(b[s.pos])
		if !s.value(0) {
			return false
		}
		s.skipWS()
		if s.pos != len(b) {
			return s.syntax("end of line after the JSON value")
		}
		return s.failMsg(ReasonNotObject, "line is a JSON "+kind+", not an object")
	}
	if !s.object() {
		return false
	}
	s.skipWS()
	if s.pos != len(b) {
		return s.syntax("end of line after the object")
	}
	if s.schemaReason != "" {
		s.reason, s.msg, s.field, s.at = s.schemaReason, s.schemaMsg, s.schemaField, -1
		return false
	}
	if s.strict && s.seen != allFields {
		return s.missing()
	}
	return true
}

// object scans the top-level object, s.pos at its '{', checking the required keys in strict mode.
func (s *scanner) object() bool {
	b := s.buf
	s.pos++
	s.skipWS()
	if s.pos < len(b) && b[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		if s.pos >= len(b) || b[s.pos] != '"' {
			return s.syntax("a string key")
		}
		start := s.pos + 1
		if !s.str() {
			return false
		}
		f := fieldNone
		if s.strict {
			f = s.lookup(b[start:s.pos-1], s.esc)
		}
		s.skipWS()
		if s.pos >= len(b) || b[s.pos] != ':' {
			return s.syntax("':' after a key")
		}
		s.pos++
		s.skipWS()
		if f == fieldNone {
			if !s.value(1) {
				return false
			}
		} else {
			if s.seen&(1<<f) != 0 {
				s.schema(ReasonDuplicateKey, f, "key appears more than once")
			}
			s.seen |= 1 << f
			s.cur = f
			if !s.known(f) {
				return false
			}
			s.cur = fieldNone
		}
		s.skipWS()
		if s.pos >= len(b) {
			return s.syntax("',' or '}' after a value")
		}
		switch b[s.pos] {
		case ',':
			s.pos++
			s.skipWS()
		case '}':
			s.pos++
			return true
		default:
			return s.syntax("',' or '}' after a value")
		}
	}
}

// known scans the value of required key f and checks its type and content.
func (s *scanner) known(f int) bool {
	b := s.buf
	if s.pos >= len(b) {
		return s.syntax("a value")
	}
	c := b[s.pos]
	if f == fieldEventID {
		if c != '-' && (c < '0' || c > '9') {
			kind := kindOf(c)
			if !s.value(1) {
				return false
			}
			s.schema(ReasonWrongType, f, "eventId must be a number, got "+kind)
			return true
		}
		start := s.pos
		integer, ok := s.number()
		if !ok {
			return false
		}
		switch digits := b[start:s.pos]; {
		case digits[0] == '-':
			s.schema(ReasonEventIDRange, f, "eventId is negative")
		case !integer:
			s.schema(ReasonWrongType, f, "eventId must be an integer (no fraction or exponent)")
		case len(digits) > 10 || (len(digits) == 10 && string(digits) > "4294967295"):
			s.schema(ReasonEventIDRange, f, "eventId is above 4294967295")
		}
		return true
	}
	if c != '"' {
		kind := kindOf(c)
		if !s.value(1) {
			return false
		}
		s.schema(ReasonWrongType, f, fieldNames[f]+" must be a string, got "+kind)
		return true
	}
	start := s.pos + 1
	if !s.str() {
		return false
	}
	v := b[start : s.pos-1]
	switch f {
	case fieldLevel:
		if len(v) == 0 {
			s.schema(ReasonMissingField, f, "level is empty")
		}
	case fieldTimestamp:
		if s.esc {
			s.schema(ReasonBadTimestamp, f, "escape sequences are not allowed in timestamp")
		} else if why := checkTimestamp(v); why != "" {
			s.schema(ReasonBadTimestamp, f, why)
		}
	}
	return true
}

// lookup returns the required key named by the raw (still escaped) key bytes k, or fieldNone.
func (s *scanner) lookup(k []byte, escaped bool) int {
	if escaped {
		var buf [16]byte
		n, ok := unescapeSmall(buf[:], k)
		if !ok {
			return fieldNone
		}
		k = buf[:n]
	}
	switch len(k) {
	case 4:
		if string(k) == "user" {
			return fieldUser
		}
	case 5:
		if string(k) == "level" {
			return fieldLevel
		}
	case 6:
		if string(k) == "source" {
			return fieldSource
		}
	case 7:
		switch string(k) {
		case "eventId":
			return fieldEventID
		case "message":
			return fieldMessage
		}
	case 8:
		if string(k) == "computer" {
			return fieldComputer
		}
	case 9:
		if string(k) == "timestamp" {
			return fieldTimestamp
		}
	}
	return fieldNone
}

// value scans one JSON value of any kind at s.pos, which lies inside depth enclosing containers. It walks
// nested containers iteratively, keeping one bit per open container (1 = object) in a uint64, which is
// enough because nesting stops at MaxDepth.
func (s *scanner) value(depth int) bool {
	b := s.buf
	var objects uint64
	open := 0
	for {
		// A value is expected at s.pos.
		if s.pos >= len(b) {
			return s.syntax("a value")
		}
		switch c := b[s.pos]; {
		case c == '{' || c == '[':
			if depth+open+1 > MaxDepth {
				return s.failMsg(ReasonTooDeep, fmt.Sprintf("nesting deeper than %d levels", MaxDepth))
			}
			s.pos++
			s.skipWS()
			if s.pos < len(b) && b[s.pos] == c+2 { // "{}" or "[]": '}' and ']' are two past their openers
				s.pos++
				break
			}
			open++
			objects <<= 1
			if c == '{' {
				objects |= 1
				if !s.key() {
					return false
				}
			}
			continue
		case c == '"':
			if !s.str() {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			if _, ok := s.number(); !ok {
				return false
			}
		case c == 't':
			if !s.literal("true") {
				return false
			}
		case c == 'f':
			if !s.literal("false") {
				return false
			}
		case c == 'n':
			if !s.literal("null") {
				return false
			}
		default:
			return s.syntax("a value")
		}
		// A value is complete: close containers until one continues with ','.
		for {
			if open == 0 {
				return true
			}
			s.skipWS()
			if s.pos >= len(b) {
				return s.syntax("',' or a closing bracket")
			}
			c := b[s.pos]
			if c == ',' {
				s.pos++
				s.skipWS()
				if objects&1 == 1 && !s.key() {
					return false
				}
				break
			}
			if (objects&1 == 1 && c == '}') || (objects&1 == 0 && c == ']') {
				s.pos++
				open--
				objects >>= 1
				continue
			}
			return s.syntax("',' or a closing bracket")
		}
	}
}

// key scans `"key" :` inside a nested object and leaves s.pos at the value.
func (s *scanner) key() bool {
	b := s.buf
	if s.pos >= len(b) || b[s.pos] != '"' {
		return s.syntax("a string key")
	}
	if !s.str() {
		return false
	}
	s.skipWS()
	if s.pos >= len(b) || b[s.pos] != ':' {
		return s.syntax("':' after a key")
	}
	s.pos++
	s.skipWS()
	return true
}

// Bytes of a uint64 word, for the eight-at-a-time string scan.
const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// special returns a word with the high bit set in the byte of x that needs a closer look inside a string (a
// control character, quote, backslash or non-ASCII byte), or 0 when there is none. The expressions are the
// classic "has byte less than" and "has zero byte" tests: bits above the first flagged byte may be spurious
// (borrows), but the lowest set bit is always exact, which is all the scan uses.
func special(x uint64) uint64 {
	ctl := (x - ones*0x20) &^ x
	q := x ^ (ones * '"')
	bs := x ^ (ones * '\\')
	q = (q - ones) &^ q
	bs = (bs - ones) &^ bs
	return (ctl | q | bs | x) & highs
}

// str scans a string, s.pos at its opening quote, leaving s.pos after the closing quote and s.esc telling
// whether it held escapes. It checks escapes, control characters and UTF-8.
func (s *scanner) str() bool {
	b := s.buf
	i := s.pos + 1
	s.esc = false
	for {
		// Eight bytes at a time up to the first byte that needs a look.
		for i+8 <= len(b) {
			m := special(binary.LittleEndian.Uint64(b[i:]))
			if m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				break
			}
			i += 8
		}
		if i >= len(b) {
			s.pos = i
			return s.syntax("the end of a string")
		}
		c := b[i]
		switch {
		case c == '"':
			s.pos = i + 1
			return true
		case c == '\\':
			s.esc = true
			if i = s.escape(i); i < 0 {
				return false
			}
		case c == 0:
			s.pos = i
			return s.fail(ReasonInvalidJSON, "NUL byte in a string")
		case c < 0x20:
			s.pos = i
			return s.fail(ReasonInvalidJSON, "unescaped control character in a string")
		case c < 0x80:
			i++
		default:
			n := runeAt(b, i)
			if n == 0 {
				s.pos = i
				return s.fail(ReasonInvalidUTF8, "invalid UTF-8 in a string")
			}
			i += n
		}
	}
}

// escape checks the escape sequence at b[i] (a backslash) and returns the index after it, or -1.
func (s *scanner) escape(i int) int {
	b := s.buf
	if i+1 >= len(b) {
		s.pos = i
		s.syntax("an escape sequence")
		return -1
	}
	switch b[i+1] {
	case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
		return i + 2
	case 'u':
		r, ok := hex4(b, i+2)
		if !ok {
			s.pos = i
			s.fail(ReasonInvalidJSON, `\u escape without four hex digits`)
			return -1
		}
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo, ok := hex4(b, i+8); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					return i + 12
				}
			}
			s.loneSurrogate()
		case r >= 0xDC00 && r <= 0xDFFF:
			s.loneSurrogate()
		}
		return i + 6
	}
	s.pos = i
	s.fail(ReasonInvalidJSON, "invalid escape sequence")
	return -1
}

func (s *scanner) loneSurrogate() {
	if s.strict {
		s.schema(ReasonInvalidUTF8, s.cur, `\u escape of a lone UTF-16 surrogate`)
	}
}

// hex4 decodes four hex digits at b[i:].
func hex4(b []byte, i int) (rune, bool) {
	if i+4 > len(b) {
		return 0, false
	}
	var r rune
	for _, c := range b[i : i+4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// number scans a JSON number at s.pos and reports whether it was an integer (no fraction, no exponent).
func (s *scanner) number() (integer, ok bool) {
	b := s.buf
	i := s.pos
	if b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		s.pos = i
		return false, s.syntax("a digit")
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	default:
		s.pos = i
		return false, s.syntax("a digit")
	}
	integer = true
	if i < len(b) && b[i] == '.' {
		integer = false
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.pos = i
			return false, s.syntax("a digit after '.'")
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		integer = false
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			s.pos = i
			return false, s.syntax("a digit in the exponent")
		}
		for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		}
	}
	s.pos = i
	return integer, true
}

func (s *scanner) literal(word string) bool {
	if len(s.buf)-s.pos < len(word) || string(s.buf[s.pos:s.pos+len(word)]) != word {
		return s.syntax("a value")
	}
	s.pos += len(word)
	return true
}

func (s *scanner) skipWS() {
	b := s.buf
	if s.pos < len(b) && b[s.pos] > ' ' { // the common case: no whitespace at all
		return
	}
	for s.pos < len(b) {
		switch b[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// kindOf names the JSON type a value starting with c has (if it is valid).
func kindOf(c byte) string {
	switch {
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == '"':
		return "string"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || (c >= '0' && c <= '9'):
		return "number"
	}
	return "invalid value"
}

// schema records a schema violation; only the first is kept.
func (s *scanner) schema(r Reason, f int, msg string) {
	if s.schemaReason == "" {
		s.schemaReason, s.schemaField, s.schemaMsg = r, f, msg
	}
}

// syntax fails at s.pos, where want was expected. A non-UTF-8 byte there is reported as invalid_utf8.
func (s *scanner) syntax(want string) bool {
	b := s.buf
	switch {
	case s.pos >= len(b):
		return s.fail(ReasonInvalidJSON, "unexpected end of line, want "+want)
	case b[s.pos] >= 0x80 && runeAt(b, s.pos) == 0:
		return s.fail(ReasonInvalidUTF8, "invalid UTF-8")
	case b[s.pos] == 0:
		return s.fail(ReasonInvalidJSON, "NUL byte, want "+want)
	}
	return s.fail(ReasonInvalidJSON, "unexpected byte, want "+want)
}

// fail records a failure at s.pos that Detail locates and samples.
func (s *scanner) fail(r Reason, msg string) bool {
	s.reason, s.msg, s.at, s.field = r, msg, s.pos, s.cur
	return false
}

// failMsg records a failure that needs no position.
func (s *scanner) failMsg(r Reason, msg string) bool {
	s.reason, s.msg, s.at, s.field = r, msg, -1, s.cur
	return false
}

func (s *scanner) missing() bool {
	var names []string
	first := fieldNone
	for f := fieldEventID; f < fieldCount; f++ {
		if s.seen&(1<<f) == 0 {
			if first == fieldNone {
				first = f
			}
			names = append(names, fieldNames[f])
		}
	}
	s.reason, s.field, s.at = ReasonMissingField, first, -1
	s.msg = "missing " + strings.Join(names, ", ")
	return false
}

// err builds the *Error for a failed scan. Only the rejection path allocates.
func (s *scanner) err() *Error {
	e := &Error{Reason: s.reason, Field: fieldNames[s.field], Detail: s.msg}
	if s.at >= 0 {
		end := min(s.at+sampleBytes, len(s.buf))
		e.Detail = s.msg + " at byte " + strconv.Itoa(s.at)
		if s.at < end {
			e.Detail += " near " + strconv.Quote(string(s.buf[s.at:end]))
		}
	}
	return e
}

// unescapeSmall decodes the JSON string body k (escapes included, already checked by str) into dst and
// reports false when it does not fit, which for key lookup simply means "not a required key".
func unescapeSmall(dst, k []byte) (int, bool) {
	n := 0
	put := func(c byte) bool {
		if n >= len(dst) {
			return false
		}
		dst[n] = c
		n++
		return true
	}
	for i := 0; i < len(k); {
		c := k[i]
		if c != '\\' {
			if !put(c) {
				return n, false
			}
			i++
			continue
		}
		switch e := k[i+1]; e {
		case 'b':
			c = '\b'
		case 'f':
			c = '\f'
		case 'n':
			c = '\n'
		case 'r':
			c = '\r'
		case 't':
			c = '\t'
		case 'u':
			r, _ := hex4(k, i+2)
			i += 6
			if r >= 0xD800 && r <= 0xDBFF && i+1 < len(k) && k[i] == '\\' && k[i+1] == 'u' {
				if lo, ok := hex4(k, i+2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
					r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r <= 0xDFFF {
				return n, false // a lone surrogate names no required key
			}
			var tmp [4]byte
			for _, c := range tmp[:encodeRune(tmp[:], r)] {
				if !put(c) {
					return n, false
				}
			}
			continue
		default:
			c = e // '"', '\\', '/'
		}
		if !put(c) {
			return n, false
		}
		i += 2
	}
	return n, true
}

func encodeRune(p []byte, r rune) int {
	switch {
	case r < 0x80:
		p[0] = byte(r)
		return 1
	case r < 0x800:
		p[0], p[1] = 0xC0|byte(r>>6), 0x80|byte(r)&0x3F
		return 2
	case r < 0x10000:
		p[0], p[1], p[2] = 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F
		return 3
	}
	p[0], p[1], p[2], p[3] = 0xF0|byte(r>>18), 0x80|byte(r>>12)&0x3F, 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F
	return 4
}
