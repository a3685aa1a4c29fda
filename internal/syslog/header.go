package syslog

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// ErrBadHeader is wrapped by every error of Parse.
var ErrBadHeader = errors.New("syslog header does not parse")

// Format is the header format of a frame.
type Format uint8

// The header formats Parse tells apart.
const (
	RFC5424 Format = iota + 1
	RFC3164
)

func (f Format) String() string {
	switch f {
	case RFC5424:
		return "RFC 5424"
	case RFC3164:
		return "RFC 3164"
	}
	return "unknown"
}

// Header is what the reader uses of a syslog header. Its byte slices point into the parsed frame.
type Header struct {
	Format   Format
	Priority int       // facility*8 + severity
	Time     time.Time // zero when the header has none (RFC 5424 NILVALUE)
	Hostname []byte    // nil when the header has none
	AppName  []byte    // RFC 5424 APP-NAME or RFC 3164 TAG (without "[pid]" and ":"); nil when none
}

// Severity is the header's severity, 0 (emergency) to 7 (debug).
func (h *Header) Severity() int { return h.Priority & 7 }

// Parse splits a frame into its header and MSG, telling the format from what follows the PRI: "1 " is
// RFC 5424 (VERSION 1), anything else RFC 3164 ("Mmm dd hh:mm:ss", or an RFC 3339 time as rsyslog's
// high-precision forwarding format writes it). For RFC 5424 a UTF-8 BOM at the start of MSG is dropped.
// now places an RFC 3164 time, which has no year, in the year that puts it nearest to now. Parse does not
// allocate unless it fails.
func Parse(frame []byte, now time.Time) (Header, []byte, error) {
	var h Header
	if len(frame) < 3 || frame[0] != '<' {
		return h, nil, fmt.Errorf("%w: no <PRI> at the start", ErrBadHeader)
	}
	i, pri := 1, 0
	for ; i < len(frame) && i <= 4 && frame[i] >= '0' && frame[i] <= '9'; i++ {
		pri = pri*10 + int(frame[i]-'0')
	}
	if i == 1 || i > 4 || i >= len(frame) || frame[i] != '>' || pri > 191 || (frame[1] == '0' && i > 2) {
		return h, nil, fmt.Errorf("%w: PRI is not <0> to <191>", ErrBadHeader)
	}
	h.Priority = pri
	rest := frame[i+1:]
	if len(rest) >= 2 && rest[0] == '1' && rest[1] == ' ' {
		h.Format = RFC5424
		msg, err := parse5424(&h, rest[2:])
		return h, msg, err
	}
	h.Format = RFC3164
	msg, err := parse3164(&h, rest, now)
	return h, msg, err
}

// RFC 5424's field limits.
const (
	maxHostname = 255
	maxAppName  = 48
	maxProcID   = 128
	maxMsgID    = 32
)

func parse5424(h *Header, b []byte) ([]byte, error) {
	ts, b, ok := token(b)
	if !ok {
		return nil, fmt.Errorf("%w: RFC 5424 header ends after VERSION", ErrBadHeader)
	}
	if !nil1(ts) {
		t, ok := parseRFC3339(ts)
		if !ok {
			return nil, fmt.Errorf("%w: RFC 5424 TIMESTAMP %q is not RFC 3339", ErrBadHeader, sample(ts, 40))
		}
		h.Time = t
	}
	var host, app []byte
	var err error
	if host, b, err = field(b, "HOSTNAME", maxHostname); err != nil {
		return nil, err
	}
	if app, b, err = field(b, "APP-NAME", maxAppName); err != nil {
		return nil, err
	}
	if _, b, err = field(b, "PROCID", maxProcID); err != nil {
		return nil, err
	}
	if _, b, err = field(b, "MSGID", maxMsgID); err != nil {
		return nil, err
	}
	if !nil1(host) {
		h.Hostname = host
	}
	if !nil1(app) {
		h.AppName = app
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: RFC 5424 header ends before STRUCTURED-DATA", ErrBadHeader)
	}
	n, err := structuredData(b)
	if err != nil {
		return nil, err
	}
	msg := b[n:]
	if len(msg) > 0 {
		if msg[0] != ' ' {
			return nil, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA not followed by a space", ErrBadHeader)
		}
		msg = msg[1:]
	}
	return bytes.TrimPrefix(msg, bom), nil
}

