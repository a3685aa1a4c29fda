#!/usr/bin/env bash
# Runs every test of the project: Go unit and integration tests (against the real local stack), the DAG's
# tests under real Airflow, the CDK synth and its assertions, and the benchmark harness in quick mode.
# It installs what it needs, starts the stack if it is not running (and stops it again at the end), and fails
# on the first broken phase, saying which.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line (see Makefile)

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

phase "static checks: go vet, golangci-lint, govulncheck"
dev/lint.sh

phase "build"
mkdir -p bin
go build -o bin/ ./tasks/... ./functions/...

# The fault-injection and abuse suites bring up a stack of their own and kill or pause its broker; they run
# on their own below, not beside the packages that share the main stack.
phase "go test (unit + integration, real Kafka / moto / ClickHouse)"
go test -count=1 -timeout 25m $(go list ./... | grep -v '/test/')

phase "go test -race (readers and pipeline)"
go test -count=1 -race -short -timeout 10m ./internal/tcpin/... ./internal/event/...

phase "DAG tests (real Airflow)"
dev/airflow.sh test

phase "cdk synth (cdk-nag on every synth)"
dev/cdk.sh synth

phase "fault injection and abuse, quick mode (a second stack of their own)"
dev/chaos.sh --quick

# Small N, so the harness cannot rot: it fails on a contender that loses, duplicates or alters events, or a
# reader whose memory grows while the broker is stalled; never on speed (the figures come from make bench).
phase "benchmark harness, quick mode (its own broker; peers from Debian packages)"
go run ./bench --quick --out .cache/bench/quick
