package tcpin

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Defaults of TLSConfig.
const (
	// DefaultHandshakeTimeout bounds a TLS handshake. It is also the longest a connection that never
	// completes its handshake holds one of the MaxConns slots.
	DefaultHandshakeTimeout = 10 * time.Second
	// DefaultTLSReloadInterval is how often the certificate files are checked for a change.
	DefaultTLSReloadInterval = 30 * time.Second
	// DefaultLogInterval is Config.LogInterval's default: a source's refusals of one reason are logged once
	// per interval, so a scanner or a misconfigured client fleet cannot flood the logs.
	DefaultLogInterval = time.Minute
)

// TLSConfig configures TLS on the source connection, in both modes. The zero value is plain TCP.
//
// In listen mode the reader presents CertFile/KeyFile; with CAFile it requires and verifies a client
// certificate issued by that CA (mutual TLS), and with AllowedClients it admits only clients whose
// certificate names one of them (subject common name or a DNS, email or URI subject alternative name).
// In connect mode the reader verifies the source's certificate against CAFile (default: the system CAs) and
// the host of the source address (or ServerName), and presents CertFile/KeyFile as its client certificate
// when given. TLS 1.2 is the minimum; 1.3 is negotiated when the peer has it.
type TLSConfig struct {
	Enabled          bool
	CertFile         string
	KeyFile          string
	CAFile           string
	AllowedClients   []string
	ServerName       string
	HandshakeTimeout time.Duration
	// ReloadInterval is how often Watch checks the files for a change (default 30s).
	ReloadInterval time.Duration
	// CertPEM, KeyPEM and CAPEM, when set, stand in for the files, from the environment only (the
	// READER_SOURCE_TLS_*_PEM variables a container's secrets fill): never flags, which a process list shows.
	// They are fixed for the life of the process.
	CertPEM, KeyPEM, CAPEM string
}

// FromEnv reads CertPEM, KeyPEM and CAPEM from READER_SOURCE_TLS_CERT_PEM, _KEY_PEM and _CA_PEM.
func (c *TLSConfig) FromEnv(getenv func(string) string) {
	c.CertPEM = getenv("READER_SOURCE_TLS_CERT_PEM")
	c.KeyPEM = getenv("READER_SOURCE_TLS_KEY_PEM")
	c.CAPEM = getenv("READER_SOURCE_TLS_CA_PEM")
}

// RegisterFlags registers the --source-tls-* flags on fs.
func (c *TLSConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.BoolVar(&c.Enabled, "source-tls", false, "TLS on the source connection (listen: needs --source-tls-cert and --source-tls-key; connect: verifies the source)")
	fs.StringVar(&c.CertFile, "source-tls-cert", "", "PEM certificate (chain) the reader presents: its server certificate in listen mode, its client certificate in connect mode")
	fs.StringVar(&c.KeyFile, "source-tls-key", "", "PEM private key of --source-tls-cert")
	fs.StringVar(&c.CAFile, "source-tls-ca", "", "PEM CA bundle: listen mode requires client certificates from it (mutual TLS); connect mode verifies the source with it (default: system CAs)")
	fs.Func("source-tls-allowed-clients", "listen mode with --source-tls-ca: admit only clients whose certificate names one of these (subject CN or SAN), comma-separated", func(s string) error {
		c.AllowedClients = nil
		for _, v := range strings.Split(s, ",") {
			if v = strings.TrimSpace(v); v != "" {
				c.AllowedClients = append(c.AllowedClients, v)
			}
		}
		return nil
	})
	fs.StringVar(&c.ServerName, "source-tls-server-name", "", "connect mode: the name the source's certificate must carry (default: the host of --source-addr)")
	fs.DurationVar(&c.HandshakeTimeout, "source-tls-handshake-timeout", DefaultHandshakeTimeout, "bound on a TLS handshake; a client that stalls it is closed")
	fs.DurationVar(&c.ReloadInterval, "source-tls-reload-interval", DefaultTLSReloadInterval, "how often the certificate files are checked for a change (SIGHUP reloads at once)")
}

