# The Makefile is the index of what a developer can do: `make help` lists it.
# Everything downloaded or generated goes under .cache/ (ignored by git); every target installs what it needs.
SHELL := /usr/bin/env bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export CGO_ENABLED := 1
# go.mod names the toolchain (a patch release with the standard library's security fixes); "auto" lets the
# go command fetch it through the module proxy when the installed Go is older.
export GOTOOLCHAIN := auto
GO ?= go
BIN := bin

.PHONY: help
help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "} {printf "  %-14s %s\n", $$1, $$2}'

.PHONY: demo
demo: ## Run the pipeline on the local stack: log source -> reader -> Kafka -> ClickHouse, and show the rows.
	dev/demo.sh

.PHONY: test
test: ## Every check, fastest first: large files + shellcheck, build + vet, Go unit and integration tests (real Kafka/moto/ClickHouse), golangci-lint + govulncheck, DAG under real Airflow, CDK synth, the Lambda artifacts under the runtime interface emulator, cfn-lint on every variant, a create/update/delete rehearsal in the AWS emulator's CloudFormation, quick fault-injection/abuse suites, quick benchmark harness. Starts and stops a local stack if none runs.
	dev/test.sh

.PHONY: prereqs
prereqs: ## Check the machine's prerequisites (Go, Java, Python, C compiler, Maven, npm, ...); as root, install the missing ones from Debian first.
	dev/prereqs.sh test

.PHONY: build
build: ## Build the reader, the log source and the Lambdas into bin/.
	mkdir -p $(BIN)
	$(GO) build -o $(BIN)/ ./tasks/... ./functions/...

.PHONY: stack-up
stack-up: ## Start (or reuse) the local stack: Kafka (KRaft, PLAINTEXT + SASL_SSL), Secrets Manager emulator, ClickHouse.
	dev/stack.sh up

.PHONY: stack-down
stack-down: ## Stop the local stack and leave no process behind.
	dev/stack.sh down

.PHONY: stack-status
stack-status: ## Show what of the local stack is running (the target succeeds even when it is down).
	@dev/stack.sh status || echo "(not all of the stack is running: make stack-up starts it)"

.PHONY: synth
synth: ## Synthesize the CDK app offline (installs the pinned CDK CLI; cdk-nag runs on every synth).
	dev/cdk.sh synth

.PHONY: image
image: ## Build the reader's image without a registry (podman, a base of Debian packages made by mmdebstrap; needs root) and run it as the synthesized task definition says against the local stack: health check, events delivered, SIGTERM drain.
	dev/image.sh

.PHONY: rehearse
rehearse: ## Create, update and delete the synthesized default, scheduled and production listen stacks in the AWS emulator's CloudFormation (moto server of its own).
	dev/rehearse.sh

.PHONY: lint
lint: ## go vet, no tracked file over 1 MiB unless dev/large-files.txt says why, shellcheck on every shell script, golangci-lint (pinned) and govulncheck (database built locally from golang.org/x/vulndb).
	dev/lint.sh

.PHONY: chaos
chaos: ## The full fault-injection and abuse suites, on a second stack of their own (slow: tens of minutes).
	dev/chaos.sh

.PHONY: chaos-cluster
chaos-cluster: ## The three-broker scenarios (test/cluster: a broker stops, its partitions lose their leader) on a three-broker stack of their own (about 6 min).
	CGO_ENABLED=1 $(GO) test -count=1 -v -timeout 30m ./test/cluster/

.PHONY: bench
bench: ## Side-by-side benchmark vs kcat, rsyslog, syslog-ng, the OpenTelemetry Collector on its own broker (about 10 min); writes bench/results/.
	$(GO) run ./bench --readme

.PHONY: bench-quick
bench-quick: ## The benchmark harness in quick mode (small N; fails only on correctness), as make test runs it.
	$(GO) run ./bench --quick --out .cache/bench/quick

.PHONY: dags-test
dags-test: ## The DAG's tests under real Airflow (needs the stack: make stack-up).
	dev/airflow.sh test

.PHONY: unit
unit: ## Go unit tests only (no stack needed).
	$(GO) test -short -skip Integration ./...

.PHONY: vet
vet: ## go vet.
	$(GO) vet ./...

.PHONY: fmt
fmt: ## gofmt the tree.
	gofmt -w $$(git ls-files '*.go')

.PHONY: clean
clean: ## Remove build output (keeps the download cache).
	rm -rf $(BIN) cdk.out
