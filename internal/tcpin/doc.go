// Package tcpin reads newline-delimited log lines from TCP and hands them to a Handler.
//
// It has two readers behind one interface (Reader), both kept and tested: TCPLogReader is the simple one,
// a goroutine per connection that frames lines and passes them in batches through a queue bounded in lines
// and bytes; HighPerfTCPReader reads into large reused buffers, splits lines in place and hands each read's
// lines to the Handler as one batch, with near-zero allocations per line. Both work in two modes
// (Config.Mode): Connect dials one source and reconnects with jittered exponential backoff; Listen accepts
// many sources, up to MaxConns at once and MaxConnsPerAddr from one address, closes a connection that
// completes no line within IdleTimeout (silent or trickling, as in slowloris), and, while more than half the
// slots are taken, one that completes fewer than MinProgressBytes of lines per ProgressInterval.
//
// Framing is the same in both: a line ends at '\n' (a preceding '\r' is dropped); a line longer than
// MaxLineBytes is rejected with a bounded sample (SampleBytes) and skipped up to the next newline, and a
// line cut off by a disconnect is rejected as truncated. Rejections go to Handler.HandleReject with an
// event.Reason, so every byte read is accounted for. With Config.Format Syslog both readers frame in place
// (octet-counted frames need not end in LF) with package syslog, and hand on the JSON event of each frame
// instead of a line; a completed frame counts as progress as a completed line does.
//
// Memory is bounded whatever the input. Backpressure bounds the lines: a reader does not read its socket
// again until the Handler returns (HighPerfTCPReader: one read per connection, three in connect mode where
// producing overlaps reading; TCPLogReader: its queue's QueueBytes), so a slow Kafka producer stops the
// socket and TCP pushes back on the source instead of the reader growing. Lines longer than a connection's
// read buffer borrow from one PartialLineBudget shared by all connections, and give it back (the buffer
// shrinking to its usual size) when the line ends; a line the budget cannot hold is rejected as oversized.
// The lines passed to HandleLines are valid only until it returns.
//
// Stopping (ctx done) reads out what the kernel already acknowledged to the source, within StopReadTimeout,
// before closing, and logs the bytes still unread at the close.
package tcpin
