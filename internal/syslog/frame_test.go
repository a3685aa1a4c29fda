package syslog

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// scanAll runs a Scanner over in, handed over in reads of chunk bytes (all at once when chunk is 0), as a
// reader does: unconsumed bytes are kept and more appended. It returns the frames and the reasons, in order,
// as "F:frame" and "R:reason" strings.
func scanAll(tb testing.TB, in []byte, max, chunk int) []string {
	tb.Helper()
	if chunk <= 0 {
		chunk = len(in) + 1
	}
	s := NewScanner(max)
	var out []string
	var buf []byte
	for pos := 0; ; {
		end := min(pos+chunk, len(in))
		buf = append(buf, in[pos:end]...)
		pos = end
		atEOF := pos == len(in)
		for guard := 0; ; guard++ {
			if guard > len(in)+10 {
				tb.Fatalf("scanner makes no progress on %q", buf)
			}
			n, frame, rej := s.Next(buf, atEOF)
			if n < 0 || n > len(buf) {
				tb.Fatalf("Next consumed %d of %d bytes", n, len(buf))
			}
			if frame != nil && rej.Reason != "" {
				tb.Fatalf("Next returned a frame and a reject")
			}
			if len(frame) > max {
				tb.Fatalf("frame of %d bytes over the limit of %d", len(frame), max)
			}
			buf = buf[n:]
			switch {
			case rej.Reason != "":
				out = append(out, "R:"+string(rej.Reason))
			case frame != nil:
				out = append(out, "F:"+string(frame))
			default:
				if atEOF && len(buf) > 0 {
					tb.Fatalf("Next left %d bytes at EOF: %q", len(buf), buf)
				}
			}
			if frame == nil && rej.Reason == "" {
				break
			}
		}
		if atEOF {
			return out
		}
	}
}

func octet(s string) string { return fmt.Sprintf("%d %s", len(s), s) }

func TestScanner(t *testing.T) {
	a := `<13>1 - h a - - - {"eventId":1}`
	b := `<14>Dec  2 12:00:00 h t: {"eventId":2}`
	long := "<13>1 - h a - - - " + strings.Repeat("x", 100)
	// A count too small is caught at the frame when what follows it is read with it, else at what follows
	// (the frame is not held back waiting for the next one): the outcome depends on the reads (mayVary).
	tests := []struct {
		name    string
		in      string
		want    []string
		mayVary bool
	}{
		{"octet counted", octet(a) + octet(b), []string{"F:" + a, "F:" + b}, false},
		{"LF framed, CRLF too", a + "\n" + b + "\r\n", []string{"F:" + a, "F:" + b}, false},
		{"mixed per frame", octet(a) + b + "\n" + octet(a), []string{"F:" + a, "F:" + b, "F:" + a}, false},
		{"octet count with LF trailers", octet(a) + "\n" + octet(b) + "\r\n", []string{"F:" + a, "F:" + b}, false},
		{"LF inside an octet-counted frame", octet(a+"\n"+a) + octet(b), []string{"F:" + a + "\n" + a, "F:" + b}, false},
		{"empty lines skipped", "\n\n" + a + "\n\n", []string{"F:" + a}, false},
		{"count over the limit skipped exactly", octet(long) + octet(a), []string{"R:" + string(event.ReasonSyslogCountOverLimit), "F:" + a}, false},
		{"LF frame over the limit", long + "\n" + a + "\n", []string{"R:" + string(event.ReasonOversized), "F:" + a}, false},
		{"count not digits", "12x4 " + a + "\n" + octet(b), []string{"R:" + string(event.ReasonSyslogBadCount), "F:" + b}, false},
		{"count not digits, resync at the next count", "9a " + a + octet(b), []string{"R:" + string(event.ReasonSyslogBadCount), "F:" + b}, false},
		{"count with a leading zero", "034 " + a + "\n" + a + "\n", []string{"R:" + string(event.ReasonSyslogBadCount), "F:" + a}, false},
		{"count of eleven digits", "12345678901 " + a + "\n" + a + "\n", []string{"R:" + string(event.ReasonSyslogBadCount), "F:" + a}, false},
		{"count too small", fmt.Sprintf("%d %s", len(a)-5, a) + octet(b), []string{"R:" + string(event.ReasonSyslogCountMismatch), "F:" + b}, true},
		{"count too large", fmt.Sprintf("%d %s", len(a)+5, a) + octet(b) + octet(a), []string{"R:" + string(event.ReasonSyslogCountMismatch), "F:" + b, "F:" + a}, true},
		{"count too small, last frame", fmt.Sprintf("%d %s", len(a)-5, a), []string{"R:" + string(event.ReasonSyslogCountMismatch)}, true},
		{"octet frame cut by the end", octet(a)[:20], []string{"R:" + string(event.ReasonSyslogTruncatedFrame)}, false},
		{"count cut by the end", "12", []string{"R:" + string(event.ReasonSyslogTruncatedFrame)}, false},
		{"LF frame cut by the end", a + "\n" + b, []string{"F:" + a, "R:" + string(event.ReasonSyslogTruncatedFrame)}, false},
		{"header-less line is a frame (the header parser rejects it)", `{"eventId":1}` + "\n", []string{`F:{"eventId":1}`}, false},
	}
	for _, tc := range tests {
		for _, chunk := range []int{0, 1, 3, 7, 64} {
			t.Run(fmt.Sprintf("%s/chunk=%d", tc.name, chunk), func(t *testing.T) {
				got := scanAll(t, []byte(tc.in), 64, chunk)
				if tc.mayVary && chunk > 0 {
					// The reject comes, and the frames after it are intact.
					joined := strings.Join(got, "|")
					if !strings.Contains(joined, "R:"+string(event.ReasonSyslogCountMismatch)) || !strings.HasSuffix(joined, tc.want[len(tc.want)-1]) {
						t.Errorf("Scan(%q) = %q, want a count mismatch, and %q last", tc.in, got, tc.want[len(tc.want)-1])
					}
					return
				}
				if strings.Join(got, "|") != strings.Join(tc.want, "|") {
					t.Errorf("Scan(%q) =\n  %q\nwant\n  %q", tc.in, got, tc.want)
				}
			})
		}
	}
}

