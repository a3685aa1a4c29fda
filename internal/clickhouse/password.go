package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
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
