package tcpin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/certtest"
)

// pki is the certificates of one TLS test: a CA with a server certificate for loopback and client
// certificates, and an unrelated CA.
type pki struct {
	dir                            string
	ca, other                      *certtest.CA
	server                         certtest.Pair
	good, expired, stranger, alien certtest.Pair
}

func newPKI(tb testing.TB) *pki {
	tb.Helper()
	p := &pki{dir: tb.TempDir()}
	var err error
	must := func(e error) {
		if e != nil {
			tb.Fatal(e)
		}
	}
	p.ca, err = certtest.NewCA(p.dir, "sources")
	must(err)
	p.other, err = certtest.NewCA(p.dir, "elsewhere")
	must(err)
	p.server, err = p.ca.Issue("server", certtest.Options{CommonName: "reader", Server: true})
	must(err)
	p.good, err = p.ca.Issue("good", certtest.Options{CommonName: "app-01", DNSNames: []string{"app-01.logs.internal"}})
	must(err)
	p.expired, err = p.ca.Issue("expired", certtest.Options{CommonName: "app-01",
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
	must(err)
	p.stranger, err = p.ca.Issue("stranger", certtest.Options{CommonName: "intruder"})
	must(err)
	p.alien, err = p.other.Issue("alien", certtest.Options{CommonName: "app-01"})
	must(err)
	return p
}

// clientTLS is a Go TLS client configuration trusting p's CA, presenting pair when it is not empty.
func (p *pki) clientTLS(tb testing.TB, pair certtest.Pair) *tls.Config {
	tb.Helper()
	pool := x509.NewCertPool()
	b, err := os.ReadFile(p.ca.CertFile)
	if err != nil {
		tb.Fatal(err)
	}
	pool.AppendCertsFromPEM(b)
	c := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
	if pair.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(pair.CertFile, pair.KeyFile)
		if err != nil {
			tb.Fatal(err)
		}
		// Always present it: Go's client would otherwise keep back a certificate the server's CA list does
		// not name, and the test would not be sending what it says.
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	}
	return c
}

func (p *pki) listenTLS(tb testing.TB, mutual bool, allowed ...string) *TLS {
	tb.Helper()
	cfg := TLSConfig{Enabled: true, CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, AllowedClients: allowed,
		HandshakeTimeout: time.Second}
	if mutual {
		cfg.CAFile = p.ca.CertFile
	}
	t, err := NewTLS(cfg, Listen, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	return t
}

// sendTLS dials addr with c, writes the lines and closes; it returns the error a read then sees (the
// server's verdict arrives after the client's handshake in TLS 1.3) or nil once the lines were written and
// the server closed cleanly.
func sendTLS(addr string, c *tls.Config, lines string) error {
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, c)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(conn, lines); err != nil {
		return err
	}
	if err := conn.CloseWrite(); err != nil {
		return err
	}
	_, err = conn.Read(make([]byte, 1))
	if errors.Is(err, io.EOF) {
		return nil
	}
	return err
}

// TestTLSListenRefusesWithReason: with mutual TLS and an allow-list, a good client's lines arrive, and each
// bad client is refused with its own reason, while the good client keeps flowing.
func TestTLSListenRefusesWithReason(t *testing.T) {
	p := newPKI(t)
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			obs := &countingObserver{}
			ln := listen(t)
			addr := ln.Addr().String()
			stop := startReader(t, mk, Config{Mode: Listen, TLS: p.listenTLS(t, true, "app-01"), Observer: obs, IdleTimeout: time.Minute}, ln, rec)
			defer stop()

			// A good client that stays connected throughout and sends a line between refusals.
			good, err := tls.Dial("tcp", addr, p.clientTLS(t, p.good))
			if err != nil {
				t.Fatalf("good client: %v", err)
			}
			defer good.Close()
			sent := 0
			send := func() {
				sent++
				fmt.Fprintf(good, "good-%d\n", sent)
			}
			send()

			tests := []struct {
				name   string
				client func() error
				reason string
			}{
				{"no client certificate", func() error { return sendTLS(addr, p.clientTLS(t, certtest.Pair{}), "x\n") }, HandshakeNoClientCert},
				{"certificate from another CA", func() error { return sendTLS(addr, p.clientTLS(t, p.alien), "x\n") }, HandshakeUnknownAuthority},
				{"expired certificate", func() error { return sendTLS(addr, p.clientTLS(t, p.expired), "x\n") }, HandshakeExpired},
				{"name not on the allow-list", func() error { return sendTLS(addr, p.clientTLS(t, p.stranger), "x\n") }, HandshakeNotAllowed},
				{"plain TCP", func() error {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return err
					}
					defer c.Close()
					c.Write([]byte(`{"eventId":1}` + "\n"))
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					_, err = c.Read(make([]byte, 1))
					if errors.Is(err, io.EOF) {
						return errors.New("closed")
					}
					return err
				}, HandshakeNotTLS},
				{"stalls mid-handshake", func() error {
					c, err := net.Dial("tcp", addr)
					if err != nil {
						return err
					}
					defer c.Close()
					c.Write([]byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01}) // a record header and one byte of a ClientHello
					c.SetReadDeadline(time.Now().Add(5 * time.Second))
					start := time.Now()
					_, err = c.Read(make([]byte, 1))
					if time.Since(start) > 3*time.Second {
						return fmt.Errorf("held for %v", time.Since(start))
					}
					if err == nil {
						return errors.New("server answered a stalled handshake")
					}
					return err
				}, HandshakeTimeout},
			}
			for _, tt := range tests {
				before := obs.failures()[tt.reason]
				if err := tt.client(); err == nil {
					t.Errorf("%s: the client was not refused", tt.name)
				}
				deadline := time.Now().Add(5 * time.Second)
				for obs.failures()[tt.reason] == before && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if obs.failures()[tt.reason] != before+1 {
					t.Errorf("%s: failures %v, want one more %s", tt.name, obs.failures(), tt.reason)
				}
				send()
			}
			items := rec.waitFor(t, sent, 5*time.Second)
			for i, it := range items {
				if want := fmt.Sprintf("good-%d", i+1); it.line != want || it.reason != "" {
					t.Errorf("item %d = %q, want %q: only the good client's lines arrive", i, it, want)
				}
			}
			var total int
			for _, n := range obs.failures() {
				total += n
			}
			if total != len(tests) {
				t.Errorf("failures %v, want exactly one per refused client", obs.failures())
			}
		})
	}
}

