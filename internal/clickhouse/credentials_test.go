package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

const testPEM = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n"

func TestKafkaAuthValidate(t *testing.T) {
	ok := KafkaAuth{Username: "u", Password: "p'w\\d", Source: "secret s version 1"}
	tests := []struct {
		name   string
		change func(*KafkaAuth)
		want   error
	}{
		{"minimal", func(*KafkaAuth) {}, nil},
		{"inline CA", func(a *KafkaAuth) { a.CAPEM = testPEM }, nil},
		{"CA on the server", func(a *KafkaAuth) { a.CALocation = "/etc/ssl/ca.pem" }, nil},
		{"no username", func(a *KafkaAuth) { a.Username = "" }, ErrEmpty},
		{"no password", func(a *KafkaAuth) { a.Password = "" }, ErrEmpty},
		{"no source", func(a *KafkaAuth) { a.Source = "" }, ErrEmpty},
		{"both CAs", func(a *KafkaAuth) { a.CAPEM, a.CALocation = testPEM, "/x" }, ErrSecretValue},
		{"not a PEM", func(a *KafkaAuth) { a.CAPEM = "hello" }, ErrSecretValue},
		{"plaintext", func(a *KafkaAuth) { a.SecurityProtocol = "PLAINTEXT" }, ErrSecretValue},
		{"newline in the password", func(a *KafkaAuth) { a.Password = "a\nb" }, ErrControlChar},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := ok
			tt.change(&a)
			err := a.Validate()
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
			if err != nil && a.Password != "" && strings.Contains(err.Error(), a.Password) {
				t.Errorf("the error %q carries the password", err)
			}
		})
	}
}

func TestCollectionAssignments(t *testing.T) {
	a := KafkaAuth{Username: "svc", Password: `p'w\d`, CAPEM: testPEM, Source: "s"}
	s := NewSchema("b1:9093,b2:9093")
	s.Auth = a
	// The broker list is the collection's, and no key can be overridden in ENGINE = Kafka(c, key = value).
	got := s.collectionAssignments()
	want := "`kafka.bootstrap_servers` = 'b1:9093,b2:9093' NOT OVERRIDABLE, `kafka.sasl_mechanism` = 'PLAIN' NOT OVERRIDABLE, " +
		"`kafka.sasl_password` = 'p\\'w\\\\d' NOT OVERRIDABLE, `kafka.sasl_username` = 'svc' NOT OVERRIDABLE, " +
		"`kafka.security_protocol` = 'sasl_ssl' NOT OVERRIDABLE, " +
		"`kafka.ssl_ca_pem` = '-----BEGIN CERTIFICATE-----\\nMIIBszCCAVmgAwIBAgIU\\n-----END CERTIFICATE-----\\n' NOT OVERRIDABLE"
	if got != want {
		t.Errorf("collectionAssignments() =\n%s\nwant\n%s", got, want)
	}
	if m := s.CredentialsComment(); !strings.HasSuffix(m, "; brokers: b1:9093,b2:9093") {
		t.Errorf("CredentialsComment() = %q, want the brokers named", m)
	}
	// The comment names source and CA, never the password.
	if m := a.marker(); !strings.HasPrefix(m, "Kafka credentials: s; CA: PEM sha256:") || strings.Contains(m, a.Password) {
		t.Errorf("marker() = %q", m)
	}
	if m := (KafkaAuth{Source: "s"}).marker(); m != "Kafka credentials: s; CA: default trust store" {
		t.Errorf("marker() without a CA = %q", m)
	}
}

func TestRedactErr(t *testing.T) {
	a := KafkaAuth{Password: `se'cret`}
	se := &ServerError{Status: 400, Code: 62, Message: `Syntax error near 'se\'cret' and se'cret`}
	err := a.redactErr(errors.Join(errors.New("creating named collection"), se))
	if strings.Contains(err.Error(), "cret") {
		t.Errorf("redacted error = %q, still holds the password", err)
	}
	if !IsCode(err, 62) {
		t.Errorf("redacted error lost its code: %v", err)
	}
	var got *ServerError
	if !errors.As(err, &got) || strings.Contains(got.Message, "cret") {
		t.Errorf("redacted ServerError = %+v", got)
	}
	plain := errors.New("no secret here")
	if a.redactErr(plain) != plain {
		t.Error("an error without the password must come back unchanged")
	}
}

