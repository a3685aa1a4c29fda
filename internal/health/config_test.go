package health

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string // the variable the error must name; empty means valid
	}{
		{
			name: "defaults",
			env:  map[string]string{},
			want: Config{SecretName: "MWAA_Secrets", Region: "us-east-1", Topic: "logs_4", DLQTopic: "logs_4_dlq",
				SecurityProtocol: "sasl_ssl", Timeout: 10 * time.Second, Namespace: "LogPipeline", ClickHouseUser: "default", ClickHouseDatabase: "KafkaEngine", ClickHouseStaleAfter: 5 * time.Minute, ReaderCheck: "auto",
				ReaderWindow: 10 * time.Minute, Service: "log-pipeline", ReaderService: "log-pipeline"},
		},
		{
			name: "reader through ECS",
			env: map[string]string{"HEALTH_ECS_CLUSTER": "c", "HEALTH_ECS_SERVICE": "s", "HEALTH_READER_WINDOW": "15m",
				"AWS_ENDPOINT_URL_ECS": "http://127.0.0.1:2", "AWS_ENDPOINT_URL_CLOUDWATCH": "http://127.0.0.1:3"},
			want: Config{SecretName: "MWAA_Secrets", Region: "us-east-1", Topic: "logs_4", DLQTopic: "logs_4_dlq",
				SecurityProtocol: "sasl_ssl", Timeout: 10 * time.Second, Namespace: "LogPipeline", ClickHouseUser: "default", ClickHouseDatabase: "KafkaEngine", ClickHouseStaleAfter: 5 * time.Minute, ReaderCheck: "auto",
				ECSCluster: "c", ECSService: "s", ReaderWindow: 15 * time.Minute, Service: "log-pipeline", ReaderService: "log-pipeline", ECSEndpoint: "http://127.0.0.1:2",
				CloudWatchEndpoint: "http://127.0.0.1:3"},
		},
		{
			name: "everything set",
			env: map[string]string{"HEALTH_SECRET_NAME": "s", "AWS_REGION": "eu-west-1", "AWS_ENDPOINT_URL_SECRETSMANAGER": "http://127.0.0.1:1",
				"HEALTH_TOPIC": "t", "HEALTH_DLQ_TOPIC": "-", "HEALTH_SECURITY_PROTOCOL": "PLAINTEXT", "HEALTH_CA_FILE": "/ca.pem",
				"HEALTH_READER_URL": "http://10.0.0.5:9108/healthz", "HEALTH_TIMEOUT": "3s", "HEALTH_METRICS_NAMESPACE": "N",
				"HEALTH_METRICS_SERVICE": "log-pipeline-staging",
				"HEALTH_CLICKHOUSE_URL":  "https://ch.example.com:8443", "HEALTH_CLICKHOUSE_USER": "u", "HEALTH_CLICKHOUSE_PASSWORD_SECRET": "chs",
				"HEALTH_CLICKHOUSE_DATABASE": "db", "HEALTH_CLICKHOUSE_STALE_AFTER": "2m"},
			want: Config{SecretName: "s", Region: "eu-west-1", SecretsEndpoint: "http://127.0.0.1:1", Topic: "t", DLQTopic: "",
				SecurityProtocol: "plaintext", CAFile: "/ca.pem", ReaderURL: "http://10.0.0.5:9108/healthz", Timeout: 3 * time.Second, Namespace: "N",
				ClickHouseURL: "https://ch.example.com:8443", ClickHouseUser: "u", ClickHousePasswordSecret: "chs", ClickHouseDatabase: "db",
				ClickHouseStaleAfter: 2 * time.Minute, ReaderCheck: "auto", ReaderWindow: 10 * time.Minute,
				// The reader's metrics are read under the deployment's Service unless HEALTH_READER_SERVICE says otherwise.
				Service: "log-pipeline-staging", ReaderService: "log-pipeline-staging"},
		},
		{name: "bad timeout", env: map[string]string{"HEALTH_TIMEOUT": "soon"}, wantErr: "HEALTH_TIMEOUT"},
		{name: "negative timeout", env: map[string]string{"HEALTH_TIMEOUT": "-1s"}, wantErr: "HEALTH_TIMEOUT"},
		{name: "bad protocol", env: map[string]string{"HEALTH_SECURITY_PROTOCOL": "kerberos"}, wantErr: "HEALTH_SECURITY_PROTOCOL"},
		{
			name: "ssl, as the reader accepts it",
			env:  map[string]string{"HEALTH_SECURITY_PROTOCOL": "ssl"},
			want: Config{SecretName: "MWAA_Secrets", Region: "us-east-1", Topic: "logs_4", DLQTopic: "logs_4_dlq",
				SecurityProtocol: "ssl", Timeout: 10 * time.Second, Namespace: "LogPipeline", ClickHouseUser: "default", ClickHouseDatabase: "KafkaEngine", ClickHouseStaleAfter: 5 * time.Minute,
				ReaderCheck: "auto", ReaderWindow: 10 * time.Minute, Service: "log-pipeline", ReaderService: "log-pipeline"},
		},
		{name: "reader not a URL", env: map[string]string{"HEALTH_READER_URL": "10.0.0.5:9108"}, wantErr: "HEALTH_READER_URL"},
		{name: "ClickHouse not a URL", env: map[string]string{"HEALTH_CLICKHOUSE_URL": "ch:8443"}, wantErr: "HEALTH_CLICKHOUSE_URL"},
		{name: "bad stale-after", env: map[string]string{"HEALTH_CLICKHOUSE_STALE_AFTER": "later"}, wantErr: "HEALTH_CLICKHOUSE_STALE_AFTER"},
		{name: "negative stale-after", env: map[string]string{"HEALTH_CLICKHOUSE_STALE_AFTER": "-1m"}, wantErr: "HEALTH_CLICKHOUSE_STALE_AFTER"},
		{name: "unknown reader check", env: map[string]string{"HEALTH_READER_CHECK": "ping"}, wantErr: "HEALTH_READER_CHECK"},
		{name: "ecs without cluster", env: map[string]string{"HEALTH_READER_CHECK": "ecs"}, wantErr: "HEALTH_ECS_CLUSTER"},
		{name: "url without URL", env: map[string]string{"HEALTH_READER_CHECK": "url"}, wantErr: "HEALTH_READER_URL"},
		{name: "window too short", env: map[string]string{"HEALTH_ECS_CLUSTER": "c", "HEALTH_READER_WINDOW": "1m"}, wantErr: "HEALTH_READER_WINDOW"},
		{name: "window not a duration", env: map[string]string{"HEALTH_READER_WINDOW": "long"}, wantErr: "HEALTH_READER_WINDOW"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tt.env[k] })
			if tt.wantErr != "" {
				if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("FromEnv(%v) error = %v, want ErrInvalidConfig naming %s", tt.env, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("FromEnv(%v) = %v", tt.env, err)
			}
			if got != tt.want {
				t.Errorf("FromEnv(%v) =\n%+v, want\n%+v", tt.env, got, tt.want)
			}
		})
	}
}

func TestReaderCheckAuto(t *testing.T) {
	for _, tt := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, ReaderCheckOff},
		{map[string]string{"HEALTH_ECS_CLUSTER": "c"}, ReaderCheckECS},
		{map[string]string{"HEALTH_READER_URL": "http://r:9108/healthz"}, ReaderCheckURL},
		{map[string]string{"HEALTH_ECS_CLUSTER": "c", "HEALTH_READER_CHECK": "off"}, ReaderCheckOff},
	} {
		c, err := FromEnv(func(k string) string { return tt.env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := c.readerCheck(); got != tt.want {
			t.Errorf("FromEnv(%v).readerCheck() = %s, want %s", tt.env, got, tt.want)
		}
	}
}