// TestTLSListenServerOnly: without a CA the reader asks for no client certificate, and TLS 1.1 is refused.
func TestTLSListenServerOnly(t *testing.T) {
	p := newPKI(t)
	rec := newRecorder()
	obs := &countingObserver{}
	ln := listen(t)
	stop := startReader(t, readers["HighPerfTCPReader"], Config{Mode: Listen, TLS: p.listenTLS(t, false), Observer: obs}, ln, rec)
	defer stop()
	if err := sendTLS(ln.Addr().String(), p.clientTLS(t, certtest.Pair{}), "a\nb\n"); err != nil {
		t.Fatalf("server-only TLS client: %v", err)
	}
	rec.waitFor(t, 2, 5*time.Second)
	old := p.clientTLS(t, certtest.Pair{})
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
	if err := sendTLS(ln.Addr().String(), old, "c\n"); err == nil {
		t.Errorf("a TLS 1.1 client was accepted")
	}
	waitFailure(t, obs, HandshakeProtocolVersion)
}

func waitFailure(t *testing.T, obs *countingObserver, reason string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for obs.failures()[reason] == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("failures %v, want %s", obs.failures(), reason)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestTLSHandshakeCannotHoldSlot: with one connection slot, a client that stalls its handshake is closed
// after the handshake timeout and the slot serves a good client.
func TestTLSHandshakeCannotHoldSlot(t *testing.T) {
	p := newPKI(t)
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			rec := newRecorder()
			obs := &countingObserver{}
			ln := listen(t)
			tl := p.listenTLS(t, true)
			tl.cfg.HandshakeTimeout = 300 * time.Millisecond
			stop := startReader(t, mk, Config{Mode: Listen, MaxConns: 1, TLS: tl, Observer: obs}, ln, rec)
			defer stop()
			stall, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer stall.Close()
			// Trickle a ClientHello a byte at a time: progress must not extend the deadline.
			go func() {
				for _, b := range []byte{0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc} {
					if _, err := stall.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(60 * time.Millisecond)
				}
			}()
			waitFailure(t, obs, HandshakeTimeout)
			// The failure is counted just before the stalled connection's goroutine gives its slot back: a
			// client that comes in between is refused (and counted so). Only a refusal is retried.
			for deadline := time.Now().Add(5 * time.Second); ; {
				refused := obs.refused()
				err := sendTLS(ln.Addr().String(), p.clientTLS(t, p.good), "after\n")
				if err == nil {
					break
				}
				if obs.refused() == refused || time.Now().After(deadline) {
					t.Fatalf("good client after the stall: %v (refused %d times)", err, obs.refused())
				}
				time.Sleep(10 * time.Millisecond)
			}
			items := rec.waitFor(t, 1, 5*time.Second)
			if items[0].line != "after" {
				t.Errorf("got %q, want the good client's line", items)
			}
		})
	}
}

