package logsource

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// ReplayStats is the summary of a file replay.
type ReplayStats struct {
	Lines   uint64  `json:"lines"`
	Bytes   uint64  `json:"bytes"`
	Seconds float64 `json:"seconds"`
}

// Replay writes the lines of r to w exactly as they are (CRLF, invalid JSON and all), at rate lines per
// second, or as fast as w takes them with rate 0 (a blocked write waits for the reader: that is the
// backpressure). A last line without a newline gets one, so the reader sees it end. It stops at the end of r,
// at the first write error, or when ctx ends.
func Replay(ctx context.Context, w io.Writer, r io.Reader, rate float64) (ReplayStats, error) {
	var st ReplayStats
	start := time.Now()
	defer func() { st.Seconds = time.Since(start).Seconds() }()
	in := bufio.NewReaderSize(r, 64<<10)
	out := bufio.NewWriterSize(w, 64<<10)
	for {
		if err := ctx.Err(); err != nil {
			return st, errors.Join(err, out.Flush())
		}
		line, rerr := in.ReadBytes('\n')
		if len(line) > 0 {
			if line[len(line)-1] != '\n' {
				line = append(line, '\n')
			}
			if rate > 0 {
				// Paced from the start, so a slow write is made up for rather than slowing the whole run.
				due := start.Add(time.Duration(float64(st.Lines) / rate * float64(time.Second)))
				if d := time.Until(due); d > 0 {
					if err := out.Flush(); err != nil {
						return st, fmt.Errorf("writing line %d: %w", st.Lines+1, err)
					}
					if err := sleep(ctx, d); err != nil {
						return st, err
					}
				}
			}
			if _, err := out.Write(line); err != nil {
				return st, fmt.Errorf("writing line %d: %w", st.Lines+1, err)
			}
			st.Lines++
			st.Bytes += uint64(len(line))
		}
		if rerr == io.EOF {
			if err := out.Flush(); err != nil {
				return st, fmt.Errorf("writing the last lines: %w", err)
			}
			return st, nil
		}
		if rerr != nil {
			return st, errors.Join(fmt.Errorf("reading the file: %w", rerr), out.Flush())
		}
	}
}

// replayConn gets the one connection a replay goes to: accepted on ln (listen mode), or dialed to addr
// (connect mode), retrying every 100 ms until it answers, connectTimeout passes (0: no bound) or ctx ends.
func replayConn(ctx context.Context, ln net.Listener, addr string, connectTimeout time.Duration) (net.Conn, error) {
	if ln != nil {
		stop := context.AfterFunc(ctx, func() { ln.Close() })
		defer stop()
		conn, err := ln.Accept()
		if err != nil {
			return nil, errors.Join(ctx.Err(), fmt.Errorf("accepting a reader: %w", err))
		}
		return conn, nil
	}
	if connectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, connectTimeout)
		defer cancel()
	}
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			return conn, nil
		}
		if serr := sleep(ctx, 100*time.Millisecond); serr != nil {
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		}
	}
}

// ReplayTo replays r into one connection (see replayConn and Replay) and closes it.
func ReplayTo(ctx context.Context, ln net.Listener, addr string, connectTimeout time.Duration, r io.Reader, rate float64) (ReplayStats, error) {
	conn, err := replayConn(ctx, ln, addr, connectTimeout)
	if err != nil {
		return ReplayStats{}, err
	}
	st, err := Replay(ctx, conn, r, rate)
	if cerr := conn.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("closing the connection: %w", cerr)
	}
	return st, err
}