// FuzzScanner checks, for any input and any read size, that the scanner consumes everything, never returns
// a frame over the limit, and frames the same whether the input comes at once or in pieces. A well-formed
// octet-counted stream comes out exactly.
func FuzzScanner(f *testing.F) {
	a := `<13>1 2026-12-02T12:00:00Z h a - - - {"eventId":1}`
	for _, s := range []string{octet(a) + octet(a), a + "\n" + a + "\n", "12x4 " + a + "\n", "9999999 <13>", "3 <1>\n\n",
		fmt.Sprintf("%d %s", len(a)-3, a) + octet(a), "0 \n", "1 <\n<"} {
		f.Add([]byte(s), uint8(3), uint8(64))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk, max uint8) {
		m := int(max) + 1
		whole := scanAll(t, in, m, 0)
		pieces := scanAll(t, in, m, int(chunk)+1)
		// Frames are the same, unless a count disagreed with the data: then the frame it announced is caught
		// at once or after it is handed on, as the reads fall (see TestScanner).
		mismatch := "R:" + string(event.ReasonSyslogCountMismatch)
		if !slices.Contains(whole, mismatch) && !slices.Contains(pieces, mismatch) && frames(whole) != frames(pieces) {
			t.Fatalf("frames differ with reads of %d bytes:\n  %q\n  %q", int(chunk)+1, whole, pieces)
		}
		// Well-formed octet-counted frames of the input's own bytes come out as sent.
		if fr := "<1>1 " + string(in); !bytes.ContainsAny(in, "\n\r") && len(fr) <= m {
			got := scanAll(t, []byte(octet(fr)+octet(fr)), m, int(chunk)+1)
			want := []string{"F:" + fr, "F:" + fr}
			if strings.Join(got, "|") != strings.Join(want, "|") {
				t.Fatalf("octet-counted %q came out as %q", in, got)
			}
		}
	})
}

func frames(out []string) string {
	var b strings.Builder
	for _, s := range out {
		if strings.HasPrefix(s, "F:") {
			b.WriteString(s)
			b.WriteByte(0)
		}
	}
	return b.String()
}
