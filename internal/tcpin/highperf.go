package tcpin

import (
	"context"
	"net"
)

// HighPerfTCPReader reads each connection into one large reused buffer, splits lines in place and hands them
// downstream in batches (one batch per read), so the steady state allocates nothing per line. In connect mode
// (one persistent connection) the Handler runs on a goroutine of its own, one batch behind the reads, so
// reading and producing overlap (see stage); in listen mode it runs on the connection's goroutine. Either
// way, while the Handler blocks the socket is soon not read, and TCP pushes back on the source.
type HighPerfTCPReader struct {
	cfg Config
	ln  net.Listener
	h   Handler
}

var _ Reader = (*HighPerfTCPReader)(nil)

// NewHighPerfTCPReader validates cfg and returns a reader that feeds h. ln, when not nil, is used in listen
// mode instead of listening on cfg.Addr (tests pass a listener on a free port).
func NewHighPerfTCPReader(cfg Config, ln net.Listener, h Handler) (*HighPerfTCPReader, error) {
	if ln != nil && cfg.Addr == "" {
		cfg.Addr = ln.Addr().String()
	}
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &HighPerfTCPReader{cfg: cfg, ln: ln, h: h}, nil
}

// Run reads until ctx is done.
func (r *HighPerfTCPReader) Run(ctx context.Context) error {
	return run(ctx, r.cfg, r.ln, r.serve)
}

func (r *HighPerfTCPReader) serve(ctx context.Context, conn net.Conn, src Source) error {
	// Lines already read are handed on even while shutting down: the handler owns the drain deadline.
	hctx := context.WithoutCancel(ctx)
	h := r.h
	if r.cfg.Mode == Connect {
		// One persistent connection: overlap its reads with the handler (see stage). In listen mode the
		// connections already overlap each other, and a stage per connection would triple the buffer memory
		// a flood of them can hold.
		st := newStage(r.h, 1, r.cfg.ReadBufferBytes)
		defer st.close() // after it, every line read has been handled: Reader's contract
		h = st
	}
	return readFramed(ctx, hctx, r.cfg, conn, src, newFramerFor(r.cfg), h)
}
