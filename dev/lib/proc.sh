# shellcheck shell=bash
# Process helpers shared by dev/stack.sh and dev/clickhouse.sh, which source this file. The sourcing script
# defines log, die and STOP_TIMEOUT (seconds).

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pid_alive: the process exists and is not a zombie. Our processes are reparented when this script exits,
# and a reaper may be slow, so a killed process can linger as a zombie that kill -0 would still report.
pid_alive() {
  local pid=$1 state
  [[ -n $pid && -r /proc/$pid/stat ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z && $state != X ]]
}

# running_pid pidfile marker: prints the pid when that process runs and its command line contains marker
# (the stack's own config path or port), so a recycled pid is never taken for our process.
running_pid() {
  local file=$1 marker=$2 pid
  [[ -s $file ]] || return 1
  pid=$(<"$file")
  pid_alive "$pid" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF -- "$marker" || return 1
  echo "$pid"
}

stop_pid() { # name pid
  local name=$1 pid=$2 deadline
  log "stopping $name (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.2; done
  if pid_alive "$pid"; then
    log "$name did not exit within ${STOP_TIMEOUT}s of SIGTERM; sending SIGKILL"
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 10))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    pid_alive "$pid" && die "$name (pid $pid) is still alive after SIGKILL"
  fi
  # Children of the process group (none expected) go too.
  kill -KILL -- "-$pid" 2>/dev/null || true
}

write_private() { # path: stdin to path, mode 0600, atomically
  local tmp="$1.tmp.$$"
  (umask 077 && cat >"$tmp")
  mv -f "$tmp" "$1"
}
