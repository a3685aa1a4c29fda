// Command health is the scheduled health-check Lambda: it checks the Kafka credentials, brokers and topics
// (and the reader, when configured) and returns a JSON verdict while emitting CloudWatch metrics.
package main

import (
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mwaa-kafka/pipeline/internal/health"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "health:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := health.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	lambda.Start(health.Handler(health.NewChecker(cfg, secrets.FromSecretsManager), os.Stdout, log))
	return nil
}
