// Package tcpin reads newline-delimited log lines from TCP and hands them to a Handler.
//
// It has two readers behind one interface (Reader), both kept and tested: TCPLogReader is the simple one,
// a goroutine per connection that frames lines and passes them one by one through a bounded queue;
// HighPerfTCPReader reads into large reused buffers, splits lines in place and hands each read's lines to
// the Handler as one batch, with near-zero allocations per line. Both work in two modes (Config.Mode):
// Connect dials one source and reconnects with jittered exponential backoff; Listen accepts many sources,
// up to MaxConns at once, and closes a connection that completes no line within IdleTimeout (silent or
// trickling, as in slowloris).
//
// Framing is the same in both: a line ends at '\n' (a preceding '\r' is dropped); a line longer than
// MaxLineBytes is rejected with a bounded sample (SampleBytes) and skipped up to the next newline, and a
// line cut off by a disconnect is rejected as truncated. Rejections go to Handler.HandleReject with an
// event.Reason, so every byte read is accounted for.
//
// Backpressure is the memory bound: a reader does not read its socket again until the Handler returns, so
// a slow Kafka producer stops the socket and TCP pushes back on the source instead of the reader growing.
// The lines passed to HandleLines are valid only until it returns.
package tcpin
