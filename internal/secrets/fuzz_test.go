package secrets

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic; on success every field is set and
// trimmed as documented; on failure the error is one of the package's sentinels and quotes none of the
// input's string values (any of which could be a password). The seed corpus is testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"KAFKA_BOOTSTRAP_SERVER":"localhost:19093","KAFKA_SASL_USERNAME":"pipeline","KAFKA_SASL_PASSWORD":"pw-123456"}`))
	f.Add([]byte(`{"KAFKA_SASL_PASSWORD":"hunter2hunter2"`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := Parse(raw)
		if err == nil {
			if k.BootstrapServers == "" || k.Username == "" || strings.TrimSpace(k.Password) == "" {
				t.Fatalf("Parse(%q) = %#v with nil error, want every field set", raw, k)
			}
			if strings.TrimSpace(k.BootstrapServers) != k.BootstrapServers || strings.TrimSpace(k.Username) != k.Username {
				t.Fatalf("Parse(%q) left surrounding whitespace", raw)
			}
			return
		}
		if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrMissingKey) {
			t.Fatalf("Parse(%q) error = %v, want ErrMalformed or ErrMissingKey", raw, err)
		}
		msg := err.Error()
		for _, v := range stringValues(raw) {
			if len(v) >= 4 && strings.Contains(msg, v) && !isKeyName(v) && !strings.Contains(safeWords, v) {
				t.Fatalf("Parse(%q) error %q quotes the input value %q", raw, msg, v)
			}
		}
	})
}

// safeWords are the words the package's own messages use; a value made only of them is not a leak.
const safeWords = "malformed secret: invalid JSON at byte not a JSON object is not a string is empty entry is not host:port has no valid port missing key"

func isKeyName(s string) bool {
	for _, k := range []string{KeyBootstrapServer, KeySASLUsername, KeySASLPassword} {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

// stringValues returns the string values (not keys) of a JSON object, when raw is one.
func stringValues(raw []byte) []string {
	var obj map[string]any
	if json.Unmarshal(raw, &obj) != nil {
		// Not valid JSON: any quoted run could be meant as a value.
		var out []string
		parts := strings.Split(string(raw), `"`)
		for i := 1; i < len(parts); i += 2 {
			out = append(out, parts[i])
		}
		return out
	}
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case string:
			out = append(out, v)
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(obj)
	return out
}
