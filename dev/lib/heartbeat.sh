# shellcheck shell=bash
# Progress lines for long steps, shared by dev/demo.sh, dev/stack.sh and dev/clickhouse.sh (sourced).
#
#   heartbeat_start WHAT FIRST_TIME   from now on, every HEARTBEAT_SECONDS (default 15; 0: never) print on
#                                     stderr "  ... still WHAT (1m40s so far; FIRST_TIME the first time)"
#   heartbeat_stop                    stop printing (safe when none runs)
#   with_heartbeat WHAT FIRST_TIME CMD...   run CMD in the foreground between the two; CMD's exit status
#   fmt_duration SECONDS              1m40s, 42s
#
# A step that is quick (a warm cache) ends before the first line, so it prints nothing. The printer is a
# background loop that stops by itself within a second once the script that started it is gone, so a script
# that dies in the middle of a step (die, set -e) leaves no printer behind.

fmt_duration() {
  local s=$1
  if ((s >= 60)); then printf '%dm%02ds' $((s / 60)) $((s % 60)); else printf '%ds' "$s"; fi
}

HEARTBEAT_PID=""
heartbeat_start() {
  heartbeat_stop
  local what=$1 first=$2 every=${HEARTBEAT_SECONDS:-15} owner=$$ t0=$SECONDS
  ((every > 0)) || return 0
  (
    n=0
    while sleep 1; do
      kill -0 "$owner" 2>/dev/null || exit 0
      n=$((n + 1))
      ((n % every == 0)) || continue
      printf '  ... still %s (%s so far; %s the first time)\n' "$what" "$(fmt_duration $((SECONDS - t0)))" "$first" >&2
    done
  ) &
  HEARTBEAT_PID=$!
}

heartbeat_stop() {
  [[ -n $HEARTBEAT_PID ]] || return 0
  kill "$HEARTBEAT_PID" 2>/dev/null || true
  wait "$HEARTBEAT_PID" 2>/dev/null || true
  HEARTBEAT_PID=""
}

with_heartbeat() {
  local what=$1 first=$2 rc=0
  shift 2
  heartbeat_start "$what" "$first"
  "$@" || rc=$?
  heartbeat_stop
  return "$rc"
}
