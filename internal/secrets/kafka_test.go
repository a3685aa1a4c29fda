package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

const testPassword = "s3cr3t-Pa55word-xyz"

func TestParse(t *testing.T) {
	valid := Kafka{BootstrapServers: "localhost:19093", Username: "pipeline", Password: testPassword}
	tests := []struct {
		name    string
		raw     string
		want    Kafka
		wantErr error
		wantKey string // the key the error must name
	}{
		{
			name: "valid",
			raw:  `{"KAFKA_BOOTSTRAP_SERVER":"localhost:19093","KAFKA_SASL_USERNAME":"pipeline","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`,
			want: valid,
		},
		{
			name: "extra keys ignored, whitespace trimmed except in the password",
			raw:  `{"OTHER":1,"KAFKA_BOOTSTRAP_SERVER":" a:1, SASL_SSL://b.example:9092 ","KAFKA_SASL_USERNAME":" u ","KAFKA_SASL_PASSWORD":" p "}`,
			want: Kafka{BootstrapServers: "a:1, SASL_SSL://b.example:9092", Username: "u", Password: " p "},
		},
		{
			name: "ipv6 bootstrap",
			raw:  `{"KAFKA_BOOTSTRAP_SERVER":"[::1]:9092","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"p"}`,
			want: Kafka{BootstrapServers: "[::1]:9092", Username: "u", Password: "p"},
		},
		{name: "missing bootstrap", raw: `{"KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`, wantErr: ErrMissingKey, wantKey: KeyBootstrapServer},
		{name: "missing username", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`, wantErr: ErrMissingKey, wantKey: KeySASLUsername},
		{name: "missing password", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u"}`, wantErr: ErrMissingKey, wantKey: KeySASLPassword},
		{name: "password not a string", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":12345678}`, wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "password null", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":null}`, wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "password object", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":{"v":"` + testPassword + `"}}`, wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "password empty", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":""}`, wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "password blank", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"  "}`, wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "username empty", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1","KAFKA_SASL_USERNAME":"","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`, wantErr: ErrMalformed, wantKey: KeySASLUsername},
		{name: "bootstrap empty", raw: `{"KAFKA_BOOTSTRAP_SERVER":" ","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`, wantErr: ErrMalformed, wantKey: KeyBootstrapServer},
		{name: "bootstrap without port", raw: `{"KAFKA_BOOTSTRAP_SERVER":"localhost","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"p"}`, wantErr: ErrMalformed, wantKey: KeyBootstrapServer},
		{name: "bootstrap bad port", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1,h:99999","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"p"}`, wantErr: ErrMalformed, wantKey: KeyBootstrapServer},
		{name: "bootstrap empty entry", raw: `{"KAFKA_BOOTSTRAP_SERVER":"h:1,","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"p"}`, wantErr: ErrMalformed, wantKey: KeyBootstrapServer},
		{name: "truncated JSON holding the password", raw: `{"KAFKA_SASL_PASSWORD":"` + testPassword, wantErr: ErrMalformed},
		{name: "invalid character inside the password's neighbourhood", raw: `{"KAFKA_SASL_PASSWORD":` + testPassword + `}`, wantErr: ErrMalformed},
		{name: "array", raw: `["` + testPassword + `"]`, wantErr: ErrMalformed},
		{name: "string", raw: `"` + testPassword + `"`, wantErr: ErrMalformed},
		{name: "null", raw: `null`, wantErr: ErrMalformed},
		{name: "empty", raw: ``, wantErr: ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse([]byte(tt.raw))
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Parse(%q) error = %v, want nil", tt.raw, err)
				}
				if got != tt.want {
					t.Fatalf("Parse(%q) = %#v, want %#v", tt.raw, got, tt.want)
				}
				if got.Password != tt.want.Password {
					t.Fatalf("Parse(%q) password differs", tt.raw)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Parse(%q) error = %v, want %v", tt.raw, err, tt.wantErr)
			}
			if got != (Kafka{}) {
				t.Fatalf("Parse(%q) returned %#v with an error, want the zero Kafka", tt.raw, got)
			}
			if tt.wantKey != "" && !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("Parse(%q) error = %q, want it to name %s", tt.raw, err, tt.wantKey)
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "12345678") {
				t.Fatalf("Parse error %q contains the password", err)
			}
			if errors.Is(err, ErrMissingKey) {
				var mk *MissingKeyError
				if !errors.As(err, &mk) || mk.Key != tt.wantKey {
					t.Fatalf("Parse(%q) error = %#v, want *MissingKeyError{%s}", tt.raw, err, tt.wantKey)
				}
			}
		})
	}
}