var bom = []byte{0xEF, 0xBB, 0xBF}

// field splits off the RFC 5424 header field at the start of b: 1 to max printable ASCII characters and a space.
func field(b []byte, name string, max int) (v, rest []byte, err error) {
	v, rest, ok := token(b)
	if !ok {
		return nil, nil, fmt.Errorf("%w: RFC 5424 header ends before %s", ErrBadHeader, name)
	}
	if len(v) > max || !printASCII(v) {
		return nil, nil, fmt.Errorf("%w: RFC 5424 %s is not 1 to %d printable ASCII characters", ErrBadHeader, name, max)
	}
	return v, rest, nil
}

// structuredData returns the length of the STRUCTURED-DATA at the start of b: "-" or one or more
// "[SD-ID *(SP PARAM="VALUE")]" elements, where VALUE escapes '"', '\' and ']' with '\'.
func structuredData(b []byte) (int, error) {
	if b[0] == '-' {
		return 1, nil
	}
	i := 0
	for i < len(b) && b[i] == '[' {
		i++
		inValue := false
		for ; ; i++ {
			if i >= len(b) {
				return 0, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA element not closed", ErrBadHeader)
			}
			c := b[i]
			if inValue {
				switch c {
				case '\\':
					i++
				case '"':
					inValue = false
				}
				continue
			}
			if c == '"' {
				inValue = true
			} else if c == ']' {
				i++
				break
			}
		}
	}
	if i == 0 {
		return 0, fmt.Errorf("%w: RFC 5424 STRUCTURED-DATA is neither - nor [elements]", ErrBadHeader)
	}
	return i, nil
}

var months = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

func parse3164(h *Header, b []byte, now time.Time) ([]byte, error) {
	var rest []byte
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		// rsyslog's high-precision forwarding: an RFC 3339 time in place of "Mmm dd hh:mm:ss".
		ts, r, ok := token(b)
		t, ok2 := parseRFC3339(ts)
		if !ok || !ok2 {
			return nil, fmt.Errorf("%w: RFC 3164 TIMESTAMP %q is neither Mmm dd hh:mm:ss nor RFC 3339", ErrBadHeader, sample(ts, 40))
		}
		h.Time, rest = t, r
	} else {
		t, ok := parseBSDTime(b, now)
		if !ok {
			return nil, fmt.Errorf("%w: RFC 3164 TIMESTAMP %q is not Mmm dd hh:mm:ss", ErrBadHeader, sample(b, 15))
		}
		if len(b) == 15 || b[15] != ' ' {
			return nil, fmt.Errorf("%w: RFC 3164 header ends after TIMESTAMP", ErrBadHeader)
		}
		h.Time, rest = t, b[16:]
	}
	host, rest, ok := token(rest)
	if !ok || len(host) == 0 || len(host) > maxHostname || !printASCII(host) {
		return nil, fmt.Errorf("%w: RFC 3164 HOSTNAME missing or not printable ASCII", ErrBadHeader)
	}
	h.Hostname = host
	if len(rest) > 0 && rest[0] != '{' && rest[0] != '@' {
		// TAG: up to the first space, ':' or '['; then an optional "[pid]", an optional ':' and one space.
		j := bytes.IndexAny(rest, " :[")
		if j < 0 {
			j = len(rest)
		}
		if j > 0 {
			h.AppName = rest[:j]
		}
		rest = rest[j:]
		if len(rest) > 0 && rest[0] == '[' {
			k := bytes.IndexByte(rest, ']')
			if k < 0 {
				return nil, fmt.Errorf("%w: RFC 3164 TAG's [pid] not closed", ErrBadHeader)
			}
			rest = rest[k+1:]
		}
		if len(rest) > 0 && rest[0] == ':' {
			rest = rest[1:]
		}
		if len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
	}
	return rest, nil
}

