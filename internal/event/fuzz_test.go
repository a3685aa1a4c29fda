package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"regexp"
	"strconv"
	"testing"
	"time"
	"unicode/utf8"
)

// The reference checks below restate the schema with encoding/json and the standard library, independently
// of the hand-rolled scanner, so that FuzzValidate can demand agreement on every input.

// refLenient: valid UTF-8, valid JSON, an object at the top, nesting within MaxDepth.
func refLenient(line []byte) bool {
	if !utf8.Valid(line) || !json.Valid(line) {
		return false
	}
	t := bytes.TrimLeft(line, " \t\r\n")
	return len(t) > 0 && t[0] == '{' && refDepth(line) <= MaxDepth
}

func refDepth(line []byte) int {
	dec := json.NewDecoder(bytes.NewReader(line))
	depth, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return deepest
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
			deepest = max(deepest, depth)
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
	}
}

var (
	refDigits    = regexp.MustCompile(`^[0-9]+$`)
	refTimestamp = regexp.MustCompile(`^([0-9]{4})-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?$`)
)

// refStrict: refLenient, no lone surrogate escapes, and the seven keys exactly once with the right values.
func refStrict(line []byte) bool {
	if !refLenient(line) || refLoneSurrogate(line) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if _, err := dec.Token(); err != nil {
		return false
	}
	count := map[string]int{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return false
		}
		switch key {
		case "eventId":
			if !refDigits.Match(raw) {
				return false
			}
			if n, err := strconv.ParseUint(string(raw), 10, 64); err != nil || n > 4294967295 {
				return false
			}
		case "level", "source", "timestamp", "computer", "user", "message":
			var s string
			if raw[0] != '"' || json.Unmarshal(raw, &s) != nil { // Unmarshal would accept null
				return false
			}
			if key == "level" && s == "" {
				return false
			}
			if key == "timestamp" && (bytes.IndexByte(raw, '\\') >= 0 || !refTimestampOK(s)) {
				return false
			}
		default:
			continue
		}
		count[key]++
	}
	for _, k := range fieldNames[1:] {
		if count[k] != 1 {
			return false
		}
	}
	return true
}

func refTimestampOK(s string) bool {
	m := refTimestamp.FindStringSubmatch(s)
	if m == nil {
		return false
	}
	year, _ := strconv.Atoi(m[1])
	_, err := time.Parse("2006-01-02 15:04:05", s[:10]+" "+s[11:19])
	return err == nil && year >= 1900 && year <= 2299
}

// refLoneSurrogate reports a \u escape of an unpaired UTF-16 surrogate. In valid JSON a backslash can only
// start an escape inside a string, so a flat walk over the bytes sees every escape and nothing else.
func refLoneSurrogate(b []byte) bool {
	hex := func(i int) int64 {
		if i+4 > len(b) {
			return -1
		}
		n, err := strconv.ParseUint(string(b[i:i+4]), 16, 16)
		if err != nil {
			return -1
		}
		return int64(n)
	}
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		if b[i+1] != 'u' {
			i++
			continue
		}
		r := hex(i + 2)
		switch {
		case r >= 0xD800 && r <= 0xDBFF:
			if i+7 < len(b) && b[i+6] == '\\' && b[i+7] == 'u' {
				if lo := hex(i + 8); lo >= 0xDC00 && lo <= 0xDFFF {
					i += 11
					continue
				}
			}
			return true
		case r >= 0xDC00 && r <= 0xDFFF:
			return true
		}
		i += 5
	}
	return false
}

// syntaxReasons are the reasons found before any schema check; both modes must agree on them.
var syntaxReasons = map[Reason]bool{ReasonEmpty: true, ReasonInvalidUTF8: true, ReasonInvalidJSON: true, ReasonNotObject: true, ReasonTooDeep: true}

func FuzzValidate(f *testing.F) {
	for _, tc := range validateCases() {
		if len(tc.line) <= 4096 { // huge seeds make every mutation and minimization slow
			f.Add([]byte(tc.line))
		}
	}
	for _, l := range sampleLines(8) {
		f.Add(l)
	}
	strict, lenient := NewValidator(Strict), NewValidator(Lenient)
	f.Fuzz(func(t *testing.T, line []byte) {
		errS, errL := strict.Validate(line), lenient.Validate(line)
		if got, want := errL == nil, refLenient(line); got != want {
			t.Fatalf("lenient Validate(%q) = %v, reference accepts: %v", line, errL, want)
		}
		if got, want := errS == nil, refStrict(line); got != want {
			t.Fatalf("strict Validate(%q) = %v, reference accepts: %v", line, errS, want)
		}
		for _, err := range []error{errS, errL} {
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Reason == "" {
				t.Fatalf("Validate(%q) = %#v, want an *Error with a reason", line, err)
			}
			if len(e.Detail) > 160 {
				t.Fatalf("Validate(%q) Detail has %d bytes, want it bounded", line, len(e.Detail))
			}
		}
		if errL != nil {
			rl, rs := ReasonOf(errL), ReasonOf(errS)
			if !syntaxReasons[rl] {
				t.Fatalf("lenient Validate(%q) = %v: lenient rejects only for syntax reasons", line, errL)
			}
			if rs != rl {
				t.Fatalf("Validate(%q): strict says %q, lenient %q; syntax reasons must agree", line, rs, rl)
			}
		}
	})
}

// The reference itself must agree with the hand-written expectations, or the fuzz target proves nothing.
func TestReferenceAgreesWithCases(t *testing.T) {
	for _, tc := range validateCases() {
		if got := refLenient([]byte(tc.line)); got != (tc.lenient == ok) {
			t.Errorf("refLenient(%q) = %v, case %q expects %q", tc.line, got, tc.name, tc.lenient)
		}
		if got := refStrict([]byte(tc.line)); got != (tc.strict == ok) {
			t.Errorf("refStrict(%q) = %v, case %q expects %q", tc.line, got, tc.name, tc.strict)
		}
	}
}
