package logsource

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// replaySample has what a replay must pass on untouched: a CRLF line, a line that is not JSON, an empty
// line, and a last line without a newline (which gets one).
const replaySample = "{\"eventId\":1,\"level\":\"Info\"}\r\nnot json at all\n\n{\"eventId\":2}\n{\"eventId\":3}"

func writeSample(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "lines.log")
	if err := os.WriteFile(path, []byte(replaySample), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func readAll(t *testing.T, conn net.Conn) string {
	t.Helper()
	defer conn.Close()
	b, err := io.ReadAll(conn)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkSummary(t *testing.T, stdout string, wantLines uint64) {
	t.Helper()
	var st ReplayStats
	if err := json.Unmarshal([]byte(stdout), &st); err != nil || st.Lines != wantLines || st.Bytes != uint64(len(replaySample)+1) {
		t.Errorf("summary %q (%v), want %d lines of %d bytes", stdout, err, wantLines, len(replaySample)+1)
	}
}

func TestReplayFileConnectMode(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() {
		done <- RunCLI(t.Context(), []string{"--connect", ln.Addr().String(), "--file", writeSample(t)}, &stdout, &stderr)
	}()
	conn, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readAll(t, conn), replaySample+"\n"; got != want {
		t.Errorf("the reader got %q, want %q", got, want)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunCLI: %v; stderr %s", err, stderr.String())
	}
	checkSummary(t, stdout.String(), 5)
}

func TestReplayStdinListenMode(t *testing.T) {
	probe, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := probe.Addr().String()
	probe.Close()
	f, err := os.Open(writeSample(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stdin := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = stdin }()

	done := make(chan error, 1)
	var stdout, stderr bytes.Buffer
	go func() { done <- RunCLI(t.Context(), []string{"--listen", addr, "--file", "-"}, &stdout, &stderr) }()
	var conn net.Conn
	for deadline := time.Now().Add(10 * time.Second); ; {
		if conn, err = net.Dial("tcp", addr); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the log source does not listen on %s: %v; stderr %s", addr, err, stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got, want := readAll(t, conn), replaySample+"\n"; got != want {
		t.Errorf("the reader got %q, want %q", got, want)
	}
	if err := <-done; err != nil {
		t.Fatalf("RunCLI: %v; stderr %s", err, stderr.String())
	}
	checkSummary(t, stdout.String(), 5)
}

func TestReplayRate(t *testing.T) {
	client, server := tcpPair(t)
	lines := strings.Repeat("{\"eventId\":1}\n", 11)
	start := time.Now()
	go func() { _, _ = Replay(t.Context(), client, strings.NewReader(lines), 20); client.Close() }()
	if got := readAll(t, server); got != lines {
		t.Fatalf("got %d bytes, want %d", len(got), len(lines))
	}
	// Line i is due at i/20 s: the 11th at 0.5 s.
	if el := time.Since(start); el < 450*time.Millisecond || el > 5*time.Second {
		t.Errorf("11 lines at 20/s took %s, want about 0.5 s", el)
	}
}

// Without --rate the replay goes as fast as the reader takes the lines: a reader that does not read holds it
// back (the file is larger than the sockets' buffers), and it finishes once the reader reads.
func TestReplayWaitsForTheReader(t *testing.T) {
	client, server := tcpPair(t)
	lines := strings.Repeat("{\"eventId\":1,\"message\":\""+strings.Repeat("x", 200)+"\"}\n", 200_000) // about 44 MB
	type result struct {
		st  ReplayStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Replay(t.Context(), client, strings.NewReader(lines), 0)
		client.Close()
		done <- result{st, err}
	}()
	select {
	case r := <-done:
		t.Fatalf("the replay finished (%+v, %v) before the reader read anything", r.st, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	if got := readAll(t, server); len(got) != len(lines) {
		t.Fatalf("the reader got %d bytes, want %d", len(got), len(lines))
	}
	if r := <-done; r.err != nil || r.st.Lines != 200_000 {
		t.Errorf("Replay = %+v, %v; want 200000 lines", r.st, r.err)
	}
}

func TestReplayRejectsGeneratorFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := RunCLI(context.Background(), []string{"--connect", "127.0.0.1:1", "--file", "x", "--count", "5"}, &stdout, &stderr)
	if !errors.Is(err, ErrUsage) {
		t.Errorf("--file with --count: %v, want a usage error", err)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	if server, err = ln.Accept(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}
