// Package syslog reads the syslog that real log sources send around the JSON event: RFC 6587 framing
// (octet counting, as RFC 5425 requires over TLS, or LF-terminated frames), an RFC 5424 or RFC 3164 header,
// and the JSON event in MSG, optionally behind a "@cee:" cookie.
//
// Scanner splits a stream into frames; Parse reads a frame's header; Event returns the frame's JSON event,
// MSG's own bytes unless the caller asks to fill the fields the event lacks from the header. Everything it
// refuses comes back as a Reject with one of the event.ReasonSyslog* reasons (or event.ReasonOversized for
// an LF-terminated frame over the limit), so a reader can dead-letter it and go on with the next frame.
// Nothing here allocates per frame unless it rejects or fills.
package syslog
