package harness

import (
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// Probe is one answer of the reader's /healthz or /readyz: the status code and the JSON body.
type Probe struct {
	Code int
	Body map[string]any
	Raw  string
}

// Get returns the field of the body as a string ("" when absent).
func (p Probe) Get(key string) string {
	if v, ok := p.Body[key]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

// Probe asks the reader's path (/healthz or /readyz) once.
func (r *Reader) Probe(path string) (Probe, error) {
	code, body, err := httpGet(r.MetricsAddr, path)
	if err != nil {
		return Probe{}, err
	}
	p := Probe{Code: code, Raw: string(body)}
	if err := json.Unmarshal(body, &p.Body); err != nil {
		return p, fmt.Errorf("GET %s answered %d with a body that is not JSON: %q", path, code, body)
	}
	return p, nil
}

// WaitProbe polls path until match accepts an answer or d passes; it returns the last answer and whether
// match accepted it.
func (r *Reader) WaitProbe(path string, d time.Duration, match func(Probe) bool) (Probe, bool) {
	deadline := time.Now().Add(d)
	var last Probe
	for {
		p, err := r.Probe(path)
		if err == nil {
			last = p
			if match(p) {
				return p, true
			}
		}
		if time.Now().After(deadline) || r.Exited() {
			return last, false
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Healthy reports whether the answer is 200.
func (p Probe) Healthy() bool { return p.Code == http.StatusOK }
