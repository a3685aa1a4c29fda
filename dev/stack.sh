#!/usr/bin/env bash
# The local stack on loopback: Apache Kafka (KRaft, one combined broker+controller node by default) with a
# PLAINTEXT and a SASL_SSL/PLAIN listener, the Secrets Manager emulator (moto server) holding MWAA_Secrets, and
# ClickHouse when dev/clickhouse.sh is there. See dev/README.md for the env file it writes.
#
#   dev/stack.sh up                    start what is not running, reuse what is; write the env file
#   dev/stack.sh down                  stop everything (TERM, then KILL after a timeout); no process is left
#   dev/stack.sh status [--quiet]      one line per component; exit 0 only when all of it runs
#   dev/stack.sh memory [--total]      the resident memory (RSS) of each running component and the total
#                                      (--total: only the total, as "830 MB")
#   dev/stack.sh kafka-start [--broker N] [DIR]   start the brokers (or broker N) again (after kafka-stop or a
#                                      SIGKILL), wait until ready
#   dev/stack.sh kafka-stop [--kill] [--broker N] [DIR]  stop only the brokers (or broker N; --kill: SIGKILL
#                                      at once, an unclean stop)
#   dev/stack.sh purge                 down, then delete the stack directory (broker data, certificates, passwords)
#
# Environment: STACK_DIR (default .cache/stack), KAFKA_BROKERS_COUNT (1: how many brokers; broker 1 is also the
# cluster's controller, broker N listens on the ports below plus 10*(N-1) and keeps its data, config, pid and
# log apart), KAFKA_PLAINTEXT_PORT (19092), KAFKA_SASL_PORT (19093),
# KAFKA_CONTROLLER_PORT (19094), MOTO_PORT (15000), MOTO_IAM_AUTH (on|off, default on), KAFKA_HEAP (1g, each broker),
# KAFKA_HEAP_MIN (the heap the broker starts with, 256m; the benchmark starts its broker at the full heap),
# KAFKA_BROKER_SESSION_TIMEOUT_MS (9000, Kafka's default; the chaos suites, which freeze the broker, raise it),
# STACK_UP_TIMEOUT (seconds, 120), STACK_STOP_TIMEOUT (seconds, 20), STACK_CLICKHOUSE (on|off, default on: off
# leaves ClickHouse out, for a stack that only needs Kafka). Two stacks can run side by side with
# different ports and STACK_DIRs. Downloads (jars, the emulator's venv) are cached under .cache/ and shared.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$ROOT/dev/stack.sh"
CACHE="$ROOT/.cache"

# Ports (and the broker count) the caller set explicitly; the others come from the stack directory's saved
# ports, else defaults.
PORT_VARS=(KAFKA_PLAINTEXT_PORT KAFKA_SASL_PORT KAFKA_CONTROLLER_PORT MOTO_PORT KAFKA_BROKERS_COUNT)
declare -A PORT_DEFAULT=([KAFKA_PLAINTEXT_PORT]=19092 [KAFKA_SASL_PORT]=19093 [KAFKA_CONTROLLER_PORT]=19094 [MOTO_PORT]=15000 [KAFKA_BROKERS_COUNT]=1)
# Broker N's ports are broker 1's plus BROKER_PORT_STEP*(N-1).
BROKER_PORT_STEP=10
declare -A PORT_ASKED=()
for v in "${PORT_VARS[@]}"; do [[ -n ${!v:-} ]] && PORT_ASKED[$v]=${!v}; done
MOTO_IAM_AUTH=${MOTO_IAM_AUTH:-on}
STACK_CLICKHOUSE=${STACK_CLICKHOUSE:-on}
KAFKA_HEAP=${KAFKA_HEAP:-1g}
KAFKA_HEAP_MIN=${KAFKA_HEAP_MIN:-256m}
KAFKA_BROKER_SESSION_TIMEOUT_MS=${KAFKA_BROKER_SESSION_TIMEOUT_MS:-9000}
PORTS_CHANGED=""
UP_TIMEOUT=${STACK_UP_TIMEOUT:-120}
STOP_TIMEOUT=${STACK_STOP_TIMEOUT:-20}