// TestTLSReloadKeepsConnections: the certificate files are replaced while a connection is open; the open
// connection keeps sending, and the next handshake gets the new certificate.
func TestTLSReloadKeepsConnections(t *testing.T) {
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			p := newPKI(t)
			rec := newRecorder()
			ln := listen(t)
			tl := p.listenTLS(t, true)
			stop := startReader(t, mk, Config{Mode: Listen, TLS: tl}, ln, rec)
			defer stop()
			open, err := tls.Dial("tcp", ln.Addr().String(), p.clientTLS(t, p.good))
			if err != nil {
				t.Fatal(err)
			}
			defer open.Close()
			oldSerial := open.ConnectionState().PeerCertificates[0].SerialNumber
			fmt.Fprintf(open, "before\n")
			rec.waitFor(t, 1, 5*time.Second)

			if changed, err := tl.Reload(); err != nil || changed {
				t.Fatalf("Reload with unchanged files = %v, %v; want false, nil", changed, err)
			}
			if _, err := p.ca.Issue("server", certtest.Options{CommonName: "reader", Server: true}); err != nil {
				t.Fatal(err)
			}
			if changed, err := tl.Reload(); err != nil || !changed {
				t.Fatalf("Reload after rotation = %v, %v; want true, nil", changed, err)
			}
			fmt.Fprintf(open, "after rotation, same connection\n")
			fresh, err := tls.Dial("tcp", ln.Addr().String(), p.clientTLS(t, p.good))
			if err != nil {
				t.Fatal(err)
			}
			defer fresh.Close()
			if fresh.ConnectionState().PeerCertificates[0].SerialNumber.Cmp(oldSerial) == 0 {
				t.Errorf("a new handshake still got the old certificate")
			}
			fmt.Fprintf(fresh, "new connection\n")
			items := rec.waitFor(t, 3, 5*time.Second)
			if len(items) != 3 {
				t.Errorf("got %q, want 3 lines", items)
			}

			// A broken file (a key that does not match) keeps the current material.
			if err := os.WriteFile(p.server.KeyFile, []byte("not a key"), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := tl.Reload(); !errors.Is(err, ErrTLSFiles) {
				t.Errorf("Reload with a broken key = %v, want ErrTLSFiles", err)
			}
			if err := sendTLS(ln.Addr().String(), p.clientTLS(t, p.good), "still served\n"); err != nil {
				t.Errorf("after a failed reload: %v", err)
			}
			rec.waitFor(t, 4, 5*time.Second)
		})
	}
}

