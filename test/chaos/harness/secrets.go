package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
)

// AWSEnv is the environment a reader needs to read secrets from the stack's emulator at endpoint (default:
// the emulator itself).
func (s *Stack) AWSEnv(endpoint string) []string {
	if endpoint == "" {
		endpoint = s.Get("AWS_ENDPOINT_URL_SECRETSMANAGER")
	}
	return []string{
		"AWS_ENDPOINT_URL_SECRETSMANAGER=" + endpoint,
		"AWS_REGION=" + s.Get("AWS_REGION"),
		"AWS_ACCESS_KEY_ID=" + s.Get("AWS_ACCESS_KEY_ID"),
		"AWS_SECRET_ACCESS_KEY=" + s.Get("AWS_SECRET_ACCESS_KEY"),
		// No shared config or credentials files of the machine.
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// PutKafkaSecret creates or updates secret name in the stack's emulator with Kafka credentials in the
// MWAA_Secrets layout.
func (s *Stack) PutKafkaSecret(ctx context.Context, name, bootstrap, username, password string) error {
	value, err := json.Marshal(map[string]string{
		"KAFKA_BOOTSTRAP_SERVER": bootstrap, "KAFKA_SASL_USERNAME": username, "KAFKA_SASL_PASSWORD": password,
	})
	if err != nil {
		return err
	}
	sm := secretsmanager.New(secretsmanager.Options{
		Region:       s.Get("AWS_REGION"),
		BaseEndpoint: aws.String(s.Get("AWS_ENDPOINT_URL_SECRETSMANAGER")),
		Credentials:  credentials.NewStaticCredentialsProvider(s.Get("AWS_ACCESS_KEY_ID"), s.Get("AWS_SECRET_ACCESS_KEY"), ""),
	})
	_, err = sm.CreateSecret(ctx, &secretsmanager.CreateSecretInput{Name: aws.String(name), SecretString: aws.String(string(value))})
	var exists *smtypes.ResourceExistsException
	if errors.As(err, &exists) {
		_, err = sm.PutSecretValue(ctx, &secretsmanager.PutSecretValueInput{SecretId: aws.String(name), SecretString: aws.String(string(value))})
	}
	if err != nil {
		return fmt.Errorf("putting secret %s: %w", name, err)
	}
	return nil
}

// SetTestUserPassword rewrites the broker configuration so that the stack's second SASL user (tester) has
// password, and returns a function that restores the previous configuration. The broker must be restarted
// for either to take effect; the pipeline user is left alone.
func (s *Stack) SetTestUserPassword(password string) (restore func() error, err error) {
	if err := s.guard(); err != nil {
		return nil, err
	}
	path := s.Get("KAFKA_CONFIG")
	old, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading broker config: %w", err)
	}
	user, current := s.Get("KAFKA_SASL_TEST_USERNAME"), s.Get("KAFKA_SASL_TEST_PASSWORD")
	from := fmt.Sprintf(`user_%s="%s"`, user, current)
	if !strings.Contains(string(old), from) {
		return nil, fmt.Errorf("broker config %s holds no entry for user %s with the stack's password", path, user)
	}
	updated := strings.Replace(string(old), from, fmt.Sprintf(`user_%s="%s"`, user, password), 1)
	if err := os.WriteFile(path, []byte(updated), 0o600); err != nil {
		return nil, fmt.Errorf("writing broker config: %w", err)
	}
	return func() error { return os.WriteFile(path, old, 0o600) }, nil
}
