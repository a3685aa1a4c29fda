#!/usr/bin/env bash
# Runs every test of the project: Go unit and integration tests (against the real local stack), the linters,
# the DAG's tests under real Airflow, the CDK synth and its assertions, a deploy rehearsal in the AWS
# emulator, the fault-injection and abuse suites and the benchmark harness in quick mode. It checks the
# machine's prerequisites first, installs what it needs, starts the stack if it is not running (and stops it
# again at the end), and fails on the first broken phase, saying which. The fastest checks come first, so a
# broken build or unit test shows within a minute or two; a stack it has to start comes up in the background
# meanwhile.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line (see Makefile)

t0=$(date +%s)
phase_name="" phase_t0=$t0 timings=()
phase_counts=""
end_phase() { # [note]
  [[ -n $phase_name ]] && timings+=("$(printf '%5ss  %s%s%s' "$(($(date +%s) - phase_t0))" "$phase_name" "$phase_counts" "${1:-}")")
  phase_name="" phase_counts=""
}
phase() {
  end_phase
  phase_name=$*
  phase_t0=$(date +%s)
  printf '\n==> %s\n' "$*"
}

dev/prereqs.sh test

started_stack=0 stack_pid="" stack_log=.cache/test-stack-up.log
prebuild_pid="" prebuild_log=.cache/test-prebuild.log prebuild_mark=.cache/test-prebuild.tools-ok
cleanup() {
  rc=$?
  if ((rc != 0)); then end_phase "  (failed)"; fi
  end_phase
  if [[ -n $prebuild_pid ]]; then kill -- "-$prebuild_pid" 2>/dev/null || kill "$prebuild_pid" 2>/dev/null || true; fi
  if [[ -n $stack_pid ]]; then wait "$stack_pid" 2>/dev/null || true; fi
  if [ "$started_stack" = 1 ]; then
    printf '\n==> stopping the local stack\n'
    dev/stack.sh down || true
  fi
  if ((${#timings[@]})); then
    printf '\nphases:\n'
    printf '  %s\n' "${timings[@]}"
  fi
  printf '\nmake test finished in %ss (exit %s)\n' "$(($(date +%s) - t0))" "$rc"
}
trap cleanup EXIT

mkdir -p .cache
if ! dev/stack.sh status --quiet >/dev/null 2>&1; then
  printf '\n==> starting the local stack in the background (log: %s)\n' "$stack_log"
  started_stack=1
  dev/stack.sh up >"$stack_log" 2>&1 &
  stack_pid=$!
else
  printf '\n==> reusing the running local stack\n'
fi
# wait_for_stack: the integration phases start only once the stack is up; a failed up shows its log.
wait_for_stack() {
  [[ -n $stack_pid ]] || return 0
  local rc=0
  wait "$stack_pid" || rc=$?
  stack_pid=""
  cat "$stack_log"
  if ((rc != 0)); then
    echo "dev/stack.sh up failed (exit $rc); see above" >&2
    exit "$rc"
  fi
}

# What a cold cache builds from source: golangci-lint, govulncheck and its database, then the benchmark's
# OpenTelemetry Collector (its packages land in Go's build cache, so the harness only links it). Built in the
# background at low priority from the start, the build overlaps the phases that mostly wait on peers; the
# phases that need a tool wait for it, and a failed build fails them with its log. With a warm cache this
# takes seconds.
rm -f "$prebuild_mark"
set -m # the build runs in its own process group, so an early exit stops all of it
(
  nice -n 10 dev/lint.sh tools && touch "$prebuild_mark" &&
    cd bench/otelcol && CGO_ENABLED=0 nice -n 10 go build -trimpath -o /dev/null .
) </dev/null >"$prebuild_log" 2>&1 &
prebuild_pid=$!
set +m
# wait_for_tools: until the linters are installed (or their build failed).
wait_for_tools() {
  while [[ ! -f $prebuild_mark ]] && kill -0 "$prebuild_pid" 2>/dev/null; do sleep 2; done
  if [[ ! -f $prebuild_mark ]]; then
    cat "$prebuild_log"
    echo "installing the linters failed; see above" >&2
    exit 1
  fi
}
# wait_for_prebuild: until the whole background build ended; a failure shows its log.
wait_for_prebuild() {
  [[ -n $prebuild_pid ]] || return 0
  local rc=0
  wait "$prebuild_pid" || rc=$?
  prebuild_pid=""
  if ((rc != 0)); then
    cat "$prebuild_log"
    echo "the background build of the tools and the collector failed (exit $rc); see above" >&2
    exit "$rc"
  fi
}

# The fault-injection and abuse suites (test/) bring up a stack of their own and kill or pause its broker;
# they run on their own below, not beside the packages that share the main stack.
mapfile -t pkgs < <(go list ./... | grep -v '/test/')

# gotest ARGS...: go test -json ARGS, printed as go test prints without -v by dev/gotestjson, which counts
# the tests that passed, failed and skipped (the counts go into the phase's line at the end) and fails the
# phase on a skip that dev/test-skips.txt does not name and explain: a skip is never a silent pass.
GOTESTJSON=.cache/bin/gotestjson
gotest() {
  local counts=.cache/test-counts.txt
  go test -json "$@" | "$GOTESTJSON" --phase "$phase_name" --allow dev/test-skips.txt | tee "$counts"
  phase_counts+="  ($(tail -n 1 "$counts" | sed 's/^.*: //'))"
}

# Seconds, and no Go build: no tracked file over 1 MiB unless dev/large-files.txt says why; shellcheck
# (Debian's, unpacked under .cache/shellcheck when not on PATH) on every shell script.
phase "large files and shellcheck"
dev/lint.sh size shell

phase "build and go vet"
mkdir -p bin .cache/bin
go build ./...
go build -o bin/ ./tasks/... ./functions/...
go build -o "$GOTESTJSON" ./dev/gotestjson
dev/lint.sh vet

phase "go unit tests (no stack needed)"
gotest -count=1 -skip Integration -timeout 10m "${pkgs[@]}"

phase "go integration tests (real Kafka / moto / ClickHouse)"
wait_for_stack
gotest -count=1 -run Integration -timeout 25m "${pkgs[@]}"

# internal/pipeline's unit tests under -race too: the handler, accounting, shutdown and delivery paths that
# run on several goroutines at once. Its integration tests already ran above, without -race.
phase "go test -race (readers and pipeline)"
gotest -count=1 -race -short -timeout 10m ./internal/tcpin/... ./internal/event/...
gotest -count=1 -race -short -timeout 10m -skip Integration ./internal/pipeline/...

# The tools and the vulnerability database are cached under .cache/ by version, so only a cold cache pays
# for building them.
phase "golangci-lint and govulncheck"
wait_for_tools
dev/lint.sh lint vuln

phase "DAG tests (real Airflow, the newest)"
dev/airflow.sh test

# The Airflow that dags/requirements.txt pins for Amazon MWAA, with the versions of its constraints file.
phase "DAG tests (real Airflow 3.0.6, the MWAA pin)"
AIRFLOW_LOCK=dev/airflow/requirements-3.0.lock dev/airflow.sh test

phase "cdk synth (cdk-nag on every synth; builds the Lambdas)"
dev/cdk.sh synth

# The bootstrap files the template references, run by the AWS Lambda Runtime Interface Emulator against the
# local stack, with the console's and the schedule's events.
phase "Lambda artifacts under the runtime interface emulator"
dev/lambda-emulator.sh

# The reader's image, built with podman from a base of Debian packages (no registry here) and run as the
# template's task definition says: read-only, uid 65532, its environment; health check, delivery, SIGTERM drain.
phase "the reader's image under podman (task definition's settings, local stack)"
dev/image.sh

phase "cfn-lint on every synthesized variant (cdk-nag on each)"
dev/cfnlint.sh

# The templates cdk synth and cfn-lint just wrote: created, updated and deleted in a moto server of its own.
phase "deploy rehearsal in the AWS emulator's CloudFormation (default, scheduled, production listen)"
dev/rehearse.sh --reuse

phase "fault injection and abuse, quick mode (a second stack of their own)"
dev/chaos.sh --quick

# Small N, so the harness cannot rot: it fails on a contender that loses, duplicates or alters events, or a
# reader whose memory grows while the broker is stalled; never on speed (the figures come from make bench).
phase "benchmark harness, quick mode (its own broker; peers from Debian packages)"
wait_for_prebuild
go run ./bench --quick --out .cache/bench/quick
end_phase