// Validate checks the combination of settings for mode; errors name the flag.
func (c TLSConfig) Validate(mode Mode) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	if !c.Enabled {
		if c.CertFile != "" || c.KeyFile != "" || c.CAFile != "" || len(c.AllowedClients) > 0 || c.ServerName != "" ||
			c.CertPEM != "" || c.KeyPEM != "" || c.CAPEM != "" {
			return bad("--source-tls-* settings are given but --source-tls is off")
		}
		return nil
	}
	for _, both := range [][3]string{{c.CertFile, c.CertPEM, "cert"}, {c.KeyFile, c.KeyPEM, "key"}, {c.CAFile, c.CAPEM, "ca"}} {
		if both[0] != "" && both[1] != "" {
			return bad("--source-tls-%s and READER_SOURCE_TLS_%s_PEM are both set; use one", both[2], strings.ToUpper(both[2]))
		}
	}
	hasCert, hasKey, hasCA := c.CertFile != "" || c.CertPEM != "", c.KeyFile != "" || c.KeyPEM != "", c.CAFile != "" || c.CAPEM != ""
	if hasCert != hasKey {
		return bad("--source-tls-cert and --source-tls-key go together")
	}
	if c.HandshakeTimeout < 0 || c.ReloadInterval < 0 {
		return bad("--source-tls-handshake-timeout and --source-tls-reload-interval must not be negative")
	}
	switch mode {
	case Listen:
		if !hasCert {
			return bad("--source-tls in listen mode needs --source-tls-cert and --source-tls-key (the reader's server certificate)")
		}
		if len(c.AllowedClients) > 0 && !hasCA {
			return bad("--source-tls-allowed-clients needs --source-tls-ca (client certificates are only verified against a CA)")
		}
		if c.ServerName != "" {
			return bad("--source-tls-server-name is for connect mode")
		}
	case Connect:
		if len(c.AllowedClients) > 0 {
			return bad("--source-tls-allowed-clients is for listen mode")
		}
	}
	return nil
}

// TLS is the loaded TLS material of a reader, swapped whole when the files change: a handshake uses the
// material current when it starts, and established connections are never touched by a reload. Safe for
// concurrent use.
type TLS struct {
	cfg  TLSConfig
	mode Mode
	log  *slog.Logger
	cur  atomic.Pointer[tlsMaterial]
	mu   sync.Mutex // serializes Reload
}

// tlsMaterial is one generation of certificate, key and CA bundle.
type tlsMaterial struct {
	files  [][]byte // the files' contents, to tell a change from a touch
	cert   *tls.Certificate
	pool   *x509.CertPool // nil: no client verification (listen) or the system CAs (connect)
	server *tls.Config    // listen mode
}

// NewTLS loads cfg's files for mode. It returns nil, nil when TLS is off.
func NewTLS(cfg TLSConfig, mode Mode, log *slog.Logger) (*TLS, error) {
	if err := cfg.Validate(mode); err != nil {
		return nil, err
	}
	if !cfg.Enabled {
		return nil, nil
	}
	if cfg.HandshakeTimeout == 0 {
		cfg.HandshakeTimeout = DefaultHandshakeTimeout
	}
	if cfg.ReloadInterval == 0 {
		cfg.ReloadInterval = DefaultTLSReloadInterval
	}
	if log == nil {
		log = slog.Default()
	}
	t := &TLS{cfg: cfg, mode: mode, log: log}
	m, err := t.load()
	if err != nil {
		return nil, err
	}
	t.cur.Store(m)
	return t, nil
}

// Reload reads the files again and, when their contents changed and they load, makes them current for new
// handshakes. When they do not load (a half-written file, a key that does not match), the previous material
// stays in use and the error says why.
func (t *TLS) Reload() (changed bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	files, err := t.readFiles()
	if err != nil {
		return false, err
	}
	if slices.EqualFunc(files, t.cur.Load().files, bytes.Equal) {
		return false, nil
	}
	m, err := t.build(files)
	if err != nil {
		return false, err
	}
	t.cur.Store(m)
	return true, nil
}

