#!/usr/bin/env bash
# Checks the machine-wide prerequisites of make demo and make test, all at once, before any other work.
# Everything else is installed by the project itself under .cache/.
#
#   dev/prereqs.sh [demo|test]   check what that target needs (default demo); as root with apt-get, install the
#                                missing Debian packages first (saying so); then exit 1 with one message naming
#                                every prerequisite still missing, or 0
#   dev/prereqs.sh --check [demo|test]   the same, but never install anything
#
# demo needs: Go 1.21 or newer (go.mod's toolchain line then has the go command fetch go1.26.10 through the Go
# module proxy), Java 17 or newer (Kafka), Python 3.11 or newer with venv (the Secrets Manager emulator, the
# ClickHouse engine), a C compiler (cgo: librdkafka), Maven (fetches the Kafka jars), curl and openssl.
# test needs as well: npm (installs the CDK CLI and the Node.js it runs on); the CDK app builds the Lambdas for
# this machine's architecture with the C compiler above. The benchmark's peers (kcat, rsyslog, syslog-ng) are installed by dev/bench-peers.sh.
set -euo pipefail

install=1
if [[ ${1:-} == --check ]]; then
  install=0
  shift
fi
target=${1:-demo}
case $target in demo | test) ;; *)
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
  exit 2
  ;;
esac

log() { printf 'prereqs: %s\n' "$*" >&2; }

# version_at_least HAVE WANT: dotted versions compared numerically.
version_at_least() { [[ $(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1) == "$2" ]]; }

missing=() # "what: why" lines
packages=() # Debian packages that provide what is missing

need() { # description debian-packages...: record a missing prerequisite
  missing+=("$1")
  shift
  packages+=("$@")
}

check() {
  missing=() packages=()
  local v
  if ! command -v go >/dev/null; then
    need "Go 1.21 or newer (go on PATH; not from Debian 12, whose Go is older)"
  else
    v=$(GOTOOLCHAIN=local go env GOVERSION 2>/dev/null | sed 's/^go//')
    version_at_least "${v:-0}" 1.21 || need "Go 1.21 or newer (found $v; go.mod's toolchain line needs 1.21 to switch toolchains)"
  fi
  if ! command -v java >/dev/null && [[ ! -x ${JAVA_HOME:-/nonexistent}/bin/java ]]; then
    need "Java 17 or newer (java on PATH or in JAVA_HOME)" openjdk-17-jre-headless
  else
    v=$("$(command -v java || echo "$JAVA_HOME/bin/java")" -version 2>&1 | sed -n '1s/.*version "\([0-9.]*\).*/\1/p')
    [[ $v == 1.* ]] && v=${v#1.}
    version_at_least "${v:-0}" 17 || need "Java 17 or newer (found ${v:-an unknown version})" openjdk-17-jre-headless
  fi
  if ! command -v python3 >/dev/null; then
    need "Python 3.11 or newer with venv (python3)" python3 python3-venv
  elif ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    need "Python 3.11 or newer (found $(python3 -V 2>&1))" python3 python3-venv
  elif ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    need "Python's venv module with ensurepip (python3 -m venv)" python3-venv
  fi
  command -v "${CC:-cc}" >/dev/null || command -v gcc >/dev/null || need "a C compiler (cc or gcc) for cgo" gcc libc6-dev
  command -v mvn >/dev/null || need "Maven (mvn fetches the Kafka jars)" maven
  command -v curl >/dev/null || need "curl" curl
  command -v openssl >/dev/null || need "openssl (the broker's certificates)" openssl
  if [[ $target == test ]]; then
    command -v npm >/dev/null || need "npm (installs the pinned CDK CLI and the Node.js it runs on)" npm
  fi
}

check
if ((${#missing[@]} && ${#packages[@]} && install)) && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
  read -r -a pkgs <<<"$(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')"
  log "installing missing prerequisites from Debian's packages as root (apt-get install ${pkgs[*]})"
  export DEBIAN_FRONTEND=noninteractive
  # DPkg::Lock::Timeout: wait for another apt or dpkg run (unattended upgrades, another install) instead of failing.
  apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || log "apt-get update failed"
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "${pkgs[@]}" >/dev/null || log "apt-get install ${pkgs[*]} failed"
  check
fi
if ((${#missing[@]})); then
  {
    echo "prereqs: error: make $target needs what this machine lacks:"
    printf '  - %s\n' "${missing[@]}"
    if ((${#packages[@]})); then
      echo "  On Debian or Ubuntu, as root: apt-get install $(printf '%s\n' "${packages[@]}" | sort -u | xargs)"
    fi
  } >&2
  exit 1
fi
