package clickhouse

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxErrorBody bounds how much of an error answer is kept.
const maxErrorBody = 64 << 10

// Client talks to ClickHouse's HTTP(S) interface with plain net/http. It is safe for concurrent use.
type Client struct {
	endpoint *url.URL
	user     string
	password string
	database string
	http     *http.Client
}

// ClientOption configures a Client.
type ClientOption func(*Client)

// WithCredentials sets the user and password, sent as X-ClickHouse-User and X-ClickHouse-Key headers
// (never in the URL, so they stay out of proxies' logs). Default: user "default", no password.
func WithCredentials(user, password string) ClientOption {
	return func(c *Client) { c.user, c.password = user, password }
}

// WithDatabase sets the database unqualified names resolve in (the database parameter). Default: the
// server's default database.
func WithDatabase(db string) ClientOption { return func(c *Client) { c.database = db } }

// WithHTTPClient replaces the HTTP client. The default verifies TLS certificates against the system pool
// and times out each request after 60 seconds; contexts bound each call more tightly.
func WithHTTPClient(h *http.Client) ClientOption { return func(c *Client) { c.http = h } }

// NewClient returns a Client for endpoint, e.g. http://127.0.0.1:18123 or https://host:8443.
func NewClient(endpoint string, opts ...ClientOption) (*Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		// url.Parse quotes its input, which may hold a password: report only that it failed.
		return nil, fmt.Errorf("parsing endpoint: %w", ErrBadEndpoint)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("endpoint %q: %w", u.Redacted(), ErrBadEndpoint)
	}
	if u.User != nil {
		return nil, fmt.Errorf("endpoint with credentials in it: %w (pass them with WithCredentials)", ErrBadEndpoint)
	}
	c := &Client{endpoint: u, user: "default", http: &http.Client{Timeout: 60 * time.Second}}
	for _, o := range opts {
		o(c)
	}
	return c, nil
}

// Exec runs a statement that returns no rows (DDL, INSERT with inline data).
func (c *Client) Exec(ctx context.Context, sql string) error {
	body, err := c.do(ctx, sql, nil)
	if err != nil {
		return err
	}
	return body.Close()
}

// Ping checks that the server answers /ping.
func (c *Client) Ping(ctx context.Context) error {
	u := *c.endpoint
	u.Path = strings.TrimSuffix(u.Path, "/") + "/ping"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("building ping request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("pinging clickhouse: %w", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64))
	if resp.StatusCode != http.StatusOK || string(b) != "Ok.\n" {
		return fmt.Errorf("pinging clickhouse: HTTP %d %q", resp.StatusCode, b)
	}
	return nil
}

// Query is a statement with its query parameters ({name:Type} placeholders, sent as param_name; values are
// plain strings, escaped here as ClickHouse expects) and settings (sent as URL parameters, as ClickHouse's
// HTTP interface takes them).
type Query struct {
	SQL      string
	Params   map[string]string
	Settings map[string]string
}

// QueryRows runs a SELECT and decodes each row into a new T from JSONEachRow. 64-bit integers arrive as
// JSON numbers (output_format_json_quote_64bit_integers=0) and date-times as ISO 8601 in UTC
// (date_time_output_format=iso), whatever the server's time zone; a setting in q overrides both.
func QueryRows[T any](ctx context.Context, c *Client, q Query) ([]T, error) {
	v := url.Values{}
	v.Set("default_format", "JSONEachRow")
	v.Set("output_format_json_quote_64bit_integers", "0")
	v.Set("date_time_output_format", "iso")
	for k, x := range q.Settings {
		v.Set(k, x)
	}
	for k, x := range q.Params {
		v.Set("param_"+k, escapeParam(x))
	}
	body, err := c.do(ctx, q.SQL, v)
	if err != nil {
		return nil, err
	}
	defer body.Close()
	var out []T
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var row T
		if err := json.Unmarshal(line, &row); err != nil {
			return nil, fmt.Errorf("decoding row %d: %w", len(out)+1, err)
		}
		out = append(out, row)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading rows: %w", err)
	}
	return out, nil
}

// paramEscaper escapes a query parameter's value the way ClickHouse parses it (TSV escaping): without it
// a newline or tab in the value ends it early and the query fails with BAD_QUERY_PARAMETER.
var paramEscaper = strings.NewReplacer(`\`, `\\`, "\n", `\n`, "\t", `\t`, "\r", `\r`, "\x00", `\0`)

func escapeParam(s string) string { return paramEscaper.Replace(s) }

// do POSTs sql and returns the answer's body, or a *ServerError when ClickHouse answered with an error.
func (c *Client) do(ctx context.Context, sql string, params url.Values) (io.ReadCloser, error) {
	u := *c.endpoint
	if u.Path == "" {
		u.Path = "/"
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			q.Add(k, v)
		}
	}
	if c.database != "" {
		q.Set("database", c.database)
	}
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(sql))
	if err != nil {
		return nil, fmt.Errorf("building request: %w", err)
	}
	req.Header.Set("Content-Type", "text/plain; charset=UTF-8")
	req.Header.Set("X-ClickHouse-User", c.user)
	if c.password != "" {
		req.Header.Set("X-ClickHouse-Key", c.password)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("querying clickhouse at %s: %w", c.endpoint.Host, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp.Body, nil
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	code, _ := strconv.Atoi(resp.Header.Get("X-ClickHouse-Exception-Code"))
	return nil, &ServerError{Status: resp.StatusCode, Code: code, Message: strings.TrimSpace(string(b))}
}

// Copy runs one statement and copies its answer to w as ClickHouse formats it (format, e.g.
// PrettyCompactMonoBlock or TSVWithNames, unless the statement names its own FORMAT). A statement that
// returns no rows writes nothing.
func (c *Client) Copy(ctx context.Context, w io.Writer, sql, format string) error {
	body, err := c.do(ctx, sql, url.Values{"default_format": {format}})
	if err != nil {
		return err
	}
	defer body.Close()
	if _, err := io.Copy(w, body); err != nil {
		return fmt.Errorf("reading the answer: %w", err)
	}
	return nil
}
