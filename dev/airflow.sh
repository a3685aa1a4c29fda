#!/usr/bin/env bash
# The Python environment of the DAG (Apache Airflow, the Amazon provider, pytest, confluent-kafka) and the
# DAG's tests under real Airflow.
#
#   dev/airflow.sh install            create or reuse the venv from the lock file; fail loudly if pip fails
#   dev/airflow.sh test [ARGS...]     install, then run pytest on dags/tests (needs `dev/stack.sh up` and
#                                     `make build`); exits non-zero on any failure, and when no test ran
#   dev/airflow.sh run CMD [ARGS...]  run CMD inside the venv with AIRFLOW_HOME=.cache/airflow-home and the
#                                     DAG folder set, e.g. `dev/airflow.sh run airflow standalone`
#   dev/airflow.sh lock               re-resolve the lock from its .in file in a fresh venv (needs the network)
#
# Environment: AIRFLOW_LOCK (default dev/airflow/requirements.lock, the newest Airflow;
# dev/airflow/requirements-3.0.lock is Amazon MWAA's Airflow 3.0.6 with its constraints' web stack, which
# make test runs too; dev/airflow/requirements-2.10.lock is Airflow 2.10.5), AIRFLOW_VENV (default
# .cache/venv-airflow for the default lock, else .cache/venv-airflow-<suffix of the lock's name>), PYTHON
# (default python3, 3.11 or newer).
# The install is keyed by the lock's hash: a second run with the same lock reuses the venv as it is.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE="$ROOT/.cache"
LOCK=${AIRFLOW_LOCK:-$ROOT/dev/airflow/requirements.lock}
[[ $LOCK = /* ]] || LOCK="$ROOT/$LOCK"
LOCK_NAME=$(basename "$LOCK" .lock)
if [[ $LOCK_NAME == requirements ]]; then
  DEFAULT_VENV="$CACHE/venv-airflow"
else
  DEFAULT_VENV="$CACHE/venv-airflow-${LOCK_NAME#requirements-}"
fi
VENV=${AIRFLOW_VENV:-$DEFAULT_VENV}
PYTHON=${PYTHON:-python3}
INSTALL_LOG="$VENV.log"

log() { printf 'airflow: %s\n' "$*" >&2; }
die() {
  printf 'airflow: error: %s\n' "$*" >&2
  exit 1
}
rel() { printf '%s' "${1#"$ROOT/"}"; }

check_python() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found: the DAG's environment needs Python 3.11 or newer"
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' ||
    die "$PYTHON is $("$PYTHON" -V 2>&1); the DAG's environment needs Python 3.11 or newer"
}

# install creates the venv and installs exactly the lock's pins (--no-deps: the lock is the whole set),
# then lets pip check that the set is consistent. The stamp holds the lock's hash and the interpreter,
# so a changed lock or Python reinstalls and an unchanged one costs nothing.
install() {
  [[ -f $LOCK ]] || die "lock file $(rel "$LOCK") not found (create it with: dev/airflow.sh lock)"
  check_python
  local stamp="$VENV/.lock.sha256" want
  want="$(sha256sum "$LOCK" | cut -d' ' -f1) $("$PYTHON" -V 2>&1)"
  if [[ -f $stamp && $(<"$stamp") == "$want" && -x $VENV/bin/airflow && -x $VENV/bin/pytest ]]; then
    return
  fi
  log "installing $(rel "$LOCK") into $(rel "$VENV") (log: $(rel "$INSTALL_LOG"))"
  local t0=$SECONDS
  mkdir -p "$CACHE"
  rm -rf "$VENV"
  if ! "$PYTHON" -m venv "$VENV" >"$INSTALL_LOG" 2>&1 ||
    ! "$VENV/bin/pip" install --disable-pip-version-check --no-input --no-deps -r "$LOCK" >>"$INSTALL_LOG" 2>&1; then
    tail -n 25 "$INSTALL_LOG" >&2
    die "installing $(rel "$LOCK") into $(rel "$VENV") failed; see $(rel "$INSTALL_LOG")"
  fi
  if ! "$VENV/bin/pip" check --disable-pip-version-check >>"$INSTALL_LOG" 2>&1; then
    tail -n 25 "$INSTALL_LOG" >&2
    die "pip check found inconsistent requirements in $(rel "$VENV") (the lock $(rel "$LOCK") is incomplete); see $(rel "$INSTALL_LOG")"
  fi
  [[ -x $VENV/bin/airflow && -x $VENV/bin/pytest ]] || die "pip ran but $(rel "$VENV")/bin/airflow or pytest is missing"
  echo "$want" >"$stamp"
  log "installed $("$VENV/bin/airflow" version 2>/dev/null | tail -n 1) in $((SECONDS - t0))s"
}

# lock resolves the .in file beside the lock in a throwaway venv and writes every installed package
# with an exact pin.
lock() {
  local in="${LOCK%.lock}.in" tmp
  [[ -f $in ]] || die "$(rel "$in") not found: it lists what the lock $(rel "$LOCK") resolves"
  check_python
  tmp="$CACHE/venv-airflow-resolve-$LOCK_NAME"
  rm -rf "$tmp"
  "$PYTHON" -m venv "$tmp"
  log "resolving $(rel "$in") in $(rel "$tmp")"
  "$tmp/bin/pip" install --disable-pip-version-check --no-input -r "$in" >"$tmp.log" 2>&1 ||
    { tail -n 25 "$tmp.log" >&2; die "resolving $(rel "$in") failed; see $(rel "$tmp.log")"; }
  "$tmp/bin/pip" check --disable-pip-version-check || die "the resolved set of $(rel "$in") is inconsistent"
  {
    echo "# Exact pins of everything installed from $(basename "$in") on Python $("$tmp/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])'),"
    echo "# written by \`dev/airflow.sh lock\` (pip freeze of a fresh venv). dev/airflow.sh installs from this file only,"
    echo "# with --no-deps, then runs pip check. To move a version, edit $(basename "$in") and run the lock again."
    "$tmp/bin/pip" freeze --disable-pip-version-check --all | grep -v -E '^(pip|setuptools|wheel)=='
  } >"$LOCK"
  rm -rf "$tmp" "$tmp.log"
  log "wrote $(rel "$LOCK") ($(grep -c '==' "$LOCK") pins)"
}

# airflow_env points Airflow at this repository's DAG folder with a private home and a sqlite DB.
airflow_env() {
  export AIRFLOW_HOME=${AIRFLOW_HOME:-$CACHE/airflow-home}
  export AIRFLOW__CORE__DAGS_FOLDER=${AIRFLOW__CORE__DAGS_FOLDER:-$ROOT/dags}
  export AIRFLOW__CORE__LOAD_EXAMPLES=${AIRFLOW__CORE__LOAD_EXAMPLES:-False}
  export PATH="$VENV/bin:$PATH"
  mkdir -p "$AIRFLOW_HOME"
}

run_tests() {
  install
  log "running the DAG tests with $("$VENV/bin/airflow" version 2>/dev/null | tail -n 1) ($(rel "$VENV"))"
  local rc=0 t0=$SECONDS
  # The tests give Airflow its own home per session; nothing of a developer's AIRFLOW_HOME leaks in.
  env -u AIRFLOW_HOME -u AIRFLOW__CORE__DAGS_FOLDER \
    "$VENV/bin/python" -m pytest -o cache_dir="$CACHE/pytest-dags" --basetemp="$CACHE/pytest-dags-tmp" "$ROOT/dags/tests" "$@" || rc=$?
  log "DAG tests finished in $((SECONDS - t0))s (pytest exit $rc)"
  case $rc in
    0) ;;
    5) die "pytest collected no tests under dags/tests: that is a failure, not a pass" ;;
    *) die "DAG tests failed (pytest exit $rc)" ;;
  esac
}

cmd=${1:-}
[[ $# -gt 0 ]] && shift
case $cmd in
  install) install ;;
  test) run_tests "$@" ;;
  run)
    [[ $# -gt 0 ]] || die "usage: dev/airflow.sh run CMD [ARGS...]"
    install
    airflow_env
    exec "$@"
    ;;
  lock) lock ;;
  *) die "usage: dev/airflow.sh install | test [pytest args] | run CMD [ARGS...] | lock" ;;
esac
