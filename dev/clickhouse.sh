#!/usr/bin/env bash
# The local stack's ClickHouse: the ClickHouse engine as a library (chdb-core, the version
# dev/clickhouse/requirements.lock pins; named everywhere as "ClickHouse 26.9.2.1 (chdb-core 26.9.0)", the
# engine's SELECT version() and the package's version) in one long-lived process that serves ClickHouse's HTTP interface on loopback (dev/clickhouse/server.py).
# See dev/clickhouse/README.md.
#
#   dev/clickhouse.sh up       install (once) and start the engine, or reuse a running one; write clickhouse.env
#   dev/clickhouse.sh down     stop it (TERM, then KILL after a timeout); no process is left
#   dev/clickhouse.sh status   one line; exit 0 only when it runs and answers /ping
#
# Environment: STACK_DIR (default .cache/stack), CLICKHOUSE_HTTP_PORT (18123), CLICKHOUSE_UP_TIMEOUT (60 s),
# CLICKHOUSE_STOP_TIMEOUT (20 s), CLICKHOUSE_LOG_LEVEL (the engine's log level, default warning: at
# information a first demo wrote 23.5 MB in two minutes; information, debug or trace turn it up, and a
# running engine restarts with a new level at the next up). The engine's configuration holds no Kafka credentials: the bootstrap
# (chctl bootstrap) puts them into a named collection, as on a managed ClickHouse. When $STACK_DIR/kafka.env
# exists, CLICKHOUSE_KAFKA_BROKERS names the SASL_SSL listener for the Kafka tables.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
VENV="$CACHE/venv-clickhouse"
LOCK="$ROOT/dev/clickhouse/requirements.lock"
SERVER="$ROOT/dev/clickhouse/server.py"
UP_TIMEOUT=${CLICKHOUSE_UP_TIMEOUT:-60}
STOP_TIMEOUT=${CLICKHOUSE_STOP_TIMEOUT:-20}
LOG_LEVEL=${CLICKHOUSE_LOG_LEVEL:-warning}
CHDB_VERSION=$(sed -n 's/^chdb-core==\([0-9.]*\).*/\1/p' "$LOCK")

