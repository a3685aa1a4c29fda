package health

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// checkReader asks the reader's /healthz for a 200 within the check's time limit. The reader answers 200
// only while its Kafka client is not failed, so a stuck or credential-less reader fails here.
func (c *Checker) checkReader(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.cfg.ReaderURL, nil)
	if err != nil {
		return fmt.Errorf("building request to %s: %w", c.cfg.ReaderURL, err)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrReaderUnhealthy, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%w: %s answered %d: %s", ErrReaderUnhealthy, c.cfg.ReaderURL, resp.StatusCode, strings.TrimSpace(string(body)))
	}
	return nil
}
