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
before=$(curl -fsS --user "$CLICKHOUSE_USER:$CLICKHOUSE_PASSWORD" "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM KafkaEngine.logs")

# Every demo run continues the eventId sequence, so rows from earlier runs stay distinct.
FIRST=$(( before + 1 ))
say "streaming $N events at $RATE/s from the log source (127.0.0.1:$PORT), eventIds from $FIRST"
bin/logsource --listen "127.0.0.1:$PORT" --count "$N" --rate "$RATE" --first-id "$FIRST" > "$WORK/source.json" 2> "$WORK/source.log" &
src_pid=$!
trap 'kill $src_pid 2>/dev/null || true' EXIT

say "running the reader until it has read $N lines (JSON logs in $WORK/reader.log)"
bin/reader --source-addr "127.0.0.1:$PORT" --max-events "$N" --ca-file "$KAFKA_CA_FILE" \
  --metrics-addr 127.0.0.1:19108 2> "$WORK/reader.log" | tee "$WORK/summary.json"
wait "$src_pid" || true
echo "log source: $(cat "$WORK/source.json")"

say "waiting for ClickHouse to consume the topic into KafkaEngine.logs"
want=$(( before + N ))
# On a terminal one line counts up in place; in a log or CI output each new count is a line of its own.
shown=""
for _ in $(seq 1 120); do
  rows=$(curl -fsS --user "$CLICKHOUSE_USER:$CLICKHOUSE_PASSWORD" "$CLICKHOUSE_URL/" --data-binary "SELECT count() FROM KafkaEngine.logs")
  if [ -t 1 ]; then
    printf '\r  rows in KafkaEngine.logs: %s / %s' "$rows" "$want"
  elif [ "$rows" != "$shown" ]; then
    printf '  rows in KafkaEngine.logs: %s / %s\n' "$rows" "$want"
    shown=$rows
  fi
  [ "$rows" -ge "$want" ] && break
  sleep 1
done
[ -t 1 ] && echo
if [ "$rows" -lt "$want" ]; then
  echo "ClickHouse has $rows rows, expected $want; see ${CLICKHOUSE_ENGINE_LOG:-the engine log}" >&2
  exit 1
fi

say "the example queries"
bin/chctl queries
say "done: $N events went TCP -> reader -> Kafka logs_4 -> ClickHouse KafkaEngine.logs"