// TestTLSConnectMode: the reader dials a TLS source, verifies it against the CA and presents its client
// certificate; a source whose certificate another CA issued is refused and retried.
func TestTLSConnectMode(t *testing.T) {
	p := newPKI(t)
	srv, err := tls.LoadX509KeyPair(p.server.CertFile, p.server.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for name, mk := range readers {
		t.Run(name, func(t *testing.T) {
			pool := x509.NewCertPool()
			b, _ := os.ReadFile(p.ca.CertFile)
			pool.AppendCertsFromPEM(b)
			ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv},
				ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool})
			if err != nil {
				t.Fatal(err)
			}
			defer ln.Close()
			tl, err := NewTLS(TLSConfig{Enabled: true, CAFile: p.ca.CertFile, CertFile: p.good.CertFile, KeyFile: p.good.KeyFile}, Connect, nil)
			if err != nil {
				t.Fatal(err)
			}
			rec := newRecorder()
			stop := startReader(t, mk, Config{Mode: Connect, Addr: ln.Addr().String(), TLS: tl, MinBackoff: 10 * time.Millisecond}, nil, rec)
			defer stop()
			c, err := ln.Accept()
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "over tls\n")
			c.Close()
			items := rec.waitFor(t, 1, 5*time.Second)
			if items[0].line != "over tls" {
				t.Errorf("got %q", items)
			}
		})
	}

	t.Run("wrong CA", func(t *testing.T) {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{srv}})
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.(*tls.Conn).Handshake()
				c.Close()
			}
		}()
		tl, err := NewTLS(TLSConfig{Enabled: true, CAFile: p.other.CertFile}, Connect, nil)
		if err != nil {
			t.Fatal(err)
		}
		obs := &countingObserver{}
		stop := startReader(t, readers["HighPerfTCPReader"], Config{Mode: Connect, Addr: ln.Addr().String(), TLS: tl,
			Observer: obs, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}, nil, newRecorder())
		defer stop()
		waitFailure(t, obs, HandshakeUnknownAuthority)
		if obs.opened != 0 {
			t.Errorf("%d connections served, want none", obs.opened)
		}
	})
}

func TestTLSConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		mode Mode
		cfg  TLSConfig
		want string // substring of the error; empty: valid
	}{
		{"off", Listen, TLSConfig{}, ""},
		{"settings without the switch", Listen, TLSConfig{CertFile: "c"}, "--source-tls is off"},
		{"listen without a certificate", Listen, TLSConfig{Enabled: true}, "needs --source-tls-cert"},
		{"cert without key", Connect, TLSConfig{Enabled: true, CertFile: "c"}, "go together"},
		{"allow-list without a CA", Listen, TLSConfig{Enabled: true, CertFile: "c", KeyFile: "k", AllowedClients: []string{"a"}}, "needs --source-tls-ca"},
		{"allow-list in connect mode", Connect, TLSConfig{Enabled: true, AllowedClients: []string{"a"}}, "for listen mode"},
		{"server name in listen mode", Listen, TLSConfig{Enabled: true, CertFile: "c", KeyFile: "k", ServerName: "x"}, "for connect mode"},
		{"connect with system CAs", Connect, TLSConfig{Enabled: true}, ""},
		{"mutual listen", Listen, TLSConfig{Enabled: true, CertFile: "c", KeyFile: "k", CAFile: "ca", AllowedClients: []string{"a"}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate(tt.mode)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want ErrInvalidConfig naming %q", err, tt.want)
			}
		})
	}
}

func TestNewTLSBadFiles(t *testing.T) {
	p := newPKI(t)
	notPEM := p.dir + "/not.pem"
	os.WriteFile(notPEM, []byte("hello"), 0o600)
	tests := []struct {
		name string
		cfg  TLSConfig
		want string
	}{
		{"missing certificate", TLSConfig{Enabled: true, CertFile: p.dir + "/none.pem", KeyFile: p.server.KeyFile}, "--source-tls-cert"},
		{"key of another certificate", TLSConfig{Enabled: true, CertFile: p.server.CertFile, KeyFile: p.good.KeyFile}, "--source-tls-key"},
		{"CA bundle without a certificate", TLSConfig{Enabled: true, CertFile: p.server.CertFile, KeyFile: p.server.KeyFile, CAFile: notPEM}, "--source-tls-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewTLS(tt.cfg, Listen, nil)
			if !errors.Is(err, ErrTLSFiles) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewTLS = %v, want ErrTLSFiles naming %s", err, tt.want)
			}
		})
	}
}

