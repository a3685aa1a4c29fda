package syslog

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

var now = time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)

func TestParse(t *testing.T) {
	tests := []struct {
		name, in        string
		format          Format
		pri             int
		time            string // RFC 3339 in UTC, "" for none
		host, app, msg  string
		hostNil, appNil bool
	}{
		{name: "RFC 5424, rsyslog's stock format", in: `<13>1 2026-12-02T13:04:05.123456+01:00 web-07 app 1234 - - {"eventId":1}`,
			format: RFC5424, pri: 13, time: "2026-12-02T12:04:05.123456Z", host: "web-07", app: "app", msg: `{"eventId":1}`},
		{name: "RFC 5424 with structured data and a BOM", in: "<165>1 2026-12-02T12:00:00Z h a - ID47 [ex@1 k=\"v\\]\"][b@2] \xEF\xBB\xBF{}",
			format: RFC5424, pri: 165, time: "2026-12-02T12:00:00Z", host: "h", app: "a", msg: "{}"},
		{name: "RFC 5424 with nil values", in: `<14>1 - - - - - -`, format: RFC5424, pri: 14, hostNil: true, appNil: true},
		{name: "RFC 5424 without MSG, with SD", in: `<14>1 - h a - - [x@1]`, format: RFC5424, pri: 14, host: "h", app: "a"},
		{name: "RFC 3164, rsyslog's traditional format", in: `<30>Dec  2 11:59:58 web-07 app[42]: {"eventId":1}`,
			format: RFC3164, pri: 30, time: "2026-12-02T11:59:58Z", host: "web-07", app: "app", msg: `{"eventId":1}`},
		{name: "RFC 3164, two-digit day, no pid", in: `<30>Nov 12 01:02:03 h tag: x`,
			format: RFC3164, pri: 30, time: "2026-11-12T01:02:03Z", host: "h", app: "tag", msg: "x"},
		{name: "RFC 3164 in January of next year", in: `<30>Jan  1 00:00:01 h tag: x`,
			format: RFC3164, pri: 30, time: "2027-01-01T00:00:01Z", host: "h", app: "tag", msg: "x"},
		{name: "RFC 3164 without TAG", in: `<30>Dec  2 11:59:58 h {"eventId":1}`,
			format: RFC3164, pri: 30, time: "2026-12-02T11:59:58Z", host: "h", appNil: true, msg: `{"eventId":1}`},
		{name: "RFC 3164 with an RFC 3339 time", in: `<30>2026-12-02T11:59:58.5-02:00 h t: x`,
			format: RFC3164, pri: 30, time: "2026-12-02T13:59:58.5Z", host: "h", app: "t", msg: "x"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, msg, err := Parse([]byte(tc.in), now)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			var gotTime string
			if !h.Time.IsZero() {
				gotTime = h.Time.UTC().Format(time.RFC3339Nano)
			}
			if h.Format != tc.format || h.Priority != tc.pri || gotTime != tc.time || string(msg) != tc.msg {
				t.Errorf("Parse(%q) = %v pri %d time %q msg %q, want %v %d %q %q", tc.in, h.Format, h.Priority, gotTime, msg, tc.format, tc.pri, tc.time, tc.msg)
			}
			if (h.Hostname == nil) != tc.hostNil || string(h.Hostname) != tc.host || (h.AppName == nil) != tc.appNil || string(h.AppName) != tc.app {
				t.Errorf("Parse(%q): hostname %q app %q, want %q %q", tc.in, h.Hostname, h.AppName, tc.host, tc.app)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	for _, in := range []string{
		``, `{"eventId":1}`, `<>1 - - - - - -`, `<192>1 - - - - - -`, `<013>1 - - - - - -`, `<1234>x`, `<13`,
		`<13>1 2026-13-02T12:00:00Z h a - - -`, `<13>1 2026-12-02 12:00:00 h a - - -`, `<13>1 2026-12-02T12:00:00 h a - - -`,
		`<13>1 - h a - -`, `<13>1 - h a - - [x@1`, `<13>1 - h a - - x`, `<13>1 - h a - - -x`,
		`<13>1 - ` + strings.Repeat("h", 256) + ` a - - -`, `<13>1 - h ` + strings.Repeat("a", 49) + ` - - -`,
		`<13>Dec 32 12:00:00 h t: x`, `<13>Foo  2 12:00:00 h t: x`, `<13>Dec  2 12:00:00`, `<13>Dec  2 12:00:00 `,
		`<13>Dec  2 12:00:00 h t[1: x`, `<13>Feb 30 12:00:00 h t: x`,
	} {
		if _, _, err := Parse([]byte(in), now); !errors.Is(err, ErrBadHeader) {
			t.Errorf("Parse(%q) = %v, want ErrBadHeader", in, err)
		}
	}
}

func TestEvent(t *testing.T) {
	const ev = `{"eventId":7,"user":"u","message":"m"}`
	tests := []struct {
		name, frame string
		fill        bool
		want        string
		reason      event.Reason
	}{
		{name: "MSG as is", frame: `<13>1 2026-12-02T12:00:00Z h a - - - ` + ev, want: ev},
		{name: "cee cookie", frame: `<13>1 2026-12-02T12:00:00Z h a - - - @cee: ` + ev, want: ev},
		{name: "cee cookie, RFC 3164", frame: `<13>Dec  2 12:00:00 h a: @cee:` + ev, want: ev},
		{name: "fill from RFC 5424", frame: `<11>1 2026-12-02T13:00:00.5+01:00 web-07 auth - - - ` + ev, fill: true,
			want: `{"timestamp":"2026-12-02 12:00:00.500000","computer":"web-07","source":"auth","level":"Error","eventId":7,"user":"u","message":"m"}`},
		{name: "fill from RFC 3164", frame: `<12>Dec  2 11:00:00 db "x\y"[9]: ` + ev, fill: true,
			want: `{"timestamp":"2026-12-02 11:00:00.000000","computer":"db","source":"\"x\\y\"","level":"Warning","eventId":7,"user":"u","message":"m"}`},
		{name: "fill only what is missing", frame: `<15>1 - web-07 - - - - {"eventId":7,"computer":"c","level":"Info"}`, fill: true,
			want: `{"eventId":7,"computer":"c","level":"Info"}`},
		{name: "fill with nil values", frame: `<15>1 - - - - - - {"eventId":7}`, fill: true, want: `{"level":"Debug","eventId":7}`},
		{name: "no eventId", frame: `<13>1 - h a - - - {"event":{"eventId":1}}`, reason: event.ReasonSyslogNoEventID},
		{name: "not JSON", frame: `<13>1 - h a - - - hello`, reason: event.ReasonSyslogMsgNotJSON},
		{name: "broken JSON", frame: `<13>1 - h a - - - {"eventId":1`, reason: event.ReasonSyslogMsgNotJSON},
		{name: "no MSG", frame: `<13>1 - h a - - -`, reason: event.ReasonSyslogMsgNotJSON},
		{name: "bad header", frame: `{"eventId":1}`, reason: event.ReasonSyslogBadHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, _, rej := Event(nil, []byte(tc.frame), tc.fill, now)
			if rej.Reason != tc.reason || string(got) != tc.want {
				t.Errorf("Event(%q) = %q, %q (%s), want %q, %q", tc.frame, got, rej.Reason, rej.Detail, tc.want, tc.reason)
			}
			if tc.want != "" {
				if err := event.NewValidator(event.Lenient).Validate(got); err != nil {
					t.Errorf("Event(%q) = %q: %v", tc.frame, got, err)
				}
			}
		})
	}
}

func TestEventAllocs(t *testing.T) {
	frame := []byte(`<13>1 2026-12-02T12:00:00.123456Z web-07 auth 99 - - {"eventId":7,"level":"Info","source":"s","timestamp":"2026-12-02 12:00:00","computer":"c","user":"u","message":"m"}`)
	var dst []byte
	for _, fill := range []bool{false, true} {
		if n := testing.AllocsPerRun(1000, func() { _, dst, _ = Event(dst[:0], frame, fill, now) }); n != 0 {
			t.Errorf("Event(fill=%v) allocates %v times per frame", fill, n)
		}
	}
	lacking := []byte(`<13>1 2026-12-02T12:00:00.123456Z web-07 auth 99 - - {"eventId":7,"user":"u","message":"m"}`)
	if n := testing.AllocsPerRun(1000, func() { _, dst, _ = Event(dst[:0], lacking, true, now) }); n != 0 {
		t.Errorf("Event(fill) of an event lacking fields allocates %v times per frame once its buffer is grown", n)
	}
}

// FuzzParse checks that Parse and Event never panic, that MSG is a suffix of the frame, and that what Event
// returns with fill is a JSON object the lenient validator accepts whenever the unfilled event is one.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`<13>1 2026-12-02T13:04:05.123456+01:00 web-07 app 1234 - - {"eventId":1}`,
		"<165>1 2026-12-02T12:00:00Z h a - ID47 [ex@1 k=\"v\\]\"][b@2] \xEF\xBB\xBF{\"eventId\":1}",
		`<30>Dec  2 11:59:58 web-07 app[42]: @cee: {"eventId":1,"x":[1,{"a":"}"}]}`,
		`<30>2026-12-02T11:59:58.5-02:00 h t: {"eventId":1}`, `<14>1 - - - - - -`, `<13>Dec  2 12:00:00 h t[1: x`,
	} {
		f.Add([]byte(s))
	}
	v := event.NewValidator(event.Lenient)
	f.Fuzz(func(t *testing.T, frame []byte) {
		_, msg, err := Parse(frame, now)
		if err == nil && !strings.HasSuffix(string(frame), string(msg)) {
			t.Fatalf("Parse(%q): MSG %q is not the end of the frame", frame, msg)
		}
		plain, _, rej := Event(nil, frame, false, now)
		filled, _, rej2 := Event(nil, frame, true, now)
		if rej.Reason != rej2.Reason {
			t.Fatalf("Event(%q) rejects with %q without fill and %q with it", frame, rej.Reason, rej2.Reason)
		}
		if rej.Reason == "" && v.Validate(plain) == nil {
			if err := v.Validate(filled); err != nil {
				t.Fatalf("Event(%q) filled %q: %v", frame, filled, err)
			}
		}
	})
}