// parseBSDTime parses "Mmm dd hh:mm:ss" (dd space-padded or two digits) at the start of b, as UTC, in the
// year that puts it nearest to now: RFC 3164 time has no year and no zone.
func parseBSDTime(b []byte, now time.Time) (time.Time, bool) {
	if len(b) < 15 || b[3] != ' ' || b[6] != ' ' || b[9] != ':' || b[12] != ':' {
		return time.Time{}, false
	}
	month := 0
	for i, m := range months {
		if string(b[:3]) == m {
			month = i + 1
		}
	}
	day := 0
	switch {
	case b[4] == ' ' && digit(b[5]):
		day = int(b[5] - '0')
	case digit(b[4]) && digit(b[5]):
		day = int(b[4]-'0')*10 + int(b[5]-'0')
	}
	hh, ok1 := two(b[7:9])
	mm, ok2 := two(b[10:12])
	ss, ok3 := two(b[13:15])
	if month == 0 || day < 1 || day > 31 || !ok1 || !ok2 || !ok3 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	now = now.UTC()
	t := time.Date(now.Year(), time.Month(month), day, hh, mm, ss, 0, time.UTC)
	if t.Day() != day {
		return time.Time{}, false // Feb 30 and the like
	}
	// Nearest year: a December time read in early January is last year's, and the other way round.
	switch {
	case t.Sub(now) > 183*24*time.Hour:
		t = t.AddDate(-1, 0, 0)
	case now.Sub(t) > 183*24*time.Hour:
		t = t.AddDate(1, 0, 0)
	}
	return t, true
}

// parseRFC3339 parses YYYY-MM-DDThh:mm:ss[.frac](Z|+hh:mm|-hh:mm) into UTC, without allocating.
func parseRFC3339(b []byte) (time.Time, bool) {
	if len(b) < 20 || b[4] != '-' || b[7] != '-' || (b[10] != 'T' && b[10] != 't') || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	y1, ok1 := two(b[0:2])
	y2, ok2 := two(b[2:4])
	mo, ok3 := two(b[5:7])
	d, ok4 := two(b[8:10])
	hh, ok5 := two(b[11:13])
	mm, ok6 := two(b[14:16])
	ss, ok7 := two(b[17:19])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 || !ok7 || mo < 1 || mo > 12 || d < 1 || hh > 23 || mm > 59 || ss > 60 {
		return time.Time{}, false
	}
	i, ns := 19, 0
	if b[i] == '.' {
		i++
		digits := 0
		for ; i < len(b) && digit(b[i]); i++ {
			if digits < 9 {
				ns = ns*10 + int(b[i]-'0')
			}
			digits++
		}
		if digits == 0 || digits > 9 {
			return time.Time{}, false
		}
		for ; digits < 9; digits++ {
			ns *= 10
		}
	}
	if i >= len(b) {
		return time.Time{}, false
	}
	offset := 0
	switch b[i] {
	case 'Z', 'z':
		i++
	case '+', '-':
		if len(b) != i+6 || b[i+3] != ':' {
			return time.Time{}, false
		}
		oh, ok1 := two(b[i+1 : i+3])
		om, ok2 := two(b[i+4 : i+6])
		if !ok1 || !ok2 || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = (oh*60 + om) * 60
		if b[i] == '-' {
			offset = -offset
		}
		i += 6
	default:
		return time.Time{}, false
	}
	if i != len(b) {
		return time.Time{}, false
	}
	t := time.Date(y1*100+y2, time.Month(mo), d, hh, mm, min(ss, 59), ns, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t.Add(-time.Duration(offset) * time.Second), true
}

// token splits b at its first space: the token before it and what follows. ok is false when there is no
// space or the token is empty.
func token(b []byte) (tok, rest []byte, ok bool) {
	i := bytes.IndexByte(b, ' ')
	if i <= 0 {
		return b, nil, false
	}
	return b[:i], b[i+1:], true
}

func nil1(b []byte) bool { return len(b) == 1 && b[0] == '-' }

func printASCII(b []byte) bool {
	for _, c := range b {
		if c < 33 || c > 126 {
			return false
		}
	}
	return true
}

func digit(c byte) bool { return c >= '0' && c <= '9' }

func two(b []byte) (int, bool) {
	if !digit(b[0]) || !digit(b[1]) {
		return 0, false
	}
	return int(b[0]-'0')*10 + int(b[1]-'0'), true
}