// TestFailureLogBounds: the first refusal of each reason per source is logged; past its room for sources,
// further sources share one entry ("other"); close reports every count not logged.
func TestFailureLogBounds(t *testing.T) {
	logs := &logCapture{}
	l := newFailureLog(time.Hour, 2, logs.logger())
	steps := []struct {
		host, reason string
		want         bool
	}{
		{"a", HandshakeNotTLS, true},
		{"a", HandshakeNotTLS, false},
		{"a", HandshakeExpired, true},
		{"b", HandshakeNotTLS, true},
		{"c", HandshakeNotTLS, true}, // no room: the first of its reason among the other sources
		{"d", HandshakeNotTLS, false},
		{"d", HandshakeTimeout, true},
		{"b", HandshakeNotTLS, false},
	}
	for i, s := range steps {
		if got := l.allow(s.host, s.reason); got != s.want {
			t.Errorf("step %d: allow(%s, %s) = %v, want %v", i, s.host, s.reason, got, s.want)
		}
	}
	l.close()
	got := map[string]string{}
	for _, rec := range logs.records(t, "TLS handshake failures not logged") {
		got[rec["remote_host"].(string)] = fmt.Sprint(rec["not_logged"], rec["total"], rec["at_stop"])
	}
	want := map[string]string{"a": "map[not_tls:1] 1 true", "b": "map[not_tls:1] 1 true", otherSources: "map[not_tls:1] 1 true"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reports at close = %v, want %v", got, want)
	}
	if !l.allow("a", HandshakeNotTLS) {
		t.Errorf("a refusal after close was not logged")
	}
}

func TestPlaintextWarning(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	warnPlaintext(Config{Logger: log}, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1})
	if buf.Len() != 0 {
		t.Errorf("warned for loopback: %s", buf.String())
	}
	warnPlaintext(Config{Logger: log}, &net.TCPAddr{IP: net.IPv4zero, Port: 1})
	if !strings.Contains(buf.String(), "without TLS") {
		t.Errorf("no warning for 0.0.0.0: %q", buf.String())
	}
	buf.Reset()
	warnPlaintext(Config{Logger: log, TLS: &TLS{}}, &net.TCPAddr{IP: net.IPv4zero, Port: 1})
	if buf.Len() != 0 {
		t.Errorf("warned with TLS on: %s", buf.String())
	}
}

// BenchmarkReadTLS frames the same stream as BenchmarkSplit, read from a loopback TLS connection (the
// sending side runs in the same process and counts in the figures). The framing still allocates nothing;
// crypto/tls allocates one small object per record it reads from the socket (its atLeastReader), about one
// per 16 KiB, which is what allocs/op shows here.
func BenchmarkReadTLS(b *testing.B) {
	p := newPKI(b)
	line := []byte(`{"eventId":123456,"level":"Info","source":"auth-service","timestamp":"2026-11-25 10:11:12.123456","computer":"web-07.prod.internal","user":"alice","message":"User login succeeded from 10.1.2.3 via SSO; session established with MFA and a 30 minute idle timeout for the web console"}` + "\n")
	data := bytes.Repeat(line, 4096)
	ln := listen(b)
	tl := p.listenTLS(b, false)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		tc := tls.Server(c, tl.serverConfig())
		for {
			if _, err := tc.Write(data); err != nil {
				return
			}
		}
	}()
	conn, err := tls.Dial("tcp", ln.Addr().String(), p.clientTLS(b, certtest.Pair{}))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	h := &countingHandler{}
	f := newFramer(DefaultReadBufferBytes, DefaultMaxLineBytes)
	ctx := context.Background()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for read := 0; read < len(data); {
			n, err := f.fill(conn)
			if err != nil {
				b.Fatal(err)
			}
			read += n
			f.split(ctx, h, Source{})
		}
	}
	b.ReportMetric(float64(len(line)), "bytes/line")
}
