package event

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// line builds a JSON object from key and raw JSON value pairs, in order.
func line(kv ...string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := 0; i+1 < len(kv); i += 2 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"` + kv[i] + `":` + kv[i+1])
	}
	b.WriteByte('}')
	return b.String()
}

// good returns the pairs of a valid event with key k's raw value replaced by v (or removed when v is "").
func good(k, v string) []string {
	base := []string{
		"eventId", `42`,
		"level", `"Info"`,
		"source", `"sshd"`,
		"timestamp", `"2026-11-25 10:11:12.123456"`,
		"computer", `"web-01"`,
		"user", `"root"`,
		"message", `"hello"`,
	}
	var out []string
	for i := 0; i < len(base); i += 2 {
		switch {
		case base[i] != k:
			out = append(out, base[i], base[i+1])
		case v != "":
			out = append(out, base[i], v)
		}
	}
	return out
}

func with(k, v string) string { return line(good(k, v)...) }

func withTS(ts string) string { return with("timestamp", `"`+ts+`"`) }

func nest(n int, open, close, inner string) string {
	return strings.Repeat(open, n) + inner + strings.Repeat(close, n)
}

type validateCase struct {
	name    string
	line    string
	strict  Reason // "" = accepted
	lenient Reason
	field   string // expected Field in strict mode, when set
	detail  string // expected substring of Detail in strict mode, when set
}

const ok Reason = ""

func validateCases() []validateCase {
	valid := with("", "")
	return []validateCase{
		// Accepted.
		{name: "valid event", line: valid},
		{name: "whitespace around and inside", line: " \t{ \"eventId\" : 42 ,\"level\":\"Info\",\"source\":\"s\", \"timestamp\":\"2026-11-25 10:11:12\",\"computer\":\"c\",\"user\":\"u\",\"message\":\"m\" } \r"},
		{name: "keys in another order", line: line("message", `"m"`, "user", `"u"`, "computer", `"c"`, "timestamp", `"2026-11-25 10:11:12"`, "source", `"s"`, "level", `"Error"`, "eventId", `7`)},
		{name: "unknown keys allowed and may repeat", line: line(append(good("", ""), "extra", `{"a":[1,2,{"b":null}],"c":true}`, "extra", `-1.5e+3`, "x", `false`)...)},
		{name: "eventId zero", line: with("eventId", `0`)},
		{name: "eventId max", line: with("eventId", `4294967295`)},
		{name: "empty strings allowed but for level", line: line(good("source", `""`)...)},
		{name: "escapes and unicode", line: with("message", `"tab\t nl\n q\" bs\\ sl\/ \u00e9 \ud83d\ude00 é 漢字 😀 \u0000"`)},
		{name: "escaped key names a required key", line: line("event\\u0049d", `42`, "level", `"Info"`, "source", `"s"`, "timestamp", `"2026-11-25 10:11:12"`, "computer", `"c"`, "user", `"u"`, "message", `"m"`)},
		{name: "timestamp without fraction", line: withTS("2026-11-25 10:11:12")},
		{name: "timestamp one fraction digit", line: withTS("2026-11-25 10:11:12.1")},
		{name: "timestamp T separator", line: withTS("2026-11-25T10:11:12.123")},
		{name: "timestamp leap day", line: withTS("2024-02-29 23:59:59.999999")},
		{name: "timestamp lower bound", line: withTS("1900-01-01 00:00:00")},
		{name: "timestamp upper bound", line: withTS("2299-12-31 23:59:59.999999")},
		{name: "depth exactly 64", line: line(append(good("", ""), "deep", nest(MaxDepth-1, "[", "]", ""))...)},

		// Rejected in both modes.
		{name: "empty line", line: "", strict: ReasonEmpty, lenient: ReasonEmpty},
		{name: "whitespace only", line: " \t \r", strict: ReasonEmpty, lenient: ReasonEmpty},
		{name: "BOM", line: "\xEF\xBB\xBF" + valid, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON, detail: "BOM"},
		{name: "NUL inside a string", line: with("message", "\"a\x00b\""), strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON, detail: "NUL"},
		{name: "NUL between tokens", line: "{\"a\":1,\x00\"b\":2}", strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON, detail: "NUL"},
		{name: "raw tab in string", line: with("message", "\"a\tb\""), strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "invalid UTF-8 byte", line: with("message", "\"caf\xe9\""), strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8, field: "message"},
		{name: "overlong UTF-8", line: with("message", "\"\xc0\xaf\""), strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8},
		{name: "UTF-8 encoded surrogate", line: with("message", "\"\xed\xa0\x80\""), strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8},
		{name: "UTF-8 above U+10FFFF", line: with("message", "\"\xf4\x90\x80\x80\""), strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8},
		{name: "cut UTF-8 sequence", line: "{\"a\":\"\xe2\x82", strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8},
		{name: "invalid UTF-8 outside strings", line: "{\"a\":1}\xff", strict: ReasonInvalidUTF8, lenient: ReasonInvalidUTF8},
		{name: "trailing comma", line: `{"a":1,}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "missing colon", line: `{"a" 1}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "unquoted key", line: `{a:1}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "trailing garbage", line: valid + ` x`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "two objects", line: valid + valid, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "leading zero", line: `{"a":01}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "bare fraction point", line: `{"a":1.}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "lone minus", line: `{"a":-}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "empty exponent", line: `{"a":1e}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "bad literal", line: `{"a":tru}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "unterminated string", line: `{"a":"x`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "bad escape", line: `{"a":"\x"}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "short unicode escape", line: `{"a":"\u12"}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "array trailing comma", line: `{"a":[1,]}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "mismatched bracket", line: `{"a":[1}`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "unterminated object", line: `{"a":1`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "lone brace", line: `{`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "not JSON at all", line: `hello world`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "broken array is invalid, not not_object", line: `[1,`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "syntax error wins over schema", line: `{"eventId":"x","level":`, strict: ReasonInvalidJSON, lenient: ReasonInvalidJSON},
		{name: "array", line: `[` + valid + `]`, strict: ReasonNotObject, lenient: ReasonNotObject, detail: "array"},
		{name: "string", line: `"text"`, strict: ReasonNotObject, lenient: ReasonNotObject},
		{name: "number", line: ` 42 `, strict: ReasonNotObject, lenient: ReasonNotObject},
		{name: "null", line: `null`, strict: ReasonNotObject, lenient: ReasonNotObject},
		{name: "too deep in a value", line: line(append(good("", ""), "deep", nest(MaxDepth, "[", "]", ""))...), strict: ReasonTooDeep, lenient: ReasonTooDeep},
		{name: "too deep objects", line: `{"a":` + nest(MaxDepth, `{"a":`, `}`, `1`) + `}`, strict: ReasonTooDeep, lenient: ReasonTooDeep},
		{name: "too deep top-level array", line: nest(MaxDepth+1, "[", "]", ""), strict: ReasonTooDeep, lenient: ReasonTooDeep},
		{name: "deep top-level array within limit", line: nest(MaxDepth, "[", "]", ""), strict: ReasonNotObject, lenient: ReasonNotObject},
		{name: "hostile depth", line: strings.Repeat("[", 100000), strict: ReasonTooDeep, lenient: ReasonTooDeep},

		// Rejected only in strict mode.
		{name: "empty object", line: `{}`, strict: ReasonMissingField, field: "eventId"},
		{name: "missing eventId", line: with("eventId", ""), strict: ReasonMissingField, field: "eventId"},
		{name: "missing level", line: with("level", ""), strict: ReasonMissingField, field: "level"},
		{name: "missing source", line: with("source", ""), strict: ReasonMissingField, field: "source"},
		{name: "missing timestamp", line: with("timestamp", ""), strict: ReasonMissingField, field: "timestamp"},
		{name: "missing computer", line: with("computer", ""), strict: ReasonMissingField, field: "computer"},
		{name: "missing user", line: with("user", ""), strict: ReasonMissingField, field: "user"},
		{name: "missing message and user", line: line(good("message", "")[:10]...), strict: ReasonMissingField, field: "user", detail: "user, message"},
		{name: "key case matters", line: line(append(good("eventId", ""), "EventId", "1")...), strict: ReasonMissingField, field: "eventId"},
		{name: "empty level", line: with("level", `""`), strict: ReasonMissingField, field: "level"},
		{name: "eventId as string", line: with("eventId", `"42"`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId fraction", line: with("eventId", `4.2`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId integral fraction", line: with("eventId", `42.0`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId exponent", line: with("eventId", `1e3`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId null", line: with("eventId", `null`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId boolean", line: with("eventId", `true`), strict: ReasonWrongType, field: "eventId"},
		{name: "eventId object", line: with("eventId", `{"v":1}`), strict: ReasonWrongType, field: "eventId"},
		{name: "level number", line: with("level", `5`), strict: ReasonWrongType, field: "level"},
		{name: "timestamp number", line: with("timestamp", `1764065472`), strict: ReasonWrongType, field: "timestamp"},
		{name: "message null", line: with("message", `null`), strict: ReasonWrongType, field: "message"},
		{name: "computer array", line: with("computer", `["a"]`), strict: ReasonWrongType, field: "computer"},
		{name: "user object", line: with("user", `{}`), strict: ReasonWrongType, field: "user"},
		{name: "eventId negative", line: with("eventId", `-1`), strict: ReasonEventIDRange, field: "eventId"},
		{name: "eventId negative zero", line: with("eventId", `-0`), strict: ReasonEventIDRange, field: "eventId"},
		{name: "eventId max plus one", line: with("eventId", `4294967296`), strict: ReasonEventIDRange, field: "eventId"},
		{name: "eventId eleven digits", line: with("eventId", `10000000000`), strict: ReasonEventIDRange, field: "eventId"},
		{name: "eventId huge", line: with("eventId", strings.Repeat("9", 400)), strict: ReasonEventIDRange, field: "eventId"},
		{name: "huge number elsewhere is fine", line: line(append(good("", ""), "n", strings.Repeat("9", 400)+".5e99999")...)},
		{name: "timestamp date only", line: withTS("2026-11-25"), strict: ReasonBadTimestamp, field: "timestamp"},
		{name: "timestamp no seconds", line: withTS("2026-11-25 10:11"), strict: ReasonBadTimestamp},
		{name: "timestamp bare point", line: withTS("2026-11-25 10:11:12."), strict: ReasonBadTimestamp},
		{name: "timestamp seven digits", line: withTS("2026-11-25 10:11:12.1234567"), strict: ReasonBadTimestamp},
		{name: "timestamp month 13", line: withTS("2026-13-01 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp month 0", line: withTS("2026-00-01 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp Feb 29 non-leap", line: withTS("2026-02-29 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp 1900 not leap", line: withTS("1900-02-29 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp Nov 31", line: withTS("2026-11-31 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp hour 24", line: withTS("2026-11-25 24:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp minute 60", line: withTS("2026-11-25 10:60:00"), strict: ReasonBadTimestamp},
		{name: "timestamp leap second", line: withTS("2026-12-31 23:59:60"), strict: ReasonBadTimestamp},
		{name: "timestamp before 1900", line: withTS("1899-12-31 23:59:59"), strict: ReasonBadTimestamp},
		{name: "timestamp after 2299", line: withTS("2300-01-01 00:00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp slashes", line: withTS("2026/11/25 10:11:12"), strict: ReasonBadTimestamp},
		{name: "timestamp Z suffix", line: withTS("2026-11-25T10:11:12Z"), strict: ReasonBadTimestamp},
		{name: "timestamp offset", line: withTS("2026-11-25T10:11:12+00:00"), strict: ReasonBadTimestamp},
		{name: "timestamp leading space", line: withTS(" 2026-11-25 10:11:12"), strict: ReasonBadTimestamp},
		{name: "timestamp empty", line: withTS(""), strict: ReasonBadTimestamp},
		{name: "timestamp unix seconds as string", line: withTS("1764065472"), strict: ReasonBadTimestamp},
		{name: "timestamp with escapes", line: withTS(`\u0032026-11-25 10:11:12`), strict: ReasonBadTimestamp, detail: "escape"},
		{name: "duplicate level", line: line(append(good("", ""), "level", `"Error"`)...), strict: ReasonDuplicateKey, field: "level"},
		{name: "duplicate through an escape", line: line(append(good("", ""), "event\\u0049d", `1`)...), strict: ReasonDuplicateKey, field: "eventId"},
		{name: "lone high surrogate", line: with("message", `"a\ud83d b"`), strict: ReasonInvalidUTF8, field: "message", detail: "surrogate"},
		{name: "lone low surrogate", line: with("message", `"\ude00"`), strict: ReasonInvalidUTF8},
		{name: "high surrogate then non-surrogate escape", line: with("message", `"\ud83d\u0041"`), strict: ReasonInvalidUTF8},
		{name: "high surrogate at end of string", line: with("message", `"x\ud83d"`), strict: ReasonInvalidUTF8},
		{name: "reversed surrogate pair", line: with("message", `"\ude00\ud83d"`), strict: ReasonInvalidUTF8},
		{name: "lone surrogate in an unknown key", line: line(append(good("", ""), "x", `["\udfff"]`)...), strict: ReasonInvalidUTF8},
		{name: "first schema problem wins", line: line(good("eventId", `"x"`)[:4]...), strict: ReasonWrongType, field: "eventId"},
	}
}

func TestValidate(t *testing.T) {
	strict, lenient := NewValidator(Strict), NewValidator(Lenient)
	for _, tc := range validateCases() {
		t.Run(tc.name, func(t *testing.T) {
			checkReason(t, strict, tc.line, tc.strict)
			checkReason(t, lenient, tc.line, tc.lenient)
			err := strict.Validate([]byte(tc.line))
			var e *Error
			if err != nil && !errors.As(err, &e) {
				t.Fatalf("Validate(%q) returned %T, want *Error", tc.line, err)
			}
			if tc.field != "" && (e == nil || e.Field != tc.field) {
				t.Errorf("strict Validate(%q) = %v, want field %q", tc.line, err, tc.field)
			}
			if tc.detail != "" && (e == nil || !strings.Contains(e.Detail, tc.detail)) {
				t.Errorf("strict Validate(%q) = %v, want detail containing %q", tc.line, err, tc.detail)
			}
			if e != nil && len(e.Detail) > 160 {
				t.Errorf("Detail has %d bytes, want a short bounded text: %q", len(e.Detail), e.Detail)
			}
		})
	}
}

func checkReason(t *testing.T, v *Validator, line string, want Reason) {
	t.Helper()
	err := v.Validate([]byte(line))
	if got := ReasonOf(err); got != want {
		t.Errorf("%s Validate(%.120q) = %v, want reason %q", v.Mode(), line, err, want)
	}
}

// Every reason Validate can produce is exercised by a case in both directions where it applies.
func TestValidateCoversEveryReason(t *testing.T) {
	seen := map[Reason]bool{}
	for _, tc := range validateCases() {
		seen[tc.strict] = true
		seen[tc.lenient] = true
	}
	for _, r := range []Reason{ReasonEmpty, ReasonInvalidUTF8, ReasonInvalidJSON, ReasonNotObject, ReasonMissingField,
		ReasonWrongType, ReasonEventIDRange, ReasonBadTimestamp, ReasonDuplicateKey, ReasonTooDeep} {
		if !seen[r] {
			t.Errorf("no test case expects %q", r)
		}
	}
}

func TestErrorDetailIsBounded(t *testing.T) {
	long := `{"a":"` + strings.Repeat("x", 1<<20) + "\x01" + strings.Repeat("y", 1<<20) + `"}`
	err := NewValidator(Lenient).Validate([]byte(long))
	var e *Error
	if !errors.As(err, &e) || e.Reason != ReasonInvalidJSON {
		t.Fatalf("Validate(long line with a control character) = %v, want invalid_json", err)
	}
	if len(e.Error()) > 160 || strings.Contains(e.Detail, "xxxxxxxxxxxxxxxxx") {
		t.Errorf("Error() = %q: must stay short and quote at most %d bytes of input", e.Error(), sampleBytes)
	}
	if !strings.Contains(e.Detail, "at byte 1048582") {
		t.Errorf("Detail = %q, want the offset of the control character", e.Detail)
	}
}

func TestErrorString(t *testing.T) {
	tests := []struct {
		err  *Error
		want string
	}{
		{&Error{Reason: ReasonWrongType, Field: "eventId", Detail: "eventId must be a number, got string"}, "wrong_type (field eventId): eventId must be a number, got string"},
		{&Error{Reason: ReasonEmpty}, "empty_line"},
		{&Error{Reason: ReasonInvalidJSON, Detail: "x"}, "invalid_json: x"},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("Error() = %q, want %q", got, tc.want)
		}
	}
	if got := ReasonOf(errors.Join(errors.New("other"), tc0())); got != ReasonTooDeep {
		t.Errorf("ReasonOf(wrapped) = %q, want %q", got, ReasonTooDeep)
	}
	if got := ReasonOf(errors.New("plain")); got != "" {
		t.Errorf("ReasonOf(plain error) = %q, want empty", got)
	}
}

func tc0() error { return &Error{Reason: ReasonTooDeep} }

func TestParseMode(t *testing.T) {
	tests := []struct {
		in      string
		want    Mode
		wantErr bool
	}{
		{"strict", Strict, false},
		{"lenient", Lenient, false},
		{" Lenient ", Lenient, false},
		{"STRICT", Strict, false},
		{"", Strict, true},
		{"loose", Strict, true},
	}
	for _, tc := range tests {
		got, err := ParseMode(tc.in)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("ParseMode(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.wantErr)
		}
		if err != nil && !errors.Is(err, ErrUnknownMode) {
			t.Errorf("ParseMode(%q) error %v does not wrap ErrUnknownMode", tc.in, err)
		}
	}
	if Strict.String() != "strict" || Lenient.String() != "lenient" {
		t.Errorf("Mode.String() = %q, %q", Strict, Lenient)
	}
}

func TestValidateDoesNotAllocateOnSuccess(t *testing.T) {
	lines := sampleLines(256)
	for _, m := range []Mode{Strict, Lenient} {
		v := NewValidator(m)
		i := 0
		allocs := testing.AllocsPerRun(2000, func() {
			if err := v.Validate(lines[i%len(lines)]); err != nil {
				t.Fatalf("Validate(generated line) = %v", err)
			}
			i++
		})
		if allocs != 0 {
			t.Errorf("%s Validate allocates %.1f times per accepted line, want 0", m, allocs)
		}
	}
}

// sampleLines returns n generated event lines.
func sampleLines(n int) [][]byte {
	g := NewGenerator(7, 1, time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC))
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.AppendNext(nil)
	}
	return out
}

func benchmarkValidate(b *testing.B, m Mode) {
	lines := sampleLines(1024)
	var total int
	for _, l := range lines {
		total += len(l)
	}
	v := NewValidator(m)
	b.SetBytes(int64(total / len(lines)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if err := v.Validate(lines[i&1023]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateStrict measures strict validation of generated ~300-byte events (the reader's hot path).
func BenchmarkValidateStrict(b *testing.B) { benchmarkValidate(b, Strict) }

// BenchmarkValidateLenient measures lenient validation of the same events.
func BenchmarkValidateLenient(b *testing.B) { benchmarkValidate(b, Lenient) }

// BenchmarkValidateReject measures the rejection path, which allocates its *Error.
func BenchmarkValidateReject(b *testing.B) {
	line := []byte(with("eventId", `"42"`))
	v := NewValidator(Strict)
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if v.Validate(line) == nil {
			b.Fatal("accepted a bad line")
		}
	}
}
