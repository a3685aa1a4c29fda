package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// SecretGetter is the part of the Secrets Manager client PasswordFromSecret needs.
type SecretGetter interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

// PasswordKeys are the keys PasswordFromSecret looks for, in order, when the secret is a JSON object.
var PasswordKeys = []string{"CLICKHOUSE_PASSWORD", "password"}

// PasswordFromSecret reads the ClickHouse password from a Secrets Manager secret. The secret is either the
// password itself (a plain string) or a JSON object holding it under one of PasswordKeys. Errors name the
// secret and the keys, never the value.
func PasswordFromSecret(ctx context.Context, sm SecretGetter, name string) (string, error) {
	out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(name)})
	if err != nil {
		return "", fmt.Errorf("reading secret %s: %w", name, err)
	}
	if out.SecretString == nil || *out.SecretString == "" {
		return "", fmt.Errorf("secret %s holds no string: %w", name, ErrEmpty)
	}
	s := *out.SecretString
	if !strings.HasPrefix(strings.TrimSpace(s), "{") {
		return s, nil
	}
	var obj map[string]any
	if err := json.Unmarshal([]byte(s), &obj); err != nil {
		return "", fmt.Errorf("secret %s starts like JSON but does not parse as an object", name)
	}
	for _, k := range PasswordKeys {
		if v, ok := obj[k].(string); ok && v != "" {
			return v, nil
		}
	}
	return "", fmt.Errorf("secret %s has none of the keys %s: %w", name, strings.Join(PasswordKeys, ", "), ErrEmpty)
}

// EnvSecretsManagerEndpoint overrides the Secrets Manager endpoint, e.g. a local emulator. The SDK's own
// service variable is spelled AWS_ENDPOINT_URL_SECRETS_MANAGER (from the service id "Secrets Manager"),
// which it also honours; this one is the spelling the project's stack and tools use.
const EnvSecretsManagerEndpoint = "AWS_ENDPOINT_URL_SECRETSMANAGER"

// NewSecretsManagerClient builds a Secrets Manager client from the SDK's default configuration chain
// (region, credentials), pointed at AWS_ENDPOINT_URL_SECRETSMANAGER when that is set.
func NewSecretsManagerClient(ctx context.Context) (*secretsmanager.Client, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("loading AWS config: %w", err)
	}
	endpoint := os.Getenv(EnvSecretsManagerEndpoint)
	return secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	}), nil
}