func TestFromEnv(t *testing.T) {
	full := map[string]string{
		KeyBootstrapServer: "localhost:19093",
		KeySASLUsername:    "pipeline",
		KeySASLPassword:    testPassword,
	}
	without := func(key string) map[string]string {
		m := map[string]string{}
		for k, v := range full {
			if k != key {
				m[k] = v
			}
		}
		return m
	}
	with := func(key, value string) map[string]string {
		m := without(key)
		m[key] = value
		return m
	}
	tests := []struct {
		name    string
		env     map[string]string
		wantErr error
		wantKey string
	}{
		{name: "all set", env: full},
		{name: "bootstrap unset", env: without(KeyBootstrapServer), wantErr: ErrMissingKey, wantKey: KeyBootstrapServer},
		{name: "username unset", env: without(KeySASLUsername), wantErr: ErrMissingKey, wantKey: KeySASLUsername},
		{name: "password unset", env: without(KeySASLPassword), wantErr: ErrMissingKey, wantKey: KeySASLPassword},
		{name: "password empty", env: with(KeySASLPassword, ""), wantErr: ErrMalformed, wantKey: KeySASLPassword},
		{name: "bootstrap not host:port", env: with(KeyBootstrapServer, "nohost"), wantErr: ErrMalformed, wantKey: KeyBootstrapServer},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lookup := func(k string) (string, bool) { v, ok := tt.env[k]; return v, ok }
			got, err := FromEnv(lookup)
			if tt.wantErr == nil {
				want := Kafka{BootstrapServers: full[KeyBootstrapServer], Username: full[KeySASLUsername], Password: full[KeySASLPassword]}
				if err != nil || got != want {
					t.Fatalf("FromEnv() = %v, %v, want %v, nil", got, err, want)
				}
				return
			}
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantKey) {
				t.Fatalf("FromEnv() error = %v, want %v naming %s", err, tt.wantErr, tt.wantKey)
			}
			if strings.Contains(err.Error(), testPassword) {
				t.Fatalf("FromEnv() error %q contains the password", err)
			}
		})
	}
}

// TestRedaction checks every way a Kafka can be printed or serialised: none shows the password.
func TestRedaction(t *testing.T) {
	k := Kafka{BootstrapServers: "localhost:19093", Username: "pipeline", Password: testPassword}
	var forms []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%10.3v", "%T"} {
		forms = append(forms, fmt.Sprintf(verb, k), fmt.Sprintf(verb, &k), fmt.Sprintf(verb, []Kafka{k}),
			fmt.Sprintf(verb, struct{ K Kafka }{k}), fmt.Sprintf(verb, map[string]Kafka{"k": k}))
	}
	forms = append(forms, k.String(), k.GoString(), fmt.Sprint(k), fmt.Sprintln(&k))
	forms = append(forms, fmt.Errorf("connecting with %v: %w", k, ErrAccessDenied).Error())

	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creds", "kafka", k, "ptr", &k)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creds", "kafka", k)
	forms = append(forms, buf.String())

	js, err := json.Marshal(map[string]any{"k": k, "p": &k})
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	forms = append(forms, string(js))

	for _, f := range forms {
		if strings.Contains(f, testPassword) || strings.Contains(f, fmt.Sprintf("%x", testPassword)) {
			t.Errorf("printed form %q shows the password", f)
		}
	}
	if s := k.String(); !strings.Contains(s, "localhost:19093") || !strings.Contains(s, "pipeline") || !strings.Contains(s, redacted) {
		t.Errorf("String() = %q, want bootstrap, username and %s", s, redacted)
	}
	if !strings.Contains(buf.String(), `"password":"[redacted]"`) {
		t.Errorf("slog JSON = %q, want a redacted password attribute", buf.String())
	}
	if got := (Kafka{}).String(); strings.Contains(got, redacted) {
		t.Errorf("zero Kafka String() = %q, want no [redacted] for an empty password", got)
	}
}

func TestMissingKeyErrorIs(t *testing.T) {
	err := fmt.Errorf("parsing: %w", &MissingKeyError{Key: KeySASLUsername})
	if !errors.Is(err, ErrMissingKey) {
		t.Fatalf("errors.Is(%v, ErrMissingKey) = false, want true", err)
	}
	if errors.Is(err, ErrMalformed) {
		t.Fatalf("errors.Is(%v, ErrMalformed) = true, want false", err)
	}
	if got, want := err.Error(), "parsing: missing key KAFKA_SASL_USERNAME"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func BenchmarkParse(b *testing.B) {
	raw := []byte(`{"KAFKA_BOOTSTRAP_SERVER":"localhost:19093","KAFKA_SASL_USERNAME":"pipeline","KAFKA_SASL_PASSWORD":"` + testPassword + `"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(raw); err != nil {
			b.Fatal(err)
		}
	}
}
