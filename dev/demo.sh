#!/usr/bin/env bash
# make demo: the whole pipeline on the local stack. The log source streams generated events over TCP, the
# reader validates them and produces them to Kafka (SASL_SSL, credentials from the Secrets Manager emulator),
# ClickHouse's Kafka engine consumes the topic into the MergeTree table, and the example queries run at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export CGO_ENABLED=1
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line, also where the go env says "local"

N=${DEMO_EVENTS:-200000}
RATE=${DEMO_RATE:-100000}
PORT=${DEMO_SOURCE_PORT:-19500}
METRICS_ADDR=${DEMO_METRICS_ADDR:-127.0.0.1:19108}
WORK=.cache/demo
mkdir -p "$WORK"
# shellcheck source=dev/lib/heartbeat.sh
source dev/lib/heartbeat.sh

# step TITLE: a new step, in bold; the one before it says how long it took. The first run of a cold cache
# downloads and builds for several minutes, so every step says what it does and how long it takes the
# first time, and long steps print a line every HEARTBEAT_SECONDS (15) while they run.
t_start=$SECONDS t_step=$SECONDS step_open=0
step() {
  ((step_open)) && printf '  (%s)\n' "$(fmt_duration $((SECONDS - t_step)))"
  printf '\n\033[1m==> %s\033[0m\n' "$*"
  t_step=$SECONDS step_open=1
}
# go_quiet LOG CMD...: a go command whose "go: downloading" lines go to LOG; on failure LOG is shown.
go_quiet() {
  local logf=$1 rc=0
  shift
  "$@" >>"$logf" 2>&1 || rc=$?
  if ((rc != 0)); then
    tail -n 30 "$logf" >&2
    echo "$* failed (exit $rc); see $logf" >&2
    return "$rc"
  fi
}

dev/prereqs.sh demo

step "starting (or reusing) the local stack: Kafka, the Secrets Manager emulator, the ClickHouse engine (the first time about 8 min: Kafka's jars, two Python venvs; about 1 min when stopped; seconds when it runs)"
dev/stack.sh up
# shellcheck disable=SC1091
source .cache/stack/stack.env
# engine_log_size: bytes in the ClickHouse engine's log; the demo checks how much one run adds.
engine_log_size() { stat -c %s "${CLICKHOUSE_ENGINE_LOG:-/nonexistent}" 2>/dev/null || echo 0; }
engine_log_start=$(engine_log_size)

GOLOG=$WORK/go.log
: >"$GOLOG"
step "the Go toolchain go.mod names ($(sed -n 's/^toolchain //p' go.mod); the first time the go command downloads it, about 30 s; log $GOLOG)"
with_heartbeat "downloading the Go toolchain" "about 30 s" go_quiet "$GOLOG" go version
echo "  $(tail -n 1 "$GOLOG")"

step "the Go modules the reader, the log source and chctl need (the first time about 30 s)"
with_heartbeat "downloading Go modules" "about 30 s" go_quiet "$GOLOG" go list -deps ./tasks/reader ./tasks/logsource ./tasks/chctl

step "building the reader, the log source and chctl into bin/ (the first time the longest step, 5 to 12 min: the Go toolchain compiles its standard library, cgo the Kafka client; then seconds)"
mkdir -p bin
with_heartbeat "building (the standard library, the Kafka client with cgo, the AWS SDK)" "5 to 12 min" \
  go_quiet "$GOLOG" go build -o bin/ ./tasks/reader ./tasks/logsource ./tasks/chctl

step "creating the ClickHouse tables (database KafkaEngine: logs, logs_queue, logs_mv) if missing"
# Brokers, credentials (a named collection) and the CA come from MWAA_Secrets and KAFKA_CA_FILE, as in AWS.
bin/chctl bootstrap --topic logs_4
# q SQL: one value from the local ClickHouse, in the database KafkaEngine.
q() { bin/chctl query --format TSV "$1"; }

# Every demo run continues after the highest eventId in the table, so rows from earlier runs stay distinct
# and this run's rows are exactly the eventIds FIRST..LAST.
FIRST=$(( $(q "SELECT max(eventId) FROM logs") + 1 ))
LAST=$(( FIRST + N - 1 ))
step "streaming $N events at $RATE/s from the log source (127.0.0.1:$PORT), eventIds $FIRST..$LAST"
bin/logsource --listen "127.0.0.1:$PORT" --count "$N" --rate "$RATE" --first-id "$FIRST" > "$WORK/source.json" 2> "$WORK/source.log" &
src_pid=$!
trap 'kill $src_pid 2>/dev/null || true' EXIT

