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
WORK=.cache/demo
mkdir -p "$WORK"

say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

dev/prereqs.sh demo

say "starting (or reusing) the local stack"
dev/stack.sh up
# shellcheck disable=SC1091
source .cache/stack/stack.env

say "building the reader, the log source and chctl"
mkdir -p bin
go build -o bin/ ./tasks/reader ./tasks/logsource ./tasks/chctl

say "creating the ClickHouse tables (database KafkaEngine: logs, logs_queue, logs_mv) if missing"
# Brokers, credentials (a named collection) and the CA come from MWAA_Secrets and KAFKA_CA_FILE, as in AWS.
bin/chctl bootstrap --topic logs_4
# q SQL: one value from the local ClickHouse, in the database KafkaEngine.
q() { bin/chctl query --format TSV "$1"; }

# Every demo run continues after the highest eventId in the table, so rows from earlier runs stay distinct
# and this run's rows are exactly the eventIds FIRST..LAST.
FIRST=$(( $(q "SELECT max(eventId) FROM logs") + 1 ))
LAST=$(( FIRST + N - 1 ))
say "streaming $N events at $RATE/s from the log source (127.0.0.1:$PORT), eventIds $FIRST..$LAST"
bin/logsource --listen "127.0.0.1:$PORT" --count "$N" --rate "$RATE" --first-id "$FIRST" > "$WORK/source.json" 2> "$WORK/source.log" &
src_pid=$!
trap 'kill $src_pid 2>/dev/null || true' EXIT

say "running the reader until it has read $N lines (JSON logs in $WORK/reader.log)"
bin/reader --source-addr "127.0.0.1:$PORT" --max-events "$N" --ca-file "$KAFKA_CA_FILE" \
  --metrics-addr 127.0.0.1:19108 2> "$WORK/reader.log" | tee "$WORK/summary.json"
wait "$src_pid" || true
echo "log source: $(cat "$WORK/source.json")"

# Waits on progress, not on a number of polls: a consumer that joins late (a new Kafka table waits for its
# partition assignment) or a slow machine is fine as long as rows keep arriving; only STALL seconds without
# a new row end the demo in error.
STALL=${DEMO_STALL_SECONDS:-180}
say "waiting for ClickHouse to consume this run's eventIds into KafkaEngine.logs (fails after ${STALL}s without progress)"
range="eventId BETWEEN $FIRST AND $LAST"
# On a terminal one line counts up in place; in a log or CI output each new count is a line of its own.
shown="" ids=0 last_change=$SECONDS
while :; do
  ids=$(q "SELECT uniqExact(eventId) FROM logs WHERE $range")
  if [ "$ids" != "$shown" ]; then
    last_change=$SECONDS
    if [ -t 1 ]; then printf '\r  eventIds of this run in KafkaEngine.logs: %s / %s' "$ids" "$N"; else
      printf '  eventIds of this run in KafkaEngine.logs: %s / %s\n' "$ids" "$N"; fi
    shown=$ids
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

say "checking this run exactly (FROM logs FINAL, eventIds $FIRST..$LAST)"
read -r rows distinct lo hi < <(q "SELECT count(), uniqExact(eventId), min(eventId), max(eventId) FROM logs FINAL WHERE $range")
printf '  rows %s, distinct eventIds %s, range %s..%s (want %s rows, %s distinct, %s..%s)\n' \
  "$rows" "$distinct" "$lo" "$hi" "$N" "$N" "$FIRST" "$LAST"
# N distinct ids inside a range of N values leave no gap; as many rows as ids leave no duplicate.
if [ "$distinct" -ne "$N" ] || [ "$lo" -ne "$FIRST" ] || [ "$hi" -ne "$LAST" ]; then
  echo "this run's eventIds are not exactly $FIRST..$LAST: $(( N - distinct )) missing" >&2
  exit 1
fi
if [ "$rows" -ne "$N" ]; then
  echo "this run left $(( rows - N )) duplicate rows (same eventId, other Kafka offsets) in KafkaEngine.logs" >&2
  exit 1
fi
echo "  exact: every eventId $FIRST..$LAST once, no gaps, no duplicates"

say "the example queries"
bin/chctl queries
say "done: $N events went TCP -> reader -> Kafka logs_4 -> ClickHouse KafkaEngine.logs, each exactly once"
