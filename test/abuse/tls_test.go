package abuse

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/certtest"
	"github.com/mwaa-kafka/pipeline/internal/event"
	"github.com/mwaa-kafka/pipeline/internal/stacktest"
	"github.com/mwaa-kafka/pipeline/test/chaos/harness"
)

// TestSourceTLS runs the reader in listen mode with mutual TLS and an allow-list, with certificates the
// test issues. A Go client streams throughout; openssl s_client and rsyslog (omfwd with the gtls stream
// driver) deliver lines through TLS; a client without a certificate, with one from another CA, with an
// expired one, with a name not on the allow-list, a plain-TCP client and a client that stalls mid-handshake
// are each refused with their reason; the server certificate is rotated (SIGHUP) while connections are
// open. Every good line must reach the topic exactly once and no refused client's line at all.
func TestSourceTLS(t *testing.T) {
	const (
		rate      = 1000 // lines per second of the streaming client
		perClient = 500  // lines each of openssl and rsyslog sends
		handshake = 2 * time.Second
	)
	e := loadEnv(t)
	topic, dlq := e.topics(t)
	dir := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ca, err := certtest.NewCA(dir, "log sources")
	must(err)
	other, err := certtest.NewCA(dir, "another org")
	must(err)
	server, err := ca.Issue("reader", certtest.Options{CommonName: "reader", Server: true})
	must(err)
	good, err := ca.Issue("app-01", certtest.Options{CommonName: "app-01"})
	must(err)
	relay, err := ca.Issue("rsyslog-01", certtest.Options{CommonName: "rsyslog-01", DNSNames: []string{"rsyslog-01.logs.internal"}})
	must(err)
	expired, err := ca.Issue("expired", certtest.Options{CommonName: "app-01", NotBefore: time.Now().Add(-72 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	must(err)
	stranger, err := ca.Issue("stranger", certtest.Options{CommonName: "intruder"})
	must(err)
	alien, err := other.Issue("alien", certtest.Options{CommonName: "app-01"})
	must(err)

	addr := harness.FreeAddr(t)
	r := harness.StartReader(t, readerBin, e.creds(), e.baseArgs("listen", addr, topic, dlq,
		"--source-tls", "--source-tls-cert", server.CertFile, "--source-tls-key", server.KeyFile,
		"--source-tls-ca", ca.CertFile, "--source-tls-allowed-clients", "app-01,rsyslog-01.logs.internal",
		"--source-tls-handshake-timeout", handshake.String(), "--idle-timeout", "2m")...)
	r.WaitReady(time.Minute)

	gen := event.NewGenerator(14, 1, time.Date(2026, 11, 25, 0, 0, 0, 0, time.UTC))
	var ids atomic.Uint64
	lines := func(n int) []byte {
		first := ids.Add(uint64(n)) - uint64(n)
		var b []byte
		for i := first; i < first+uint64(n); i++ {
			b = append(gen.AppendAt(b, i), '\n')
		}
		return b
	}
	// A refused client's lines carry eventIds far outside the stream: one arriving would show as out of range.
	var hostile atomic.Uint64
	hostileLines := func() []byte {
		return append(gen.AppendAt(nil, 1<<30+hostile.Add(1)), '\n')
	}

	// The good client that streams throughout.
	clientCfg := goClient(t, ca.CertFile, good)
	streamer, err := tls.Dial("tcp", addr, clientCfg)
	must(err)
	firstSerial := streamer.ConnectionState().PeerCertificates[0].SerialNumber
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var streamErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		streamErr = streamLines(ctx, streamer, gen, &ids, rate)
	}()
	t.Cleanup(func() { cancel(); wg.Wait() })

	failures := func() map[string]float64 {
		m, err := r.Metrics()
		must(err)
		out := map[string]float64{}
		for k, v := range m {
			if reason, ok := strings.CutPrefix(k, `logreader_tls_handshake_failures_total{reason="`); ok {
				out[strings.TrimSuffix(reason, `"}`)] = v
			}
		}
		return out
	}

	// openssl s_client and rsyslog deliver through TLS.
	osslIn := lines(perClient)
	out, err := opensslClient(addr, ca.CertFile, &good, osslIn)
	if err != nil {
		t.Errorf("openssl s_client with a good certificate: %v\n%s", err, tail(out))
	}
	rsyslogSent := rsyslogClient(t, addr, ca.CertFile, relay, lines(perClient), ids.Load, func() uint64 {
		m, _ := r.Metrics()
		return uint64(m["logreader_lines_received_total"])
	})

	// The refusals, one by one, each with the reason the metric must count.
	refusals := []struct {
		client, reason string
		run            func() string // what the client observed
	}{
		{"openssl s_client without a certificate", "no_client_certificate", func() string { return observe(opensslClient(addr, ca.CertFile, nil, hostileLines())) }},
		{"openssl s_client, certificate from another CA", "unknown_authority", func() string { return observe(opensslClient(addr, ca.CertFile, &alien, hostileLines())) }},
		{"openssl s_client, expired certificate", "expired_certificate", func() string { return observe(opensslClient(addr, ca.CertFile, &expired, hostileLines())) }},
		{"openssl s_client, CN not on the allow-list", "client_not_allowed", func() string { return observe(opensslClient(addr, ca.CertFile, &stranger, hostileLines())) }},
		{"plain TCP to the TLS port", "not_tls", func() string { return plainClient(addr, hostileLines()) }},
		{"stalls mid-handshake", "timeout", func() string { return stallClient(addr, 3*handshake) }},
	}
	type row struct{ client, expected, observed, clientSaw string }
	var table []row
	for _, rf := range refusals {
		before := failures()
		saw := rf.run()
		var after map[string]float64
		deadline := time.Now().Add(10 * time.Second)
		for {
			after = failures()
			if after[rf.reason] > before[rf.reason] || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		var observed []string
		for k, v := range after {
			if d := v - before[k]; d > 0 {
				observed = append(observed, fmt.Sprintf("%s +%.0f", k, d))
			}
		}
		table = append(table, row{rf.client, rf.reason, strings.Join(observed, ", "), saw})
		if len(observed) != 1 || observed[0] != rf.reason+" +1" {
			t.Errorf("%s: handshake failures %q, want exactly one %s", rf.client, observed, rf.reason)
		}
	}

	// Rotation while the streamer's connection is open: new files, SIGHUP, then a new handshake gets the new
	// certificate and the old connection keeps flowing.
	_, err = ca.Issue("reader", certtest.Options{CommonName: "reader", Server: true})
	must(err)
	r.Signal(syscall.SIGHUP)
	var rotated bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && !rotated; time.Sleep(100 * time.Millisecond) {
		rotated = len(r.LogLines("reloaded source TLS certificates")) > 0
	}
	if !rotated {
		t.Errorf("no reload logged after SIGHUP")
	}
	fresh, err := tls.Dial("tcp", addr, clientCfg)
	must(err)
	if fresh.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(firstSerial) == 0 {
		t.Errorf("a handshake after rotation still got the old certificate")
	}
	_, err = fresh.Write(lines(perClient))
	must(err)
	fresh.Close()
	// The streamer's connection, opened before the rotation, keeps flowing: the reader receives a second's
	// worth of its lines written after the rotation (every line handed out before it was counted in ids).
	idsAtRotation := ids.Load()
	if got := waitReceived(t, r, idsAtRotation+rate, time.Minute); got < idsAtRotation+rate {
		t.Errorf("the reader received %d lines in the minute after rotation, want %d (%d handed out at the rotation, then %d of the streamer's)",
			got, idsAtRotation+rate, idsAtRotation, rate)
	}

	cancel()
	wg.Wait()
	streamer.Close()
	total := ids.Load()
	got := waitReceived(t, r, total, time.Minute)
	r.Signal(syscall.SIGTERM)
	code, sum := r.Wait(time.Minute)
	tally := harness.ReadEvents(t, e.plaintext, topic, 1, total)
	dls := harness.ReadDeadLetters(t, e.plaintext, dlq)
	if streamErr != nil && !errors.Is(streamErr, context.Canceled) {
		t.Errorf("the streaming client failed: %v", streamErr)
	}
	if code != 0 || !sum.Balanced() || sum.Failed != 0 || got != total {
		t.Errorf("exit %d, received %d of %d, summary %+v", code, got, total, sum)
	}
	if tally.Unique != total || tally.Duplicated != 0 || tally.OutOfRange != 0 || tally.Invalid != 0 || len(dls) != 0 {
		t.Errorf("%s, %d dead letters; want all %d good lines once and nothing from a refused client; missing %v",
			tally, len(dls), total, tally.Missing(total, 20))
		for _, d := range dls {
			t.Logf("dead letter: %+v", d)
		}
	}
	// All refused clients come from 127.0.0.1, each with a reason of its own: the reader logs the first
	// refusal of each reason per source address per interval, so one WARN line per reason.
	loggedReasons := map[string]int{}
	var logged int
	for _, l := range r.LogLines("TLS handshake failed") {
		if l["level"] == "WARN" {
			logged++
			loggedReasons[fmt.Sprint(l["reason"])]++
		}
	}
	for _, rf := range refusals {
		if loggedReasons[rf.reason] != 1 {
			t.Errorf("%d handshake failure log lines with reason %s, want 1 (logged: %v)", loggedReasons[rf.reason], rf.reason, loggedReasons)
		}
	}
	if logged != len(refusals) {
		t.Errorf("%d handshake failure log lines for one source within a minute, want %d (one per reason)", logged, len(refusals))
	}

	var notes strings.Builder
	for _, rw := range table {
		fmt.Fprintf(&notes, "%s: expected %s, observed %s (client saw: %s); ", rw.client, rw.expected, rw.observed, rw.clientSaw)
		t.Logf("| %s | %s | %s | %s |", rw.client, rw.expected, rw.observed, rw.clientSaw)
	}
	report.Add(harness.Row{Scenario: "F. source TLS: mutual TLS with an allow-list; openssl s_client and rsyslog (gtls) deliver, six bad clients refused, certificate rotated by SIGHUP",
		Sent: total, Delivered: tally.Unique, DeadLettered: uint64(len(dls)), Lost: total - min(total, tally.Unique), Duplicated: tally.Duplicated,
		Notes: fmt.Sprintf("openssl %d lines, rsyslog %d lines, streamer the rest; %s%d log lines for the failures (one per reason); exit %d", perClient, rsyslogSent, notes.String(), logged, code)})
}

// goClient is a Go TLS client trusting caFile and always presenting pair.
func goClient(t *testing.T, caFile string, pair certtest.Pair) *tls.Config {
	t.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }}
}

// opensslClient sends input through `openssl s_client`, verifying the reader against caFile and
// presenting pair when not nil, and returns what s_client printed. s_client exits at the end of its input;
// a refusal shows as an error exit or an alert in its output. -nocommands: without it s_client takes a
// read from stdin that happens to start with Q, R, k or K for a command and does not send it.
func opensslClient(addr, caFile string, pair *certtest.Pair, input []byte) ([]byte, error) {
	args := []string{"s_client", "-connect", addr, "-CAfile", caFile, "-verify_return_error", "-verify_ip", "127.0.0.1",
		"-no_ign_eof", "-nocommands", "-brief"}
	if pair != nil {
		args = append(args, "-cert", pair.CertFile, "-key", pair.KeyFile)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", args...)
	// Hold stdin open a moment after the input so the server's verdict (sent after the client's handshake in
	// TLS 1.3) arrives before s_client closes.
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = pr
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting openssl: %w", err)
	}
	pr.Close()
	pw.Write(input)
	time.Sleep(500 * time.Millisecond)
	pw.Close()
	err = cmd.Wait()
	if err == nil && bytes.Contains(out.Bytes(), []byte("alert")) {
		err = errors.New("the server sent an alert")
	}
	return out.Bytes(), err
}

// observe summarises what a refused openssl client saw.
func observe(out []byte, err error) string {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "alert") {
			if i := strings.Index(l, "alert"); i >= 0 {
				return "exit error, " + strings.TrimSpace(l[i:])
			}
		}
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return "accepted (no error)"
}