log() { printf 'clickhouse: %s\n' "$*" >&2; }
die() {
  printf 'clickhouse: error: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=dev/lib/proc.sh
source "$ROOT/dev/lib/proc.sh"
# shellcheck source=dev/lib/heartbeat.sh
source "$ROOT/dev/lib/heartbeat.sh"

STACK_DIR=${STACK_DIR:-$CACHE/stack}
mkdir -p "$STACK_DIR"
STACK_DIR=$(cd "$STACK_DIR" && pwd)
CH_HOME="$STACK_DIR/clickhouse"
CH_DATA="$CH_HOME/data"
CH_CONFIG="$CH_HOME/config.xml"
CH_PASSWORD_FILE="$CH_HOME/password"
CH_PID="$STACK_DIR/clickhouse.pid"
CH_LOG="$STACK_DIR/clickhouse.log"
CH_ENGINE_LOG="$STACK_DIR/clickhouse-engine.log"
CH_ENV="$STACK_DIR/clickhouse.env"
CH_PORT_FILE="$CH_HOME/port"
CH_STAMP="$CH_HOME/running-config.sha256"
CH_VERSION_FILE="$CH_HOME/version"
# The port: asked for, else the one the running engine of this stack directory uses, else the default.
if [[ -n ${CLICKHOUSE_HTTP_PORT:-} ]]; then
  PORT=$CLICKHOUSE_HTTP_PORT
elif [[ -s $CH_PORT_FILE ]]; then
  PORT=$(<"$CH_PORT_FILE")
else
  PORT=18123
fi
URL="http://127.0.0.1:$PORT"

# --- processes ---------------------------------------------------------------------------------------------

# engine_pid prints the engine's pid when the pid file names a live process whose command line is ours
# (server.py with this stack's data directory), so a recycled pid is never taken for it.
engine_pid() { running_pid "$CH_PID" "server.py --data $CH_DATA "; }

# engine_name: "ClickHouse 26.9.2.1 (chdb-core 26.9.0)", the one way scripts and docs name the engine: what
# the running engine's SELECT version() answered at its start, and the package the lock pins.
engine_name() {
  local v
  if [[ ! -s $CH_VERSION_FILE ]]; then # an engine started before the file was kept: ask it once
    v=$(engine_version) && echo "$v" >"$CH_VERSION_FILE"
  fi
  [[ -s $CH_VERSION_FILE ]] && v=$(<"$CH_VERSION_FILE")
  echo "ClickHouse ${v:-?} (chdb-core $CHDB_VERSION)"
}

engine_version() {
  curl -fsS --max-time 5 -H 'X-ClickHouse-User: default' -H "X-ClickHouse-Key: $(<"$CH_PASSWORD_FILE")" \
    --data-binary 'SELECT version()' "$URL/" 2>/dev/null
}

ping_ok() { [[ $(curl -fsS --max-time 2 "$URL/ping" 2>/dev/null) == "Ok." ]]; }

# --- install -----------------------------------------------------------------------------------------------

ensure_venv() {
  local stamp="$VENV/.lock.sha256" want
  want=$(sha256sum "$LOCK" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]] && "$VENV/bin/python" -c 'import importlib.util as u; assert u.find_spec("chdb")' 2>/dev/null; then
    return
  fi
  command -v python3 >/dev/null || die "python3 not found: it runs the ClickHouse engine (chdb-core) and its HTTP server"
  log "installing the ClickHouse engine (chdb-core, dev/clickhouse/requirements.lock) into ${VENV#"$ROOT/"}"
  mkdir -p "$CACHE"
  if ! { [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"; } >"$CACHE/venv-clickhouse.log" 2>&1 ||
    ! "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes --only-binary=:all: \
      -r "$LOCK" >>"$CACHE/venv-clickhouse.log" 2>&1; then
    tail -n 20 "$CACHE/venv-clickhouse.log" >&2
    die "installing chdb-core from dev/clickhouse/requirements.lock into ${VENV#"$ROOT/"} failed; see ${CACHE#"$ROOT/"}/venv-clickhouse.log"
  fi
  echo "$want" >"$stamp"
}


# --- configuration -----------------------------------------------------------------------------------------

write_config() {
  case $LOG_LEVEL in none | fatal | critical | error | warning | notice | information | debug | trace | test) ;;
  *) die "CLICKHOUSE_LOG_LEVEL=$LOG_LEVEL: want one of none, fatal, critical, error, warning, notice, information, debug, trace, test" ;;
  esac
  mkdir -p "$CH_HOME/config.d" "$CH_DATA"
  [[ -s $CH_PASSWORD_FILE ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$CH_PASSWORD_FILE")
  write_private "$CH_CONFIG" <<EOF
<!-- Written by dev/clickhouse.sh; config.d/*.xml beside it is merged in. -->
<clickhouse>
    <timezone>UTC</timezone>
    <!-- A good neighbour on a shared development machine: at most a quarter of the memory. -->
    <max_server_memory_usage_to_ram_ratio>0.25</max_server_memory_usage_to_ram_ratio>
    <!-- The embedded engine takes its log level from log-level (it overrides logger/level).
         CLICKHOUSE_LOG_LEVEL sets it; warning by default, so a demo-sized run writes kilobytes, not megabytes. -->
    <log-level>$LOG_LEVEL</log-level>
    <logger>
        <log>$CH_ENGINE_LOG</log>
        <size>50M</size>
        <count>2</count>
    </logger>
</clickhouse>
EOF
  # Kafka credentials never go into the server configuration: the bootstrap puts them into a named
  # collection (chctl bootstrap / the bootstrap Lambda), as on a managed ClickHouse. An older kafka.xml goes.
  rm -f "$CH_HOME/config.d/kafka.xml"
  KAFKA_BROKERS=""
  if [[ -f $STACK_DIR/kafka.env ]]; then
    # shellcheck source=/dev/null # kafka.env is written by dev/stack.sh up at run time
    KAFKA_BROKERS=$(. "$STACK_DIR/kafka.env" && echo "$KAFKA_BOOTSTRAP_SERVER")
  fi
}

config_hash() {
  local files=("$CH_CONFIG" "$CH_PASSWORD_FILE" "$SERVER")
  shopt -s nullglob
  files+=("$CH_HOME"/config.d/*.xml)
  shopt -u nullglob
  cat "${files[@]}" | sha256sum | cut -d' ' -f1
}

write_env() {
  {
    echo "# ClickHouse engine, $(engine_name) (dev/clickhouse.sh)"
    echo "export CLICKHOUSE_URL='$URL'"
    echo "export CLICKHOUSE_HTTP_PORT='$PORT'"
    echo "export CLICKHOUSE_USER='default'"
    echo "export CLICKHOUSE_PASSWORD='$(<"$CH_PASSWORD_FILE")'"
    echo "export CLICKHOUSE_KAFKA_BROKERS='$KAFKA_BROKERS'"
    echo "export CLICKHOUSE_LOG='$CH_LOG'"
    echo "export CLICKHOUSE_ENGINE_LOG='$CH_ENGINE_LOG'"
    echo "export CLICKHOUSE_LOG_LEVEL='$LOG_LEVEL'"
    echo "export CLICKHOUSE_PID_FILE='$CH_PID'"
    echo "export CLICKHOUSE_DATA_DIR='$CH_DATA'"
    echo "export CLICKHOUSE_CONFIG='$CH_CONFIG'"
  } | write_private "$CH_ENV"
  # stack.env, when it exists, gets our lines in place of any older ones (dev/stack.sh also rebuilds it).
  if [[ -f $STACK_DIR/stack.env ]]; then
    { grep -vE '^(export CLICKHOUSE_|# ClickHouse engine)' "$STACK_DIR/stack.env" || true; cat "$CH_ENV"; } |
      write_private "$STACK_DIR/stack.env"
  fi
}

drop_env() {
  rm -f "$CH_ENV"
  if [[ -f $STACK_DIR/stack.env ]]; then
    { grep -vE '^(export CLICKHOUSE_|# ClickHouse engine)' "$STACK_DIR/stack.env" || true; } | write_private "$STACK_DIR/stack.env"
  fi
}

# --- commands ----------------------------------------------------------------------------------------------

stop_engine() {
  local pid
  pid=$(engine_pid) || { rm -f "$CH_PID" "$CH_STAMP" "$CH_VERSION_FILE"; return 0; }
  stop_pid "the engine" "$pid"
  rm -f "$CH_PID" "$CH_STAMP" "$CH_VERSION_FILE"
}

cmd_up() {
  local pid deadline
  command -v curl >/dev/null || die "curl not found: it checks the engine's readiness"
  heartbeat_start "installing the ClickHouse engine (a 181 MB wheel)" "about 1 min"
  ensure_venv
  heartbeat_stop
  write_config
  if pid=$(engine_pid); then
    if [[ $(<"$CH_PORT_FILE") != "$PORT" ]]; then
      die "the engine of $STACK_DIR runs on port $(<"$CH_PORT_FILE"), not $PORT; run dev/clickhouse.sh down first"
    fi
    if [[ -f $CH_STAMP && $(<"$CH_STAMP") == "$(config_hash)" ]] && ping_ok; then
      log "$(engine_name) already running (pid $pid) on $URL"
      write_env
      return
    fi
    log "its configuration changed (or it does not answer): restarting"
    stop_engine
  fi
  if port_open "$PORT"; then
    die "port $PORT (CLICKHOUSE_HTTP_PORT) is in use by another process; stop it or choose another port with CLICKHOUSE_HTTP_PORT=..."
  fi
  log "starting the engine on $URL (log: $CH_LOG; the engine's own, at level $LOG_LEVEL: $CH_ENGINE_LOG)"
  : >"$CH_LOG"
  TZ=UTC setsid "$VENV/bin/python" "$SERVER" --data "$CH_DATA" --config "$CH_CONFIG" --host 127.0.0.1 \
    --port "$PORT" --user default --password-file "$CH_PASSWORD_FILE" </dev/null >>"$CH_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$CH_PID"
  echo "$PORT" >"$CH_PORT_FILE"
  deadline=$((SECONDS + UP_TIMEOUT))
  heartbeat_start "starting the ClickHouse engine" "a few seconds"
  until ping_ok; do
    if ! pid_alive "$pid"; then
      tail -n 20 "$CH_LOG" >&2
      rm -f "$CH_PID"
      die "the engine exited during startup; see $CH_LOG"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 20 "$CH_LOG" >&2
      stop_engine
      die "the engine did not answer $URL/ping within ${UP_TIMEOUT}s; see $CH_LOG"
    fi
    sleep 0.2
  done
  heartbeat_stop
  config_hash >"$CH_STAMP"
  local version
  version=$(engine_version) || die "the engine answers /ping but not a query; see $CH_LOG"
  echo "$version" >"$CH_VERSION_FILE"
  log "$(engine_name) ready (pid $pid)"
  write_env
}

cmd_down() {
  stop_engine
  drop_env
}

cmd_status() {
  local pid
  if pid=$(engine_pid) && ping_ok; then
    printf '%-11s %s\n' clickhouse "running  pid $pid  $URL  $(engine_name)  data $CH_DATA"
    return 0
  fi
  printf '%-11s %s\n' clickhouse "stopped  (log: $CH_LOG)"
  return 1
}

case ${1:-} in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
*) die "usage: dev/clickhouse.sh up|down|status" ;;
esac