KAFKA_VERSION=$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$ROOT/dev/kafka/pom.xml")
KAFKA_LIBS="$CACHE/kafka/$KAFKA_VERSION/libs"
# One venv per lock file content: a changed lock builds a new venv beside the old one, so an emulator still
# running from the old one is never pulled from under it.
VENV="$CACHE/venv-stack/$(sha256sum "$ROOT/dev/moto/requirements.lock" | cut -c1-12)"
CLUSTER_ID=bXdhYS1rYWZrYS1sb2NhbA # base64 of the 16 bytes "mwaa-kafka-local": fixed, so formatting is repeatable
SASL_USERNAME=pipeline
SASL_TEST_USERNAME=tester
SECRET_NAME=MWAA_Secrets
# logs_walkthrough(_dlq): the README's by-hand reader run writes there, away from the topic ClickHouse consumes.
TOPICS=("logs_4:3" "logs_4_dlq:1" "logs_walkthrough:1" "logs_walkthrough_dlq:1")

log() { printf 'stack: %s\n' "$*" >&2; }
die() {
  printf 'stack: error: %s\n' "$*" >&2
  exit 1
}
# shellcheck source=dev/lib/proc.sh
source "$ROOT/dev/lib/proc.sh"
# shellcheck source=dev/lib/heartbeat.sh
source "$ROOT/dev/lib/heartbeat.sh"

set_stack_dir() {
  STACK_DIR=${1:-${STACK_DIR:-$CACHE/stack}}
  mkdir -p "$STACK_DIR"
  STACK_DIR=$(cd "$STACK_DIR" && pwd)
  KAFKA_HOME="$STACK_DIR/kafka"
  KAFKA_DATA="$KAFKA_HOME/data"
  KAFKA_TLS="$KAFKA_HOME/tls"
  KAFKA_CONFIG="$KAFKA_HOME/server.properties"
  KAFKA_PID="$STACK_DIR/kafka.pid"
  KAFKA_LOG="$STACK_DIR/kafka.log"
  MOTO_HOME="$STACK_DIR/moto"
  MOTO_PID="$STACK_DIR/moto.pid"
  MOTO_LOG="$STACK_DIR/moto.log"
  ENV_FILE="$STACK_DIR/stack.env"
  PORTS_FILE="$STACK_DIR/ports"
  load_ports
}

# load_ports picks each port: asked for in the environment, else saved by the last up of this stack
# directory (so kafka-start, status and down find a stack started on other ports), else the default.
load_ports() {
  local v k val
  declare -A saved=()
  if [[ -f $PORTS_FILE ]]; then
    while IFS='=' read -r k val; do [[ -n $k ]] && saved[$k]=$val; done <"$PORTS_FILE"
  fi
  for v in "${PORT_VARS[@]}"; do
    printf -v "$v" '%s' "${PORT_ASKED[$v]:-${saved[$v]:-${PORT_DEFAULT[$v]}}}"
  done
  for v in "${PORT_VARS[@]}"; do
    if [[ -n ${PORT_ASKED[$v]:-} && -n ${saved[$v]:-} && ${PORT_ASKED[$v]} != "${saved[$v]}" ]]; then
      PORTS_CHANGED="$v=${saved[$v]} -> ${PORT_ASKED[$v]}"
    fi
  done
  [[ $KAFKA_BROKERS_COUNT =~ ^[1-9][0-9]?$ ]] || die "KAFKA_BROKERS_COUNT=$KAFKA_BROKERS_COUNT: want a number of brokers from 1 to 99"
  broker 1
}

# broker N selects broker N for the functions below: B, B_CONFIG, B_DATA, B_PID, B_LOG, B_PLAINTEXT_PORT,
# B_SASL_PORT. Broker 1 keeps the paths of the single-broker stack.
broker() {
  B=$1
  B_PLAINTEXT_PORT=$((KAFKA_PLAINTEXT_PORT + BROKER_PORT_STEP * (B - 1)))
  B_SASL_PORT=$((KAFKA_SASL_PORT + BROKER_PORT_STEP * (B - 1)))
  if ((B == 1)); then
    B_CONFIG=$KAFKA_CONFIG B_DATA=$KAFKA_DATA B_PID=$KAFKA_PID B_LOG=$KAFKA_LOG
  else
    B_CONFIG="$KAFKA_HOME/broker-$B/server.properties" B_DATA="$KAFKA_HOME/broker-$B/data"
    B_PID="$STACK_DIR/kafka-$B.pid" B_LOG="$STACK_DIR/kafka-$B.log"
  fi
}