func plainClient(addr string, line []byte) string {
	c, err := harness.Dial(addr)
	if err != nil {
		return "dial error: " + err.Error()
	}
	defer c.Close()
	c.Write(line)
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 64))
	if err != nil {
		return fmt.Sprintf("connection closed (%d bytes back)", n)
	}
	return fmt.Sprintf("%d bytes back", n)
}

// stallClient sends the first bytes of a ClientHello and nothing more, and reports how long the reader
// kept the connection.
func stallClient(addr string, wait time.Duration) string {
	c, err := harness.Dial(addr)
	if err != nil {
		return "dial error: " + err.Error()
	}
	defer c.Close()
	start := time.Now()
	c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00})
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = c.Read(make([]byte, 1))
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return fmt.Sprintf("still open after %v", wait)
	}
	return fmt.Sprintf("closed by the reader after %.1f s", time.Since(start).Seconds())
}

// rsyslogClient runs rsyslogd as a relay: plain TCP in on loopback (imtcp), out to the reader through TLS
// with omfwd and the gtls stream driver, presenting pair and verifying the reader's name. It sends input
// into the relay and returns the number of lines sent once the reader has received every line written so far
// by any client (sent counts them, received is the reader's count) or a minute has passed; the caller checks
// what arrived.
func rsyslogClient(t *testing.T, addr, caFile string, pair certtest.Pair, input []byte, sent, received func() uint64) int {
	t.Helper()
	peers := benchPeers(t)
	dir := t.TempDir()
	host, port, _ := net.SplitHostPort(addr)
	in := harness.FreeAddr(t)
	_, inPort, _ := net.SplitHostPort(in)
	conf := fmt.Sprintf(`global(workDirectory=%q maxMessageSize="64k"
  defaultNetstreamDriver="gtls" defaultNetstreamDriverCAFile=%q
  defaultNetstreamDriverCertFile=%q defaultNetstreamDriverKeyFile=%q)
module(load="imtcp")
template(name="raw" type="string" string="%%rawmsg%%\n")
input(type="imtcp" port=%q address="127.0.0.1" ruleset="relay")
ruleset(name="relay") {
  action(type="omfwd" target=%q port=%q protocol="tcp" template="raw"
         StreamDriver="gtls" StreamDriverMode="1" StreamDriverAuthMode="x509/name" StreamDriverPermittedPeers="localhost"
         action.resumeRetryCount="-1" queue.type="LinkedList" queue.saveOnShutdown="off")
}
`, dir, caFile, pair.CertFile, pair.KeyFile, inPort, host, port)
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	cmd := exec.Command(peers["BENCH_RSYSLOGD"], "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslog.pid"), "-M", peers["BENCH_RSYSLOG_MODDIR"])
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("rsyslogd output:\n%s", tail(logs.Bytes()))
		}
	}()
	var c net.Conn
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if c, err = harness.Dial(in); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rsyslogd's imtcp did not come up on %s: %v\n%s", in, err, tail(logs.Bytes()))
		}
	}
	n := bytes.Count(input, []byte{'\n'})
	if _, err := c.Write(input); err != nil {
		t.Fatalf("writing to rsyslogd: %v", err)
	}
	c.Close()
	want := sent()
	// rsyslog forwards asynchronously: stop it only once the reader has had at least that many more lines.
	for deadline := time.Now().Add(time.Minute); received() < want && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return n
}

// benchPeers runs dev/bench-peers.sh (installing rsyslog and its gtls driver when missing) and returns the
// variables it prints.
func benchPeers(t *testing.T) map[string]string {
	t.Helper()
	cmd := exec.Command("bash", filepath.Join(stacktest.RepoRoot(t), "dev", "bench-peers.sh"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dev/bench-peers.sh: %v\n%s", err, stderr.String())
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = strings.Trim(v, "'")
		}
	}
	for _, k := range []string{"BENCH_RSYSLOGD", "BENCH_RSYSLOG_MODDIR"} {
		if vars[k] == "" {
			t.Fatalf("dev/bench-peers.sh printed no %s", k)
		}
	}
	return vars
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