// Watch reloads the files every ReloadInterval, and at once whenever hup receives (SIGHUP), until ctx is
// done. It logs each reload and each failure to reload.
func (t *TLS) Watch(ctx context.Context, hup <-chan os.Signal) {
	tick := time.NewTicker(t.cfg.ReloadInterval)
	defer tick.Stop()
	for {
		trigger := "change"
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-hup:
			trigger = "SIGHUP"
		}
		changed, err := t.Reload()
		switch {
		case err != nil:
			t.log.Error("reloading source TLS certificates; keeping the current ones", "trigger", trigger, "err", err)
		case changed:
			t.log.Info("reloaded source TLS certificates", "trigger", trigger, "not_after", t.NotAfter())
		case trigger == "SIGHUP":
			t.log.Info("source TLS certificates unchanged", "trigger", trigger)
		}
	}
}

// NotAfter is when the current certificate the reader presents expires (zero without one).
func (t *TLS) NotAfter() time.Time {
	if m := t.cur.Load(); m.cert != nil && m.cert.Leaf != nil {
		return m.cert.Leaf.NotAfter
	}
	return time.Time{}
}

func (t *TLS) readFiles() ([][]byte, error) {
	var files [][]byte
	for _, f := range []struct{ flag, path, pem string }{
		{"--source-tls-cert", t.cfg.CertFile, t.cfg.CertPEM}, {"--source-tls-key", t.cfg.KeyFile, t.cfg.KeyPEM},
		{"--source-tls-ca", t.cfg.CAFile, t.cfg.CAPEM},
	} {
		if f.path == "" {
			if f.pem != "" {
				files = append(files, []byte(f.pem))
			} else {
				files = append(files, nil)
			}
			continue
		}
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrTLSFiles, f.flag, err)
		}
		files = append(files, b)
	}
	return files, nil
}

func (t *TLS) load() (*tlsMaterial, error) {
	files, err := t.readFiles()
	if err != nil {
		return nil, err
	}
	return t.build(files)
}

func (t *TLS) build(files [][]byte) (*tlsMaterial, error) {
	m := &tlsMaterial{files: files}
	if files[0] != nil {
		cert, err := tls.X509KeyPair(files[0], files[1])
		if err != nil {
			return nil, fmt.Errorf("%w: --source-tls-cert and --source-tls-key: %w", ErrTLSFiles, err)
		}
		m.cert = &cert
	}
	if files[2] != nil {
		m.pool = x509.NewCertPool()
		if !m.pool.AppendCertsFromPEM(files[2]) {
			return nil, fmt.Errorf("%w: --source-tls-ca: no PEM certificate in the CA bundle", ErrTLSFiles)
		}
	}
	if t.mode == Listen {
		m.server = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*m.cert},
		}
		if m.pool != nil {
			// VerifyClientCertIfGiven rather than RequireAndVerifyClientCert: Go then verifies a certificate
			// that is given against ClientCAs, and verifyClient sees the missing one, so that refusal has a
			// reason of its own instead of an error string.
			m.server.ClientAuth = tls.VerifyClientCertIfGiven
			m.server.ClientCAs = m.pool
			m.server.VerifyConnection = t.verifyClient
		}
	}
	return m, nil
}

// verifyClient runs after Go verified the client's chain: a certificate is required, and with an allow-list
// it must name an allowed client.
func (t *TLS) verifyClient(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return ErrNoClientCertificate
	}
	if len(t.cfg.AllowedClients) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	for _, id := range identities(leaf) {
		if slices.Contains(t.cfg.AllowedClients, id) {
			return nil
		}
	}
	return fmt.Errorf("%w: certificate names %q", ErrClientNotAllowed, identities(leaf))
}

// identities are the names a certificate can be allowed by: its subject common name and its DNS, email and
// URI subject alternative names.
func identities(c *x509.Certificate) []string {
	var ids []string
	if c.Subject.CommonName != "" {
		ids = append(ids, c.Subject.CommonName)
	}
	ids = append(ids, c.DNSNames...)
	ids = append(ids, c.EmailAddresses...)
	for _, u := range c.URIs {
		ids = append(ids, u.String())
	}
	return ids
}

