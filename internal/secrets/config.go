package secrets

import (
	"flag"
	"fmt"
)

// Source says where the Kafka credentials come from.
type Source string

// The credential sources. The zero value means SourceSecretsManager.
const (
	// SourceSecretsManager reads the Secrets Manager secret (FromSecretsManager), as in production.
	SourceSecretsManager Source = "secretsmanager"
	// SourceEnv reads KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD (FromEnv).
	SourceEnv Source = "env"
)

// ParseSource reads "secretsmanager" or "env"; the empty string is SourceSecretsManager.
func ParseSource(s string) (Source, error) {
	switch v := Source(s); v {
	case "":
		return SourceSecretsManager, nil
	case SourceSecretsManager, SourceEnv:
		return v, nil
	}
	return "", fmt.Errorf("credentials source %q (want secretsmanager or env)", s)
}

// String returns the source's name as the --credentials flag takes it.
func (s Source) String() string {
	if s == "" {
		return string(SourceSecretsManager)
	}
	return string(s)
}

// Set parses v into s, so a Source is a flag.Value.
func (s *Source) Set(v string) error {
	p, err := ParseSource(v)
	if err != nil {
		return err
	}
	*s = p
	return nil
}

var _ flag.Value = (*Source)(nil)

// Config says where a command reads the Kafka credentials from.
type Config struct {
	// Source is SourceSecretsManager (default) or SourceEnv.
	Source Source
	// Options name the secret, its region and endpoint (with SourceSecretsManager).
	Options
}

// RegisterFlags registers --credentials, --secret-name, --region and --secrets-endpoint.
func (c *Config) RegisterFlags(fs *flag.FlagSet) {
	c.Source = SourceSecretsManager
	fs.Var(&c.Source, "credentials", "secretsmanager (the secret --secret-name) or env (KAFKA_BOOTSTRAP_SERVER, KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD)")
	fs.StringVar(&c.SecretName, "secret-name", DefaultSecretName, "Secrets Manager secret holding the Kafka credentials")
	fs.StringVar(&c.Region, "region", DefaultRegion, "AWS region of the secret")
	fs.StringVar(&c.Endpoint, "secrets-endpoint", "", "Secrets Manager endpoint override (default: "+EndpointEnv+", else AWS)")
}
