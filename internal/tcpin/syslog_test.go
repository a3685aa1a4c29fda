package tcpin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/event"
)

// syslogStream is a source's syslog stream: good frames in every framing and header format, with each kind
// of bad input between them, and a frame cut by the disconnect at the end. It returns the stream, the
// events that must arrive in order, and the reasons that must be given.
func syslogStream(maxLine int) (stream []byte, events []string, reasons []event.Reason) {
	var b bytes.Buffer
	octet := func(s string) { fmt.Fprintf(&b, "%d %s", len(s), s) }
	ev := func(i int) string { return fmt.Sprintf(`{"eventId":%d,"message":"m"}`, i) }
	for i := 0; i < 40; i++ {
		switch i % 4 {
		case 0:
			octet(fmt.Sprintf("<13>1 2026-12-02T12:00:00.123Z web-07 app %d - - %s", i, ev(i)))
		case 1:
			fmt.Fprintf(&b, "<14>Dec  2 12:00:00 web-07 app[7]: %s\n", ev(i))
		case 2:
			fmt.Fprintf(&b, "<14>1 - web-07 app - - [x@1 k=\"]\"] \xEF\xBB\xBF@cee: %s\r\n", ev(i))
		case 3:
			octet(fmt.Sprintf("<14>Dec  2 12:00:00 web-07 app: %s", ev(i)))
		}
		events = append(events, ev(i))
		switch i {
		case 4:
			octet("<13>1 - h a - - - " + strings.Repeat("x", maxLine))
			reasons = append(reasons, event.ReasonSyslogCountOverLimit)
		case 5:
			b.WriteString("12x4 <13>1 - h a - - - {}\n")
			reasons = append(reasons, event.ReasonSyslogBadCount)
		case 9:
			b.WriteString("hello world\n")
			reasons = append(reasons, event.ReasonSyslogBadHeader)
		case 13:
			b.WriteString("<13>1 - h a - - - hello\n")
			reasons = append(reasons, event.ReasonSyslogMsgNotJSON)
		case 17:
			octet(`<13>1 - h a - - - {"event":1}`)
			reasons = append(reasons, event.ReasonSyslogNoEventID)
		case 21:
			s := `<13>1 - h a - - - {"eventId":99999,"message":"m"}`
			fmt.Fprintf(&b, "%d %s", len(s)-6, s)
			reasons = append(reasons, event.ReasonSyslogCountMismatch)
		}
	}
	b.WriteString("200 <13>1 - h a - - - {")
	reasons = append(reasons, event.ReasonSyslogTruncatedFrame)
	return b.Bytes(), events, reasons
}

// checkSyslog checks what a reader handed on for syslogStream: the events exactly and in order, and each
// reason. (A count too small is caught at its frame or, when a read ends right after the frame, at what
// follows it, where the frame itself is then rejected for its MSG: both are allowed.)
func checkSyslog(t *testing.T, items []got, events []string, reasons []event.Reason) {
	t.Helper()
	var gotEvents []string
	var gotReasons []event.Reason
	for _, it := range items {
		if it.reason == "" {
			gotEvents = append(gotEvents, it.line)
		} else {
			gotReasons = append(gotReasons, it.reason)
		}
	}
	if !slices.Equal(gotEvents, events) {
		t.Errorf("events:\n  %q\nwant\n  %q", gotEvents, events)
	}
	for _, r := range reasons {
		if !slices.Contains(gotReasons, r) {
			t.Errorf("no reject with reason %s; rejects: %q", r, gotReasons)
		}
	}
	if len(gotReasons) != len(reasons) && len(gotReasons) != len(reasons)+1 {
		t.Errorf("rejects %q, want %q", gotReasons, reasons)
	}
}