// clientConfig is the configuration for one dial to addr in connect mode.
func (t *TLS) clientConfig(addr string) *tls.Config {
	m := t.cur.Load()
	name := t.cfg.ServerName
	if name == "" {
		name, _, _ = net.SplitHostPort(addr)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: m.pool, ServerName: name}
	if m.cert != nil {
		cert := m.cert
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return cert, nil }
	}
	return c
}

// serverConfig is the configuration for listen mode: each handshake takes the material current when it
// starts.
func (t *TLS) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			return t.cur.Load().server, nil
		},
	}
}

// Reasons a TLS handshake fails, as counted (a bounded set: they label a metric).
const (
	HandshakeNoClientCert     = "no_client_certificate"
	HandshakeUnknownAuthority = "unknown_authority"
	HandshakeExpired          = "expired_certificate"
	HandshakeBadCertificate   = "bad_certificate"
	HandshakeNotAllowed       = "client_not_allowed"
	HandshakeHostname         = "hostname_mismatch"
	HandshakeNotTLS           = "not_tls"
	HandshakeTimeout          = "timeout"
	HandshakeProtocolVersion  = "protocol_version"
	HandshakeRejectedByPeer   = "rejected_by_peer"
	HandshakeClosed           = "closed_by_peer"
	HandshakeOther            = "other"
)

// HandshakeReason classifies a handshake error into one of the Handshake* reasons.
func HandshakeReason(err error) string {
	var (
		invalid  x509.CertificateInvalidError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
		header   tls.RecordHeaderError
		op       *net.OpError
		netErr   net.Error
	)
	switch {
	case errors.Is(err, ErrNoClientCertificate):
		return HandshakeNoClientCert
	case errors.Is(err, ErrClientNotAllowed):
		return HandshakeNotAllowed
	case errors.As(err, &invalid) && invalid.Reason == x509.Expired:
		return HandshakeExpired
	case errors.As(err, &unknown):
		return HandshakeUnknownAuthority
	case errors.As(err, &hostname):
		return HandshakeHostname
	case errors.As(err, &verify), errors.As(err, &invalid):
		return HandshakeBadCertificate
	case errors.As(err, &header):
		return HandshakeNotTLS
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return HandshakeTimeout
	case errors.As(err, &op) && op.Op == "remote error":
		// The peer sent an alert: it refused our certificate, our version or our parameters.
		return HandshakeRejectedByPeer
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed):
		return HandshakeClosed
	case strings.Contains(err.Error(), "unsupported versions"), strings.Contains(err.Error(), "protocol version"):
		// crypto/tls refuses a too-old client with an unexported error; its text is all there is.
		return HandshakeProtocolVersion
	}
	return HandshakeOther
}

// handshake runs the TLS handshake on conn for cfg's mode, bounded by the handshake timeout (and by the idle
// timeout in listen mode, whichever is shorter): the deadline covers the whole handshake and is not
// extended by progress, so a client that trickles its handshake is closed like a silent one.
func handshake(ctx context.Context, cfg Config, conn net.Conn) (*tls.Conn, error) {
	var tc *tls.Conn
	if cfg.Mode == Listen {
		tc = tls.Server(conn, cfg.TLS.serverConfig())
	} else {
		tc = tls.Client(conn, cfg.TLS.clientConfig(cfg.Addr))
	}
	timeout := cfg.TLS.cfg.HandshakeTimeout
	if cfg.Mode == Listen {
		timeout = min(timeout, cfg.IdleTimeout)
	}
	conn.SetDeadline(time.Now().Add(timeout))
	hctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		return nil, err
	}
	conn.SetDeadline(time.Time{})
	return tc, nil
}