# bootstrap_list HOST P|S prints every broker's PLAINTEXT (P) or SASL_SSL (S) address, comma-separated.
bootstrap_list() {
  local i out=()
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    if [[ $2 == P ]]; then out+=("$1:$B_PLAINTEXT_PORT"); else out+=("$1:$B_SASL_PORT"); fi
  done
  broker 1
  local IFS=,
  echo "${out[*]}"
}

save_ports() {
  local v
  for v in "${PORT_VARS[@]}"; do echo "$v=${!v}"; done >"$PORTS_FILE"
}

java_bin() {
  if [[ -n ${JAVA_HOME:-} && -x $JAVA_HOME/bin/java ]]; then
    echo "$JAVA_HOME/bin/java"
  else
    command -v java || die "java not found (Kafka needs Java 17 or newer on PATH or in JAVA_HOME)"
  fi
}

java_home() { dirname "$(dirname "$(readlink -f "$(java_bin)")")"; }

# --- processes and ports (port_open, pid_alive, running_pid, stop_pid, write_private: dev/lib/proc.sh) ---

require_port_free() { # port name
  if port_open "$1"; then
    die "port $1 ($2) is in use by another process; stop it or choose another port with $2=..."
  fi
}

wait_until() { # timeout-seconds description pid logfile command...
  local timeout=$1 what=$2 pid=$3 logfile=$4
  shift 4
  local deadline=$((SECONDS + timeout))
  until "$@"; do
    if ! pid_alive "$pid"; then
      tail -n 30 "$logfile" >&2 || true
      die "$what: the process exited during startup; see $logfile"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 30 "$logfile" >&2 || true
      die "$what: not ready within ${timeout}s; see $logfile"
    fi
    sleep 0.25
  done
}

random_secret() { openssl rand -hex 24; }

# --- downloads -------------------------------------------------------------------------------------------