step "running the reader until it has read $N lines (about 30 s; JSON logs in $WORK/reader.log)"
heartbeat_start "running the reader" "about 30 s"
rc=0
bin/reader --source-addr "127.0.0.1:$PORT" --max-events "$N" --ca-file "$KAFKA_CA_FILE" \
  --metrics-addr "$METRICS_ADDR" >"$WORK/summary.json" 2>"$WORK/reader.log" || rc=$?
heartbeat_stop
if ((rc != 0)); then
  # The summary's error, once and plainly (the JSON record in reader.log says the same).
  echo "the reader failed (exit $rc): $(sed -n 's/.*"error":"\(.*\)"}$/\1/p' "$WORK/summary.json")" >&2
  echo "its log: $WORK/reader.log" >&2
  exit 1
fi
cat "$WORK/summary.json"
wait "$src_pid" || true
echo "log source: $(cat "$WORK/source.json")"

# Waits on progress, not on a number of polls: a consumer that joins late (a new Kafka table waits for its
# partition assignment) or a slow machine is fine as long as rows keep arriving; only STALL seconds without
# a new row end the demo in error.
STALL=${DEMO_STALL_SECONDS:-180}
step "waiting for ClickHouse to consume this run's eventIds into KafkaEngine.logs (about 30 s; a new Kafka table can first wait a minute for its partitions; fails after ${STALL}s without progress)"
range="eventId BETWEEN $FIRST AND $LAST"
# On a terminal one line counts up in place; in a log or CI output each new count is a line of its own.
shown="" ids=0 last_change=$SECONDS last_line=$SECONDS
while :; do
  ids=$(q "SELECT uniqExact(eventId) FROM logs WHERE $range")
  if [ "$ids" != "$shown" ]; then
    last_change=$SECONDS
    if [ -t 1 ]; then printf '\r  eventIds of this run in KafkaEngine.logs: %s / %s' "$ids" "$N"; else
      printf '  eventIds of this run in KafkaEngine.logs: %s / %s\n' "$ids" "$N"; fi
    shown=$ids last_line=$SECONDS
  fi
  # Without a new row, a line every HEARTBEAT_SECONDS says the demo still waits, and why it may.
  if ((${HEARTBEAT_SECONDS:-15} > 0 && SECONDS - last_line >= ${HEARTBEAT_SECONDS:-15})); then
    [ -t 1 ] && echo
    printf '  ... still waiting for rows: none new for %s (a new Kafka table can wait about a minute for its partitions; the demo gives up after %s without one)\n' \
      "$(fmt_duration $((SECONDS - last_change)))" "$(fmt_duration "$STALL")"
    last_line=$SECONDS
  fi
  [ "$ids" -ge "$N" ] && break
  if (( SECONDS - last_change >= STALL )); then
    [ -t 1 ] && echo
    echo "no new rows for ${STALL}s: ClickHouse has $ids of this run's $N eventIds; see ${CLICKHOUSE_ENGINE_LOG:-the engine log} and bin/chctl consumers" >&2
    exit 1
  fi
  sleep 1
done
[ -t 1 ] && echo

step "checking this run exactly (FROM logs FINAL, eventIds $FIRST..$LAST: each once, no gaps, no duplicates)"
bin/chctl reconcile --first "$FIRST" --last "$LAST" | sed 's/^/  /'

# A demo-sized run leaves the engine's log small at the default level (warning); at information a first
# run wrote 23.5 MB in two minutes. A rotation (at 50 MB) shows as a smaller file: then all of it counts.
grown=$(engine_log_size)
((grown >= engine_log_start)) && grown=$((grown - engine_log_start))
echo "  the ClickHouse engine's log grew $((grown / 1024)) KB during this run (level ${CLICKHOUSE_LOG_LEVEL:-?}; CLICKHOUSE_LOG_LEVEL=information make stack-up turns it up)"
if [[ ${CLICKHOUSE_LOG_LEVEL:-} == warning ]] && ((grown > ${DEMO_ENGINE_LOG_MAX_KB:-5120} * 1024)); then
  echo "the engine's log grew $((grown / 1024)) KB at level warning, more than ${DEMO_ENGINE_LOG_MAX_KB:-5120} KB: see ${CLICKHOUSE_ENGINE_LOG}" >&2
  exit 1
fi

step "the example queries' results (bin/chctl queries; any SQL: bin/chctl query 'SELECT ...')"
bin/chctl queries
step "done in $(fmt_duration $((SECONDS - t_start))): $N events went TCP -> reader -> Kafka logs_4 -> ClickHouse KafkaEngine.logs, each exactly once"
step_open=0
echo "  The local stack keeps running, so the next make demo or make test starts at once: Kafka, the Secrets"
echo "  Manager emulator and the ClickHouse engine hold $(dev/stack.sh memory --total) of memory now (resident)."
echo "  make stack-down stops them and leaves no process behind."
