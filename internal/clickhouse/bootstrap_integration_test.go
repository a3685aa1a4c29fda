package clickhouse_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
)

// TestIntegrationCAFormsKeepCredentials: the CA as a file holds (ending in a newline, as every PEM writer
// ends it), inline without the final newline, and with CRLF line ends is one CA: after Apply with the file's
// form, a dry run and a real run with the other forms keep everything instead of rotating the credentials.
func TestIntegrationCAFormsKeepCredentials(t *testing.T) {
	e := loadEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c := e.client(t, "")
	s := freshSchema(t, e, c, "it_caforms", 1)
	if !strings.HasSuffix(s.Auth.CAPEM, "-----\n") {
		t.Fatalf("the stack's CA file does not end in a newline; the test needs that form to start from")
	}
	if _, err := clickhouse.Apply(ctx, c, s); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	for name, pem := range map[string]string{
		"inline, no final newline": strings.TrimRight(e.caPEM, "\n"),
		"CRLF line ends":           strings.ReplaceAll(e.caPEM, "\n", "\r\n"),
		"blank lines around it":    "\n\n" + e.caPEM + "\n\n",
	} {
		other := s
		other.Auth.CAPEM = pem
		for _, run := range []func(context.Context, *clickhouse.Client, clickhouse.Schema) (clickhouse.Result, error){clickhouse.DryRun, clickhouse.Apply} {
			r, err := run(ctx, c, other)
			if err != nil || len(r.Updated) != 0 || len(r.Created) != 0 || !equal(r.Kept, allNames(s.Database)) {
				t.Errorf("CA %s (dry run %v): %+v, %v; want everything kept, no credentials change", name, r.DryRun, r, err)
			}
		}
	}
}
