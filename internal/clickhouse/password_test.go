package clickhouse

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

type fakeSecrets map[string]*string

func (f fakeSecrets) GetSecretValue(_ context.Context, in *secretsmanager.GetSecretValueInput, _ ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error) {
	v, ok := f[*in.SecretId]
	if !ok {
		return nil, errors.New("ResourceNotFoundException")
	}
	return &secretsmanager.GetSecretValueOutput{SecretString: v}, nil
}

func TestPasswordFromSecret(t *testing.T) {
	sm := fakeSecrets{
		"plain":    aws.String("pa55word"),
		"json":     aws.String(`{"CLICKHOUSE_PASSWORD":"from-json","password":"second"}`),
		"lower":    aws.String(` {"password":"lower-key"}`),
		"no-key":   aws.String(`{"user":"hidden-value"}`),
		"bad-json": aws.String(`{"password":`),
		"binary":   nil,
	}
	tests := []struct {
		name, want string
		wantErr    bool
	}{
		{"plain", "pa55word", false},
		{"json", "from-json", false},
		{"lower", "lower-key", false},
		{"no-key", "", true},
		{"bad-json", "", true},
		{"binary", "", true},
		{"missing", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := PasswordFromSecret(context.Background(), sm, tt.name)
			if got != tt.want || (err != nil) != tt.wantErr {
				t.Errorf("PasswordFromSecret(%s) = %q, %v; want %q, error %v", tt.name, got, err, tt.want, tt.wantErr)
			}
			if err != nil && (strings.Contains(err.Error(), "hidden-value") || strings.Contains(err.Error(), "password\":")) {
				t.Errorf("error %q carries the secret's content", err)
			}
		})
	}
}

func TestBootstrapConfigFromEnv(t *testing.T) {
	base := map[string]string{EnvURL: "https://ch:8443", EnvBrokers: "b:9092"}
	tests := []struct {
		name    string
		env     map[string]string
		check   func(BootstrapConfig) bool
		wantErr error
	}{
		{"defaults", nil, func(c BootstrapConfig) bool {
			return c.User == "default" && c.Schema.Database == DefaultDatabase && c.Schema.Topic == DefaultTopic &&
				c.Schema.ConsumerGroup() == DefaultGroup && c.Schema.NumConsumers == 1 && c.PasswordSecret == ""
		}, nil},
		{"another database, its own group", map[string]string{EnvDatabase: "d"}, func(c BootstrapConfig) bool {
			return c.Schema.ConsumerGroup() == "logs_consumer_d"
		}, nil},
		{"overrides", map[string]string{EnvUser: "u", EnvDatabase: "d", EnvTopic: "t", EnvGroup: "g", EnvNumConsumers: "3", EnvPasswordSecret: "s"},
			func(c BootstrapConfig) bool {
				return c.User == "u" && c.Schema.Database == "d" && c.Schema.Topic == "t" && c.Schema.Group == "g" &&
					c.Schema.NumConsumers == 3 && c.PasswordSecret == "s"
			}, nil},
		{"no url", map[string]string{EnvURL: ""}, nil, ErrEmpty},
		// Without KAFKA_BROKERS the brokers come from the Kafka secret at run time.
		{"no brokers", map[string]string{EnvBrokers: ""}, func(c BootstrapConfig) bool {
			return c.Schema.Brokers == "" && c.KafkaSecret == "MWAA_Secrets"
		}, nil},
		{"kafka secret, CA and cluster", map[string]string{EnvKafkaSecret: "k", EnvCALocation: "/etc/ca.pem", EnvCluster: "c1"}, func(c BootstrapConfig) bool {
			return c.KafkaSecret == "k" && c.Schema.Auth.CALocation == "/etc/ca.pem" && c.Schema.Cluster == "c1"
		}, nil},
		{"both CA forms", map[string]string{EnvCALocation: "/etc/ca.pem", EnvCAPEM: "-----BEGIN CERTIFICATE-----"}, nil, ErrSecretValue},
		{"newline in cluster", map[string]string{EnvCluster: "a\nb"}, nil, ErrControlChar},
		{"bad consumers", map[string]string{EnvNumConsumers: "100"}, nil, ErrOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			for k, v := range base {
				env[k] = v
			}
			for k, v := range tt.env {
				env[k] = v
			}
			c, err := BootstrapConfigFromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("BootstrapConfigFromEnv() error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || !tt.check(c) {
				t.Errorf("BootstrapConfigFromEnv() = %+v, %v", c, err)
			}
		})
	}
}

func TestNewClientRejects(t *testing.T) {
	for _, u := range []string{"", "ftp://h", "http://", "http://user:pw@h:8123", "://x"} {
		if _, err := NewClient(u); err == nil {
			t.Errorf("NewClient(%q) = nil error, want one", u)
		} else if strings.Contains(err.Error(), "pw") {
			t.Errorf("NewClient(%q) error %q carries the password", u, err)
		}
	}
}