type versionedSecret struct {
	value, version string
}

func (f versionedSecret) GetSecretValue(_ context.Context, _ *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	return &secretsmanager.GetSecretValueOutput{SecretString: aws.String(f.value), VersionId: aws.String(f.version)}, nil
}

func TestKafkaAuthFromSecret(t *testing.T) {
	sm := versionedSecret{`{"KAFKA_BOOTSTRAP_SERVER":"b1:9092,b2:9092","KAFKA_SASL_USERNAME":"u","KAFKA_SASL_PASSWORD":"hunter2hunter2"}`, "v-7"}
	a, brokers, err := KafkaAuthFromSecret(context.Background(), sm, "MWAA_Secrets")
	if err != nil || a.Username != "u" || a.Password != "hunter2hunter2" || brokers != "b1:9092,b2:9092" || a.Source != "secret MWAA_Secrets version v-7" {
		t.Errorf("KafkaAuthFromSecret() = %+v, %q, %v", a, brokers, err)
	}
	_, _, err = KafkaAuthFromSecret(context.Background(), versionedSecret{`{"KAFKA_SASL_PASSWORD":"hunter2hunter2"}`, "v"}, "MWAA_Secrets")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("a secret without the other keys: err = %v, want an error naming keys only", err)
	}
}

func TestKafkaStatusCheck(t *testing.T) {
	now := time.Date(2026, 11, 29, 5, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	healthy := KafkaConsumer{ID: "c1", LastPoll: ago(2 * time.Second), LastCommit: ago(10 * time.Second),
		Assignments: []Assignment{{Topic: "logs_4", Partition: 0, Offset: 100}, {Topic: "logs_4", Partition: 1, Offset: 50}}}
	outage := func() KafkaConsumer { // an idle table after a broker outage: its exceptions, no commit since
		k := healthy
		k.LastException, k.LastExceptionTime, k.LastCommit = "1/1 brokers are down", ago(time.Minute), ago(2*time.Minute)
		return k
	}
	tests := []struct {
		name      string
		cs        []KafkaConsumer
		ends      map[int32]int64
		committed map[int32]int64
		want      string // "" for healthy, else a fragment of the error
	}{
		{"healthy", []KafkaConsumer{healthy}, nil, nil, ""},
		{"no consumer", nil, nil, nil, "no consumer"},
		{"just created, not polled yet", []KafkaConsumer{{ID: "c1"}}, nil, nil, ""},
		{"recent exception, no commit since", []KafkaConsumer{func() KafkaConsumer {
			k := healthy
			k.LastException, k.LastExceptionTime = "SASL authentication error", ago(time.Second)
			k.RecentExceptions = []string{"1/1 brokers are down", "SASL authentication error"}
			return k
		}()}, nil, nil, "SASL authentication error"},
		{"old exception, committed since", []KafkaConsumer{func() KafkaConsumer {
			k := healthy
			k.LastException, k.LastExceptionTime = "broker down", ago(time.Hour)
			return k
		}()}, nil, nil, ""},
		{"recent exception, committed after it", []KafkaConsumer{func() KafkaConsumer {
			k := healthy
			k.LastException, k.LastExceptionTime = "transient", ago(30*time.Second)
			return k
		}()}, nil, nil, ""},
		{"stale poll, lag unknown", []KafkaConsumer{func() KafkaConsumer { k := healthy; k.LastPoll = ago(10 * time.Minute); return k }()}, nil, nil, "lag unknown"},
		{"stale poll, topic grew", []KafkaConsumer{func() KafkaConsumer { k := healthy; k.LastPoll = ago(10 * time.Minute); return k }()},
			map[int32]int64{0: 130, 1: 50}, nil, "30 messages unread"},
		{"stale poll, nothing to read", []KafkaConsumer{func() KafkaConsumer { k := healthy; k.LastPoll = ago(10 * time.Minute); return k }()},
			map[int32]int64{0: 100, 1: 50}, nil, ""},
		{"after an outage, committed up to the end", []KafkaConsumer{outage()}, map[int32]int64{0: 100, 1: 50}, map[int32]int64{0: 100, 1: 50}, ""},
		{"after an outage, a partition never written", []KafkaConsumer{outage()}, map[int32]int64{0: 100, 1: 0}, map[int32]int64{0: 100}, ""},
		{"after an outage, messages waiting", []KafkaConsumer{outage()}, map[int32]int64{0: 130, 1: 50}, map[int32]int64{0: 100, 1: 50}, "brokers are down"},
		{"after an outage, committed unknown", []KafkaConsumer{outage()}, map[int32]int64{0: 100, 1: 50}, nil, "brokers are down"},
		{"an empty topic, never committed", []KafkaConsumer{outage()}, map[int32]int64{0: 0, 1: 0}, map[int32]int64{}, "brokers are down"},
		{"caught up but no consumer", nil, map[int32]int64{0: 100}, map[int32]int64{0: 100}, "no consumer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := KafkaTableStatus{Database: "db", Consumers: tt.cs}.Check(now, 5*time.Minute, Progress{End: tt.ends, Committed: tt.committed})
			if tt.want == "" {
				if err != nil {
					t.Errorf("Check() = %v, want healthy", err)
				}
				return
			}
			if !errors.Is(err, ErrKafkaTableStuck) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Check() = %v, want ErrKafkaTableStuck mentioning %q", err, tt.want)
			}
		})
	}
}

