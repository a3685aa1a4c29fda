#!/usr/bin/env bash
# Runs the fault-injection suite (test/chaos) and the abuse suite (test/abuse) against a stack of their own:
# it starts a second stack with dev/stack.sh under .cache/chaos/stack on other ports, builds bin/reader, runs
# both suites against that stack, prints the table of results and stops the stack again (unless it was
# already running). Faults are never injected into the stack other tests share.
#
#   dev/chaos.sh            the full version (CHAOS_FULL=1): 1,000,000 events, 30 s outages, 100 cuts,
#                           a 100 MiB line and 1 GiB of random bytes; what `make chaos` runs
#   dev/chaos.sh --quick    the quick version (small counts, outages of a few seconds); `make test` runs it
#   dev/chaos.sh [--quick] -run REGEXP   only the scenarios whose test names match
#
# The tables go to .cache/chaos/report-full.md and report-full-abuse.md (or report-quick*.md). Environment: CHAOS_STACK_DIR (default
# .cache/chaos/stack); CHAOS_KAFKA_PLAINTEXT_PORT (26092), CHAOS_KAFKA_SASL_PORT (26093),
# CHAOS_KAFKA_CONTROLLER_PORT (26094), CHAOS_MOTO_PORT (26000), CHAOS_CLICKHOUSE_HTTP_PORT (26123);
# CHAOS_KAFKA_HEAP (768m); CHAOS_KAFKA_BROKER_SESSION_TIMEOUT_MS (40000: longer than any freeze of the
# suite, shorter than the 60 s a restarted broker has to register, see dev/kafka/server.properties.in); CHAOS_TIMEOUT (go test -timeout, default 45m quick, 90m full).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CGO_ENABLED=1

mode=full
run=()
while (($#)); do
  case $1 in
  --quick) mode=quick ;;
  -run)
    run=(-run "${2:?-run needs a pattern}")
    shift
    ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
  shift
done
if [[ $mode == full ]]; then
  export CHAOS_FULL=1
  timeout=${CHAOS_TIMEOUT:-90m}
else
  unset CHAOS_FULL
  # A guard against a hang, not a time budget: every wait inside the suite has its own bound. On a 2-core
  # machine loaded by other work (load average 25-28) test/chaos ran past 20 minutes, every scenario passing
  # (broker restarts alone took 1-3 minutes), and the timeout killed it mid-scenario.
  timeout=${CHAOS_TIMEOUT:-45m}
fi

log() { printf 'chaos: %s\n' "$*" >&2; }

STACK_DIR=${CHAOS_STACK_DIR:-$ROOT/.cache/chaos/stack}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
[[ $STACK_DIR != "$ROOT/.cache/stack" ]] || {
  log "error: CHAOS_STACK_DIR is the shared stack's directory; faults must go to a stack of the suite's own"
  exit 1
}
stack_env=(
  STACK_DIR="$STACK_DIR"
  KAFKA_HEAP="${CHAOS_KAFKA_HEAP:-768m}"
  KAFKA_BROKER_SESSION_TIMEOUT_MS="${CHAOS_KAFKA_BROKER_SESSION_TIMEOUT_MS:-40000}"
  KAFKA_PLAINTEXT_PORT="${CHAOS_KAFKA_PLAINTEXT_PORT:-26092}"
  KAFKA_SASL_PORT="${CHAOS_KAFKA_SASL_PORT:-26093}"
  KAFKA_CONTROLLER_PORT="${CHAOS_KAFKA_CONTROLLER_PORT:-26094}"
  MOTO_PORT="${CHAOS_MOTO_PORT:-26000}"
  CLICKHOUSE_HTTP_PORT="${CHAOS_CLICKHOUSE_HTTP_PORT:-26123}"
)

started=0
if env "${stack_env[@]}" dev/stack.sh status --quiet >/dev/null 2>&1; then
  log "reusing the chaos stack in ${STACK_DIR#"$ROOT/"}"
else
  log "starting the chaos stack in ${STACK_DIR#"$ROOT/"}"
  env "${stack_env[@]}" dev/stack.sh up >&2
  started=1
fi
# shellcheck disable=SC2317 # reached through the EXIT trap below, which shellcheck does not follow
cleanup() {
  local rc=$?
  if ((started)); then
    log "stopping the chaos stack"
    env "${stack_env[@]}" dev/stack.sh down >&2 || true
  fi
  exit "$rc"
}
trap cleanup EXIT

log "building bin/reader"
mkdir -p bin
go build -o bin/ ./tasks/reader

report="$ROOT/.cache/chaos/report-$mode.md"
rm -f "$report" "${report%.md}-abuse.md"
export CHAOS_STACK_ENV="$STACK_DIR/stack.env" READER_BIN="$ROOT/bin/reader" CHAOS_REPORT="$report"
t0=$SECONDS
rc=0
log "running test/chaos ($mode)"
go test -count=1 -v -timeout "$timeout" "${run[@]}" ./test/chaos/ || rc=$?
# The abuse suite uses the stack through internal/stacktest: point it at the chaos stack.
log "running test/abuse ($mode)"
STACK_ENV="$CHAOS_STACK_ENV" ABUSE_REPORT="${report%.md}-abuse.md" go test -count=1 -v -timeout "$timeout" "${run[@]}" ./test/abuse/ || rc=$?
log "finished in $((SECONDS - t0))s (exit $rc)"
for f in "$report" "${report%.md}-abuse.md"; do
  [[ -f $f ]] && { echo; cat "$f"; }
done
exit "$rc"