// peerIdentity names the verified client (or server) of an established TLS connection, for logs.
func peerIdentity(tc *tls.Conn) string {
	cs := tc.ConnectionState()
	if len(cs.PeerCertificates) == 0 {
		return ""
	}
	if ids := identities(cs.PeerCertificates[0]); len(ids) > 0 {
		return ids[0]
	}
	return cs.PeerCertificates[0].Subject.String()
}

// failureLog decides which refused handshakes are logged: the first of each reason from a source address in
// an interval (which starts at that source's first refusal), so five different refusals from one address are
// five lines, while a scanner or a misconfigured fleet repeating one refusal is one line per interval. What is
// not logged is counted and reported, one line per source, when its interval ends and when the reader stops.
//
// It tracks at most max sources at once (an entry lives for one interval); refusals from further sources
// share one entry, reported as remote_host "other", so a flood from many addresses grows neither the map
// nor the logs. Safe for concurrent use.
type failureLog struct {
	mu      sync.Mutex
	every   time.Duration
	max     int
	log     *slog.Logger
	sources map[string]*failureEntry
	other   *failureEntry // refusals from sources beyond max
	timers  sync.WaitGroup
	closed  bool
}

type failureEntry struct {
	host      string
	start     time.Time
	timer     *time.Timer
	notLogged map[string]int // by reason; a reason present with 0 was logged once and nothing since
}

// otherSources names the shared entry of the sources failureLog has no room for.
const otherSources = "other"

func newFailureLog(every time.Duration, maxSources int, log *slog.Logger) *failureLog {
	return &failureLog{every: every, max: maxSources, log: log, sources: make(map[string]*failureEntry)}
}

// allow records a refusal from host with reason and reports whether to log it: true for the first of its
// reason in host's current interval.
func (l *failureLog) allow(host, reason string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return true
	}
	e := l.sources[host]
	if e == nil && len(l.sources) >= l.max {
		if l.other == nil {
			l.other = l.newEntry(otherSources)
		}
		e = l.other
	}
	if e == nil {
		e = l.newEntry(host)
		l.sources[host] = e
	}
	if _, seen := e.notLogged[reason]; seen {
		e.notLogged[reason]++
		return false
	}
	e.notLogged[reason] = 0
	return true
}

// newEntry starts an interval for host, ended by a timer. Called with l.mu held.
func (l *failureLog) newEntry(host string) *failureEntry {
	e := &failureEntry{host: host, start: time.Now(), notLogged: map[string]int{}}
	l.timers.Add(1)
	e.timer = time.AfterFunc(l.every, func() {
		defer l.timers.Done()
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return
		}
		if e == l.other {
			l.other = nil
		} else {
			delete(l.sources, e.host)
		}
		l.mu.Unlock()
		l.report(e, false)
	})
	return e
}

// report logs how many of e's refusals were not logged, when there are any.
func (l *failureLog) report(e *failureEntry, atStop bool) {
	total := 0
	notLogged := map[string]int{}
	for reason, n := range e.notLogged {
		if n > 0 {
			total += n
			notLogged[reason] = n
		}
	}
	if total == 0 {
		return
	}
	l.log.Warn("TLS handshake failures not logged", "remote_host", e.host, "total", total, "not_logged", notLogged,
		"since", e.start.UTC().Format(time.RFC3339), "interval", l.every.String(), "at_stop", atStop)
}

// close reports every open interval's count of refusals not logged; refusals after it are all logged.
func (l *failureLog) close() {
	l.mu.Lock()
	l.closed = true
	var open []*failureEntry
	for _, e := range l.sources {
		open = append(open, e)
	}
	if l.other != nil {
		open = append(open, l.other)
	}
	for _, e := range open {
		if e.timer.Stop() {
			l.timers.Done() // its func will not run
		}
	}
	clear(l.sources)
	l.other = nil
	l.mu.Unlock()
	l.timers.Wait()
	slices.SortFunc(open, func(a, b *failureEntry) int { return a.start.Compare(b.start) })
	for _, e := range open {
		l.report(e, true)
	}
}

// hostOf is the address without its port: a source reconnecting from a new port is the same source.
func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}