// waitReject waits until the last expected reject (the truncated frame) has arrived.
func waitReject(t *testing.T, rec *recorder, reason event.Reason) []got {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		items := rec.snapshot()
		if len(items) > 0 && items[len(items)-1].reason == reason {
			return items
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s reject after 10s; got %q", reason, items)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSyslogBothReadersBothModes: each reader, in listen mode (plain and TLS) and connect mode (plain and
// TLS), takes syslogStream written in pieces of several sizes.
func TestSyslogBothReadersBothModes(t *testing.T) {
	const maxLine = 512
	stream, events, reasons := syslogStream(maxLine)
	p := newPKI(t)
	srv, err := tls.LoadX509KeyPair(p.server.CertFile, p.server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	write := func(c net.Conn, step int) {
		for i := 0; i < len(stream); i += step {
			c.Write(stream[i:min(i+step, len(stream))])
		}
	}
	for name, mk := range readers {
		for _, step := range []int{1 << 20, 7, 100} {
			t.Run(fmt.Sprintf("%s/listen/step=%d", name, step), func(t *testing.T) {
				rec := newRecorder()
				ln := listen(t)
				stop := startReader(t, mk, Config{Mode: Listen, Format: Syslog, MaxLineBytes: maxLine}, ln, rec)
				defer stop()
				c, err := net.Dial("tcp", ln.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				write(c, step)
				c.Close()
				checkSyslog(t, waitReject(t, rec, event.ReasonSyslogTruncatedFrame), events, reasons)
			})
			t.Run(fmt.Sprintf("%s/listen-tls/step=%d", name, step), func(t *testing.T) {
				rec := newRecorder()
				ln := listen(t)
				stop := startReader(t, mk, Config{Mode: Listen, Format: Syslog, MaxLineBytes: maxLine, TLS: p.listenTLS(t, false)}, ln, rec)
				defer stop()
				c, err := tls.Dial("tcp", ln.Addr().String(), p.clientTLS(t, p.good))
				if err != nil {
					t.Fatal(err)
				}
				write(c, step)
				c.Close()
				checkSyslog(t, waitReject(t, rec, event.ReasonSyslogTruncatedFrame), events, reasons)
			})
			t.Run(fmt.Sprintf("%s/connect/step=%d", name, step), func(t *testing.T) {
				rec := newRecorder()
				ln := listen(t)
				stop := startReader(t, mk, Config{Mode: Connect, Addr: ln.Addr().String(), Format: Syslog, MaxLineBytes: maxLine, Once: true}, nil, rec)
				defer stop()
				c, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				write(c, step)
				c.Close()
				checkSyslog(t, waitReject(t, rec, event.ReasonSyslogTruncatedFrame), events, reasons)
			})
			t.Run(fmt.Sprintf("%s/connect-tls/step=%d", name, step), func(t *testing.T) {
				pool := x509.NewCertPool()
				b, _ := os.ReadFile(p.ca.CertFile)
				pool.AppendCertsFromPEM(b)
				ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv}})
				if err != nil {
					t.Fatal(err)
				}
				defer ln.Close()
				tl, err := NewTLS(TLSConfig{Enabled: true, CAFile: p.ca.CertFile}, Connect, nil)
				if err != nil {
					t.Fatal(err)
				}
				rec := newRecorder()
				stop := startReader(t, mk, Config{Mode: Connect, Addr: ln.Addr().String(), Format: Syslog, MaxLineBytes: maxLine, TLS: tl, Once: true}, nil, rec)
				defer stop()
				c, err := ln.Accept()
				if err != nil {
					t.Fatal(err)
				}
				write(c, step)
				c.Close()
				checkSyslog(t, waitReject(t, rec, event.ReasonSyslogTruncatedFrame), events, reasons)
			})
		}
	}
}

// TestSyslogFillThroughReader: with SyslogFill, the reader hands on the events with the header's fields.
func TestSyslogFillThroughReader(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, Format: Syslog, SyslogFill: true}, ln, rec)
			defer stop()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			s := `<12>1 2026-12-02T12:00:00.5Z web-07 auth - - - {"eventId":1,"user":"u","message":"m"}`
			fmt.Fprintf(c, "%d %s", len(s), s)
			fmt.Fprintf(c, "%d %s", len(s), s)
			c.Close()
			items := rec.waitFor(t, 2, 5*time.Second)
			want := `{"timestamp":"2026-12-02 12:00:00.500000","computer":"web-07","source":"auth","level":"Warning","eventId":1,"user":"u","message":"m"}`
			if items[0].line != want || items[1].line != want {
				t.Errorf("got %q, want %q twice", items, want)
			}
		})
	}
}

// TestSyslogOctetFramesKeepConnectionAlive: octet-counted frames need not end in LF, and still count as
// progress for the idle timeout.
func TestSyslogOctetFramesKeepConnectionAlive(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			ln := listen(t)
			stop := startReader(t, mk, Config{Mode: Listen, Format: Syslog, IdleTimeout: 300 * time.Millisecond}, ln, rec)
			defer stop()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			s := `<13>1 - h a - - - {"eventId":1}`
			start := time.Now()
			n := 0
			for time.Since(start) < time.Second {
				if _, err := fmt.Fprintf(c, "%d %s", len(s), s); err != nil {
					t.Fatalf("the reader closed a connection that sent a frame every 100ms: %v", err)
				}
				n++
				rec.waitFor(t, n, 5*time.Second)
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
}

// BenchmarkSplitSyslog frames the same events as NDJSON lines and as octet-counted RFC 5424 frames (with
// and without fill; the events lack nothing, so fill changes nothing), side by side. Besides ns/op it
// reports the process's CPU time per event (getrusage), which a loaded machine does not inflate as it does
// wall-clock time.
func BenchmarkSplitSyslog(b *testing.B) {
	ev := `{"eventId":123456,"level":"Info","source":"auth-service","timestamp":"2026-11-25 10:11:12.123456","computer":"web-07.prod.internal","user":"alice","message":"User login succeeded from 10.1.2.3 via SSO; session established with MFA and a 30 minute idle timeout for the web console"}`
	frame := "<14>1 2026-11-25T10:11:12.123456Z web-07.prod.internal auth-service 4711 - - " + ev
	for _, tc := range []struct {
		name   string
		line   string
		format Format
		fill   bool
	}{
		{"ndjson", ev + "\n", NDJSON, false},
		{"syslog", fmt.Sprintf("%d %s", len(frame), frame), Syslog, false},
		{"syslog-fill", fmt.Sprintf("%d %s", len(frame), frame), Syslog, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			data := bytes.Repeat([]byte(tc.line), 4096)
			h := &countingHandler{}
			f := newFramerFor(Config{ReadBufferBytes: DefaultReadBufferBytes, MaxLineBytes: DefaultMaxLineBytes, Format: tc.format, SyslogFill: tc.fill,
				shared: &shared{partial: newBudget(DefaultPartialLineBudget)}})
			r := bytes.NewReader(data)
			ctx := context.Background()
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r.Reset(data)
				for {
					n, err := f.fill(r)
					if n > 0 {
						f.split(ctx, h, Source{})
					}
					if err != nil {
						if err == io.EOF {
							f.finish(ctx, h, Source{}, "end")
						}
						break
					}
				}
			}
			b.StopTimer()
			if h.rejects > 0 || h.lines != 4096*b.N {
				b.Fatalf("%d lines, %d rejects; want %d lines", h.lines, h.rejects, 4096*b.N)
			}
			b.ReportMetric(float64(cpuTime()-cpu0)/float64(h.lines), "cpu-ns/event")
		})
	}
}

// cpuTime is the CPU time (user and system) the process has used, in nanoseconds.
func cpuTime() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}
