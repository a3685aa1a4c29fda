package syslog

import "testing"

// BenchmarkEvent parses one RFC 5424 frame of a typical event and returns its JSON event, without and with
// fill (the event lacks nothing, so fill changes nothing), and with fill of an event lacking four fields.
func BenchmarkEvent(b *testing.B) {
	ev := `{"eventId":123456,"level":"Info","source":"auth-service","timestamp":"2026-11-25 10:11:12.123456","computer":"web-07.prod.internal","user":"alice","message":"User login succeeded from 10.1.2.3 via SSO; session established with MFA and a 30 minute idle timeout for the web console"}`
	lacking := `{"eventId":123456,"user":"alice","message":"User login succeeded from 10.1.2.3 via SSO; session established with MFA and a 30 minute idle timeout for the web console"}`
	head := "<14>1 2026-11-25T10:11:12.123456Z web-07.prod.internal auth-service 4711 - - "
	for _, tc := range []struct {
		name, frame string
		fill        bool
	}{{"plain", head + ev, false}, {"fill-nothing-lacking", head + ev, true}, {"fill-four-fields", head + lacking, true}} {
		b.Run(tc.name, func(b *testing.B) {
			frame := []byte(tc.frame)
			var dst []byte
			b.ReportAllocs()
			b.SetBytes(int64(len(frame)))
			for i := 0; i < b.N; i++ {
				var rej Reject
				_, dst, rej = Event(dst[:0], frame, tc.fill, now)
				if rej.Reason != "" {
					b.Fatal(rej.Detail)
				}
			}
		})
	}
}