ensure_kafka_jars() {
  local stamp="$KAFKA_LIBS/.complete" want
  want=$(sha256sum "$ROOT/dev/kafka/pom.xml" | cut -d' ' -f1)
  if [[ -f $stamp && $(<"$stamp") == "$want" ]]; then return; fi
  command -v mvn >/dev/null || die "mvn not found: it fetches the Kafka $KAFKA_VERSION jars listed in dev/kafka/pom.xml"
  log "fetching Kafka $KAFKA_VERSION jars into ${KAFKA_LIBS#"$ROOT/"}"
  rm -rf "$KAFKA_LIBS"
  mkdir -p "$KAFKA_LIBS" "$CACHE/kafka"
  # maven.repo.local keeps mvn's own download cache under .cache/ too.
  if ! (cd "$ROOT/dev/kafka" && mvn -q -B -Dmaven.repo.local="$CACHE/m2" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$KAFKA_LIBS") >"$CACHE/kafka/mvn.log" 2>&1; then
    tail -n 20 "$CACHE/kafka/mvn.log" >&2
    die "downloading the Kafka $KAFKA_VERSION jars (org.apache.kafka:kafka_2.13 and kafka-tools via dev/kafka/pom.xml) with mvn failed; see ${CACHE#"$ROOT/"}/kafka/mvn.log"
  fi
  [[ -f $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar ]] || die "mvn ran but $KAFKA_LIBS/kafka_2.13-$KAFKA_VERSION.jar is missing"
  echo "$want" >"$stamp"
}

ensure_venv() {
  local lock="$ROOT/dev/moto/requirements.lock" logf="$CACHE/venv-stack.log"
  if [[ -f $VENV/.complete && -x $VENV/bin/moto_server ]]; then return; fi
  command -v python3 >/dev/null || die "python3 not found: it runs the Secrets Manager emulator (moto server)"
  log "installing the Secrets Manager emulator (moto server, dev/moto/requirements.lock) into ${VENV#"$ROOT/"}"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" >"$logf" 2>&1 ||
    ! PIP_CACHE_DIR="$CACHE/pip" "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$lock" \
      >>"$logf" 2>&1; then
    tail -n 20 "$logf" >&2
    die "installing moto, flask and boto3 from dev/moto/requirements.lock into ${VENV#"$ROOT/"} failed; see ${logf#"$ROOT/"}"
  fi
  [[ -x $VENV/bin/moto_server ]] || die "pip ran but $VENV/bin/moto_server is missing"
  touch "$VENV/.complete"
}

# --- Kafka -----------------------------------------------------------------------------------------------

kafka_java() { # class args...: run a Kafka class from the cached jars in the foreground
  local class=$1
  shift
  "$(java_bin)" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" "$class" "$@"
}

# kafka_prepare makes what every broker shares (the CA and certificates, the SASL passwords), then renders
# and formats the selected broker's config and storage.
kafka_prepare() {
  mkdir -p "$KAFKA_HOME" "$B_DATA"
  "$ROOT/dev/kafka/certs.sh" "$KAFKA_TLS" || die "generating the broker's CA and certificate under $KAFKA_TLS failed"
  local f roles=broker controller_listener=""
  for f in sasl-password sasl-test-password; do
    [[ -s $KAFKA_HOME/$f ]] || random_secret | write_private "$KAFKA_HOME/$f"
  done
  if ((B == 1)); then
    roles=broker,controller controller_listener=",CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT"
  fi
  sed -e "s#@PLAINTEXT_PORT@#$B_PLAINTEXT_PORT#g" \
    -e "s#@SASL_PORT@#$B_SASL_PORT#g" \
    -e "s#@CONTROLLER_PORT@#$KAFKA_CONTROLLER_PORT#g" \
    -e "s#@CONTROLLER_LISTENER@#$controller_listener#g" \
    -e "s#@PROCESS_ROLES@#$roles#g" \
    -e "s#@NODE_ID@#$B#g" \
    -e "s#@SASL_USERNAME@#$SASL_USERNAME#g" \
    -e "s#@SASL_PASSWORD@#$(<"$KAFKA_HOME/sasl-password")#g" \
    -e "s#@SASL_TEST_USERNAME@#$SASL_TEST_USERNAME#g" \
    -e "s#@SASL_TEST_PASSWORD@#$(<"$KAFKA_HOME/sasl-test-password")#g" \
    -e "s#@TLS_DIR@#$KAFKA_TLS#g" \
    -e "s#@DATA_DIR@#$B_DATA#g" \
    -e "s#@BROKER_SESSION_TIMEOUT_MS@#$KAFKA_BROKER_SESSION_TIMEOUT_MS#g" \
    "$ROOT/dev/kafka/server.properties.in" | write_private "$B_CONFIG"
  if [[ ! -f $B_DATA/meta.properties ]]; then
    log "formatting $(kafka_name)'s storage (cluster id $CLUSTER_ID)"
    kafka_java kafka.tools.StorageTool format --ignore-formatted -t "$CLUSTER_ID" -c "$B_CONFIG" \
      >>"$B_LOG" 2>&1 || die "formatting Kafka storage in $B_DATA failed; see $B_LOG"
  fi
}

# kafka_name names the selected broker in messages: "kafka" alone when there is one.
kafka_name() { if ((KAFKA_BROKERS_COUNT == 1)); then echo kafka; else echo "kafka-$B"; fi; }

# kafka_ready: both client listeners of the selected broker accept connections and this run of it logged that
# it started (it does so once it has joined the quorum and is unfenced). LOG_MARK[B] is the log's line count
# at start.
declare -A LOG_MARK=()
kafka_ready() {
  port_open "$B_PLAINTEXT_PORT" && port_open "$B_SASL_PORT" &&
    tail -n "+$((LOG_MARK[$B] + 1))" "$B_LOG" 2>/dev/null | grep -q "Kafka Server started"
}

# kafka_launch starts the selected broker unless it runs, and sets LAUNCHED to its pid (empty when it ran).
kafka_launch() {
  local pid
  LAUNCHED=""
  if pid=$(running_pid "$B_PID" "$B_CONFIG"); then
    { port_open "$B_PLAINTEXT_PORT" && port_open "$B_SASL_PORT"; } ||
      die "$(kafka_name) runs (pid $pid) but does not answer on ports $B_PLAINTEXT_PORT/$B_SASL_PORT; run dev/stack.sh down first"
    log "$(kafka_name) already running (pid $pid)"
    return
  fi
  require_port_free "$B_PLAINTEXT_PORT" KAFKA_PLAINTEXT_PORT
  require_port_free "$B_SASL_PORT" KAFKA_SASL_PORT
  ((B > 1)) || require_port_free "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  [[ -f $B_CONFIG ]] || kafka_prepare
  log "starting $(kafka_name) $KAFKA_VERSION (log: $B_LOG)"
  touch "$B_LOG"
  LOG_MARK[$B]=$(wc -l <"$B_LOG")
  # setsid: its own session and process group, so down can signal it as a whole and a terminal's ^C does not.
  setsid "$(java_bin)" "-Xms$KAFKA_HEAP_MIN" "-Xmx$KAFKA_HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$ROOT/dev/kafka/log4j2.properties" \
    -cp "$KAFKA_LIBS/*" kafka.Kafka "$B_CONFIG" </dev/null >>"$B_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$B_PID"
  STARTED+=("kafka:$pid")
  LAUNCHED=$pid
}

kafka_wait() { # pid: wait until the selected broker, launched as pid, is ready
  wait_until "$UP_TIMEOUT" "$(kafka_name)" "$1" "$B_LOG" kafka_ready
  log "$(kafka_name) ready (pid $1)"
}

# kafka_start starts broker $1, or every broker when $1 is empty: broker 1 first (the controller the others
# register with), then the others side by side; each is waited for until ready.
kafka_start() {
  local only=${1:-} i
  local -A pids=()
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    [[ -z $only || $only == "$i" ]] || continue
    broker "$i"
    kafka_launch
    [[ -n $LAUNCHED ]] || continue
    if ((i == 1)); then kafka_wait "$LAUNCHED"; else pids[$i]=$LAUNCHED; fi
  done
  for i in "${!pids[@]}"; do
    broker "$i"
    kafka_wait "${pids[$i]}"
  done
  broker 1
}

# kafka_stop stops broker $2, or every broker when it is empty (broker 1, the controller, last, so the others
# shut down cleanly); $1 is --kill or empty.
kafka_stop() {
  local kill=${1:-} only=${2:-} i pid
  for ((i = KAFKA_BROKERS_COUNT; i >= 1; i--)); do
    [[ -z $only || $only == "$i" ]] || continue
    broker "$i"
    if pid=$(running_pid "$B_PID" "$B_CONFIG"); then
      if [[ $kill == --kill ]]; then
        log "killing $(kafka_name) (pid $pid) with SIGKILL"
        kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid"
        while pid_alive "$pid"; do sleep 0.1; done
      else
        stop_pid "$(kafka_name)" "$pid"
      fi
    fi
    rm -f "$B_PID"
  done
  broker 1
}

# kafka_topics creates the pipeline's topics unless every partition directory of them is already on disk
# (a deleted topic's directories are renamed away, so it is created again), which saves two JVM starts
# on a warm up.
kafka_topics() {
  local spec name parts creates=() rc=0 i
  for spec in "${TOPICS[@]}"; do
    name=${spec%%:*} parts=${spec##*:}
    if ((KAFKA_BROKERS_COUNT == 1)); then # with more, the partitions' directories spread over the brokers
      for ((i = 0; i < parts; i++)); do [[ -d $KAFKA_DATA/$name-$i ]] || break; done
      ((i == parts)) && continue
    fi
    kafka_java org.apache.kafka.tools.TopicCommand --bootstrap-server "$(bootstrap_list 127.0.0.1 P)" \
      --create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1 \
      >>"$KAFKA_LOG" 2>&1 &
    creates+=("$!")
  done
  for pid in "${creates[@]}"; do wait "$pid" || rc=1; done
  ((rc == 0)) || die "creating topics ${TOPICS[*]} failed; see $KAFKA_LOG"
}

kafka_env() {
  cat <<EOF
# kafka $KAFKA_VERSION (dev/stack.sh)
export KAFKA_VERSION='$KAFKA_VERSION'
export KAFKA_PLAINTEXT_BOOTSTRAP='$(bootstrap_list 127.0.0.1 P)'
export KAFKA_BOOTSTRAP_SERVER='$(bootstrap_list localhost S)'
export KAFKA_SASL_USERNAME='$SASL_USERNAME'
export KAFKA_SASL_PASSWORD='$(<"$KAFKA_HOME/sasl-password")'
export KAFKA_SASL_TEST_USERNAME='$SASL_TEST_USERNAME'
export KAFKA_SASL_TEST_PASSWORD='$(<"$KAFKA_HOME/sasl-test-password")'
export KAFKA_CA_FILE='$KAFKA_TLS/ca.pem'
export KAFKA_TOPIC='logs_4'
export KAFKA_DLQ_TOPIC='logs_4_dlq'
export KAFKA_HOME='$KAFKA_HOME'
export KAFKA_CONFIG='$KAFKA_CONFIG'
export KAFKA_PID_FILE='$KAFKA_PID'
export KAFKA_LOG_DIR='$KAFKA_DATA'
export KAFKA_LOG_FILE='$KAFKA_LOG'
export KAFKA_JAVA_HOME='$(java_home)'
export KAFKA_CLASSPATH='$KAFKA_LIBS/*'
export KAFKA_START_CMD='$SELF kafka-start $STACK_DIR'
export KAFKA_STOP_CMD='$SELF kafka-stop $STACK_DIR'
export KAFKA_KILL_CMD='$SELF kafka-stop --kill $STACK_DIR'
EOF
  ((KAFKA_BROKERS_COUNT > 1)) || return 0
  local i
  echo "export KAFKA_BROKERS_COUNT='$KAFKA_BROKERS_COUNT'"
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    cat <<EOF
export KAFKA_BROKER_${i}_PLAINTEXT='127.0.0.1:$B_PLAINTEXT_PORT'
export KAFKA_BROKER_${i}_PID_FILE='$B_PID'
export KAFKA_BROKER_${i}_START_CMD='$SELF kafka-start --broker $i $STACK_DIR'
export KAFKA_BROKER_${i}_STOP_CMD='$SELF kafka-stop --broker $i $STACK_DIR'
export KAFKA_BROKER_${i}_KILL_CMD='$SELF kafka-stop --kill --broker $i $STACK_DIR'
EOF
  done
  broker 1
}

# --- Secrets Manager emulator ----------------------------------------------------------------------------

moto_marker() { echo "moto_server -H 127.0.0.1 -p $MOTO_PORT"; }

moto_start() {
  local pid
  mkdir -p "$MOTO_HOME"
  if pid=$(running_pid "$MOTO_PID" "$(moto_marker)"); then
    port_open "$MOTO_PORT" || die "moto runs (pid $pid) but does not answer on port $MOTO_PORT; run dev/stack.sh down first"
    log "moto already running (pid $pid)"
    return
  fi
  require_port_free "$MOTO_PORT" MOTO_PORT
  log "starting moto server (log: $MOTO_LOG)"
  : >"$MOTO_LOG"
  rm -f "$MOTO_HOME/keys.json" # the emulator keeps state in memory: a new process knows no keys
  setsid "$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" </dev/null >>"$MOTO_LOG" 2>&1 &
  pid=$!
  echo "$pid" >"$MOTO_PID"
  STARTED+=("moto:$pid")
  wait_until "$UP_TIMEOUT" "moto server" "$pid" "$MOTO_LOG" \
    curl -fs -o /dev/null --max-time 2 "http://127.0.0.1:$MOTO_PORT/moto-api/"
  log "moto ready (pid $pid)"
}

moto_seed() {
  local out
  out=$("$VENV/bin/python" "$ROOT/dev/moto/seed.py" --endpoint "http://127.0.0.1:$MOTO_PORT" \
    --secret-name "$SECRET_NAME" --bootstrap "$(bootstrap_list localhost S)" --username "$SASL_USERNAME" \
    --password-file "$KAFKA_HOME/sasl-password" --keys-file "$MOTO_HOME/keys.json" \
    --iam-auth "$MOTO_IAM_AUTH" 2>>"$MOTO_LOG") || die "seeding $SECRET_NAME into the emulator failed; see $MOTO_LOG"
  { echo "# Secrets Manager emulator, moto server (dev/stack.sh)"; echo "$out"; echo "export MOTO_PID_FILE='$MOTO_PID'"; echo "export MOTO_LOG_FILE='$MOTO_LOG'"; } |
    write_private "$STACK_DIR/moto.env"
}

moto_stop() {
  local pid
  if pid=$(running_pid "$MOTO_PID" "$(moto_marker)"); then stop_pid moto "$pid"; fi
  rm -f "$MOTO_PID" "$MOTO_HOME/keys.json"
}

# --- ClickHouse (dev/clickhouse.sh, when present) --------------------------------------------------------

clickhouse() {
  [[ -x $ROOT/dev/clickhouse.sh && $STACK_CLICKHOUSE != off ]] || return 0
  STACK_DIR="$STACK_DIR" "$ROOT/dev/clickhouse.sh" "$@"
}

# --- the env file ----------------------------------------------------------------------------------------

# assemble_env rebuilds stack.env from the per-component fragments (kafka.env, moto.env, clickhouse.env, ...)
# in one rename, so readers never see half a file and a component's lines never appear twice.
assemble_env() {
  local f
  {
    echo "# Written by dev/stack.sh up from the component files beside it; do not edit. Holds local-only secrets."
    echo "export STACK_DIR='$STACK_DIR'"
    for f in "$STACK_DIR/kafka.env" "$STACK_DIR/moto.env"; do [[ -f $f ]] && cat "$f"; done
    for f in "$STACK_DIR"/*.env; do
      case ${f##*/} in stack.env | kafka.env | moto.env) continue ;; esac
      [[ -f $f ]] && cat "$f"
    done
  } | write_private "$ENV_FILE"
}