func TestCanonicalPEM(t *testing.T) {
	const second = "-----BEGIN CERTIFICATE-----\nMIIBtDCCAVqgAwIBAgIV\n-----END CERTIFICATE-----\n"
	tests := []struct {
		name, in, want string
	}{
		{"as a file holds it", testPEM, testPEM},
		{"no final newline", strings.TrimSuffix(testPEM, "\n"), testPEM},
		{"CRLF line ends", strings.ReplaceAll(testPEM, "\n", "\r\n"), testPEM},
		{"blank lines and text around it", "subject=CN=ca\n\n" + testPEM + "\n\n", testPEM},
		{"a bundle of two, the second without its final newline", testPEM + strings.TrimSuffix(second, "\n"), testPEM + second},
		{"a key is not a CA", "-----BEGIN PRIVATE KEY-----\nMIIBszCCAVmgAwIBAgIU\n-----END PRIVATE KEY-----\n", ""},
		{"not a PEM", "hello", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := canonicalPEM(tt.in); got != tt.want {
				t.Errorf("canonicalPEM(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
	// One CA, one marker and one collection value, whatever its form.
	a, b := KafkaAuth{CAPEM: testPEM, Source: "s"}, KafkaAuth{CAPEM: strings.TrimSuffix(testPEM, "\n"), Source: "s"}
	if a.marker() != b.marker() || a.collectionValues()["kafka.ssl_ca_pem"] != b.collectionValues()["kafka.ssl_ca_pem"] {
		t.Errorf("marker %q and %q, or their collection values, differ for one CA", a.marker(), b.marker())
	}
}

func TestDropLegacyBrokerList(t *testing.T) {
	tests := []struct {
		name, in, want string
		legacy         bool
	}{
		{"first setting", "ENGINE = Kafka(c) SETTINGS kafka_broker_list = 'b:9093', kafka_topic_list = 't' COMMENT 'x'",
			"ENGINE = Kafka(c) SETTINGS kafka_topic_list = 't' COMMENT 'x'", true},
		{"last setting, quoted quote", `ENGINE = Kafka(c) SETTINGS kafka_topic_list = 't', kafka_broker_list = 'b\'s:9093'`,
			"ENGINE = Kafka(c) SETTINGS kafka_topic_list = 't'", true},
		{"none", "ENGINE = Kafka(c) SETTINGS kafka_topic_list = 't'", "ENGINE = Kafka(c) SETTINGS kafka_topic_list = 't'", false},
	}
	for _, tt := range tests {
		got, legacy := dropLegacyBrokerList(tt.in)
		if got != tt.want || legacy != tt.legacy {
			t.Errorf("%s: dropLegacyBrokerList(%q) = %q, %v; want %q, %v", tt.name, tt.in, got, legacy, tt.want, tt.legacy)
		}
	}
}
