// Command bootstrap is the Lambda that applies the ClickHouse DDL over ClickHouse's HTTP(S) interface and
// reports what it created, kept, or found different. Configuration comes from the environment (see
// clickhouse.BootstrapConfigFromEnv); the ClickHouse password from the Secrets Manager secret named in
// CLICKHOUSE_PASSWORD_SECRET (AWS_ENDPOINT_URL_SECRETSMANAGER points the client at an emulator).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mwaa-kafka/pipeline/internal/clickhouse"
)

func main() {
	h, err := handler(context.Background())
	if err != nil {
		// Deployed without its configuration: every invocation says what is missing, instead of the
		// runtime reporting a bare init failure.
		fmt.Fprintln(os.Stderr, "bootstrap: not configured:", err)
		lambda.Start(func(context.Context) error { return fmt.Errorf("bootstrap not configured: %w", err) })
		return
	}
	lambda.Start(h.Handle)
}

func handler(ctx context.Context) (clickhouse.BootstrapHandler, error) {
	cfg, err := clickhouse.BootstrapConfigFromEnv(os.LookupEnv)
	if err != nil {
		return clickhouse.BootstrapHandler{}, err
	}
	sm, err := clickhouse.NewSecretsManagerClient(ctx)
	if err != nil {
		return clickhouse.BootstrapHandler{}, err
	}
	// A not-ok outcome fails the invocation with the summary; the whole report goes to the function's log.
	return clickhouse.BootstrapHandler{Config: cfg, Secrets: sm, Report: os.Stdout}, nil
}