# stop_started_on_failure: when up or kafka-start fails, what this run started is stopped again, so a
# failed start leaves no process behind (what was already running before stays).
STARTED=()
stop_started_on_failure() {
  local rc=$? entry
  ((rc == 0)) && return
  for entry in "${STARTED[@]}"; do
    stop_pid "${entry%%:*}" "${entry##*:}" || true
    rm -f "$STACK_DIR/${entry%%:*}.env"
  done
  # The env file must not point tests at processes that are gone.
  ((${#STARTED[@]} == 0)) || rm -f "$ENV_FILE"
  exit "$rc"
}

# --- commands --------------------------------------------------------------------------------------------

cmd_up() {
  local t0=$SECONDS
  trap stop_started_on_failure EXIT
  command -v openssl >/dev/null || die "openssl not found: it generates the broker's CA and certificate"
  command -v curl >/dev/null || die "curl not found: it checks the emulator's readiness"
  local kafka_running=() any_running=0 moto_running=0 i
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    kafka_running[i]=0
    if running_pid "$B_PID" "$B_CONFIG" >/dev/null; then kafka_running[i]=1 any_running=1; fi
  done
  running_pid "$MOTO_PID" "$(moto_marker)" >/dev/null && moto_running=1
  if [[ -n $PORTS_CHANGED ]] && ((any_running || moto_running)); then
    die "the stack in $STACK_DIR runs on other ports ($PORTS_CHANGED); run dev/stack.sh down first, or use another STACK_DIR"
  fi
  # Fail fast, before any download or JVM start, when a port we need is someone else's.
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    ((kafka_running[i])) && continue
    broker "$i"
    require_port_free "$B_PLAINTEXT_PORT" KAFKA_PLAINTEXT_PORT
    require_port_free "$B_SASL_PORT" KAFKA_SASL_PORT
    ((i > 1)) || require_port_free "$KAFKA_CONTROLLER_PORT" KAFKA_CONTROLLER_PORT
  done
  ((moto_running)) || require_port_free "$MOTO_PORT" MOTO_PORT
  save_ports

  # Both downloads at once on a cold cache (a warm one returns at once and prints nothing).
  heartbeat_start "fetching the Kafka jars and installing the Secrets Manager emulator" "about 5 min"
  ensure_kafka_jars &
  local jars=$!
  ensure_venv
  wait "$jars" || exit 1
  heartbeat_stop

  heartbeat_start "starting Kafka" "about 1 min"
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    ((kafka_running[i])) || kafka_prepare
  done
  kafka_start
  heartbeat_stop
  kafka_env | write_private "$STACK_DIR/kafka.env"
  moto_start
  kafka_topics &
  local topics=$!
  moto_seed
  wait "$topics" || exit 1
  assemble_env
  clickhouse up || die "dev/clickhouse.sh up failed"
  assemble_env
  log "stack up in $((SECONDS - t0))s; env: $ENV_FILE"
  cmd_status || die "a component is not running after up; see the lines above"
}

cmd_down() {
  clickhouse down || log "dev/clickhouse.sh down failed; continuing"
  kafka_stop
  moto_stop
  rm -f "$ENV_FILE" "$STACK_DIR/kafka.env" "$STACK_DIR/moto.env"
  log "stack down"
}

cmd_status() {
  local quiet=0 rc=0 pid
  [[ ${1:-} == --quiet ]] && quiet=1
  say() { ((quiet)) || printf '%-11s %s\n' "$@"; }
  local i controller
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    controller=""
    ((i > 1)) || controller="  controller 127.0.0.1:$KAFKA_CONTROLLER_PORT"
    if pid=$(running_pid "$B_PID" "$B_CONFIG") && port_open "$B_PLAINTEXT_PORT" && port_open "$B_SASL_PORT"; then
      say "$(kafka_name)" "running  pid $pid  PLAINTEXT 127.0.0.1:$B_PLAINTEXT_PORT  SASL_SSL localhost:$B_SASL_PORT$controller"
    else
      say "$(kafka_name)" "stopped  (log: $B_LOG)"
      rc=1
    fi
  done
  broker 1
  if pid=$(running_pid "$MOTO_PID" "$(moto_marker)") && port_open "$MOTO_PORT"; then
    say moto "running  pid $pid  http://127.0.0.1:$MOTO_PORT  secret $SECRET_NAME  iam $MOTO_IAM_AUTH"
  else
    say moto "stopped  (log: $MOTO_LOG)"
    rc=1
  fi
  if [[ -x $ROOT/dev/clickhouse.sh && $STACK_CLICKHOUSE != off ]]; then
    if ((quiet)); then clickhouse status >/dev/null 2>&1 || rc=1; else clickhouse status || rc=1; fi
  fi
  if [[ -f $ENV_FILE ]]; then say env "$ENV_FILE"; else say env "missing ($ENV_FILE)"; rc=1; fi
  return "$rc"
}

# session_rss_kb PID: the resident memory of the process and everything in its session (each component is
# started with setsid, so its session is all of it), in KiB.
session_rss_kb() { ps -o rss= --sid "$1" 2>/dev/null | awk '{s += $1} END {print s + 0}'; }

cmd_memory() {
  local total=0 kb pid i
  local -a lines=()
  add() { # name pid
    kb=$(session_rss_kb "$2")
    total=$((total + kb))
    lines+=("$(printf '%-11s %6d MB  (pid %s)' "$1" $((kb / 1024)) "$2")")
  }
  for ((i = 1; i <= KAFKA_BROKERS_COUNT; i++)); do
    broker "$i"
    if pid=$(running_pid "$B_PID" "$B_CONFIG"); then add "$(kafka_name)" "$pid"; fi
  done
  broker 1
  if pid=$(running_pid "$MOTO_PID" "$(moto_marker)"); then add moto "$pid"; fi
  if pid=$(running_pid "$STACK_DIR/clickhouse.pid" "server.py --data $STACK_DIR/clickhouse/data "); then add clickhouse "$pid"; fi
  if [[ ${1:-} == --total ]]; then
    echo "$((total / 1024)) MB"
    return
  fi
  ((${#lines[@]})) && printf '%s\n' "${lines[@]}"
  printf '%-11s %6d MB\n' total $((total / 1024))
}

main() {
  local cmd=${1:-}
  shift || true
  case $cmd in
  up) set_stack_dir && cmd_up ;;
  down) set_stack_dir && cmd_down ;;
  status) set_stack_dir && cmd_status "$@" ;;
  memory) set_stack_dir && cmd_memory "$@" ;;
  kafka-start | kafka-stop)
    local kill="" only=""
    while (($#)); do
      case $1 in
      --kill) kill=--kill ;;
      --broker)
        only=${2:?--broker needs a broker number}
        shift
        ;;
      *) break ;;
      esac
      shift
    done
    set_stack_dir "${1:-}"
    if [[ -n $only ]] && ! [[ $only =~ ^[0-9]+$ ]] || [[ -n $only ]] && ((only < 1 || only > KAFKA_BROKERS_COUNT)); then
      die "--broker $only: this stack has brokers 1 to $KAFKA_BROKERS_COUNT"
    fi
    if [[ $cmd == kafka-stop ]]; then
      kafka_stop "$kill" "$only"
    else
      [[ -z $kill ]] || die "kafka-start takes no --kill"
      broker "${only:-1}"
      [[ -f $B_CONFIG ]] || die "no broker config in ${B_CONFIG%/*}; run dev/stack.sh up first"
      ensure_kafka_jars
      trap stop_started_on_failure EXIT
      kafka_start "$only"
    fi
    ;;
  purge)
    set_stack_dir
    cmd_down
    rm -rf "$STACK_DIR"
    log "removed $STACK_DIR"
    ;;
  *)
    sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
}

main "$@"
