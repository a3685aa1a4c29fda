#!/usr/bin/env bash
# Installs the benchmark's peers from Debian's packages, idempotently, and fails loudly when it cannot:
#   kcat                                   installed with apt-get (a plain client, no service)
#   rsyslog + rsyslog-kafka (omkafka)      fetched with apt-get download and unpacked under .cache/bench/peers
#   rsyslog-gnutls (lmnsd_gtls)            the same: rsyslog's TLS stream driver, for the TLS tests' client
#   syslog-ng-core + syslog-ng-mod-rdkafka fetched with apt-get download and unpacked under .cache/bench/peers
#
# Why the two daemons are unpacked rather than installed: Debian's rsyslog and syslog-ng-core conflict (each
# is "the" system-log-daemon), so they cannot both be installed, and installing either would also hand the
# machine a system logging service. Unpacked, they are plain programs that the benchmark starts and stops
# itself, on loopback, with its own config files; /etc is never touched. Their shared-library dependencies are
# ordinary library packages and are installed with apt-get.
#
#   dev/bench-peers.sh          install what is missing, then print the env lines the harness reads
#   dev/bench-peers.sh --check  exit 0 only when everything is in place (installs nothing)
#
# Output (stdout): shell lines BENCH_KCAT=..., BENCH_RSYSLOGD=..., BENCH_RSYSLOG_MODDIR=..., BENCH_SYSLOG_NG=...,
# BENCH_SYSLOG_NG_MODDIR=..., BENCH_PEERS_LD_LIBRARY_PATH=... (also written to .cache/bench/peers/peers.env).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PEERS="$ROOT/.cache/bench/peers"
DEBS="$PEERS/debs"
TREE="$PEERS/root"
ENV_FILE="$PEERS/peers.env"

# The daemons, unpacked (never installed), and the libraries they and kcat load, installed.
UNPACKED=(rsyslog rsyslog-kafka rsyslog-gnutls syslog-ng-core syslog-ng-mod-rdkafka)
INSTALLED=(kcat libgnutls30 librdkafka1 libestr0 libfastjson4 liblognorm5 libsystemd0 libuuid1 libzstd1 zlib1g
  libcap2 libglib2.0-0 libivykis0 libjson-c5 libnet1 libpcre3 libssl3 libwrap0)

log() { printf 'bench-peers: %s\n' "$*" >&2; }
die() {
  printf 'bench-peers: error: %s\n' "$*" >&2
  exit 1
}

missing_installed() {
  local p out=()
  for p in "${INSTALLED[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || out+=("$p")
  done
  echo "${out[@]}"
}

# The unpacked tree is complete when its stamp names exactly the package versions apt would give now.
want_stamp() {
  local out
  out=$(apt-cache policy "${UNPACKED[@]}" 2>/dev/null |
    awk '/^[^ ].*:$/ {p = substr($0, 1, length($0) - 1)} /^ *Candidate:/ {print p "=" $2}')
  [[ $(wc -l <<<"$out") == "${#UNPACKED[@]}" && $out != *"(none)"* ]] || return 1
  echo "$out"
}

tree_ok() {
  [[ -x $TREE/usr/sbin/rsyslogd && -x $TREE/usr/sbin/syslog-ng && -f $PEERS/.stamp ]] || return 1
  [[ -n $(find_one "$TREE" lmnsd_gtls.so) ]] || return 1
  # Offline reuse: a complete tree is good even when apt's lists are gone; a newer candidate refreshes it.
  local want
  want=$(want_stamp) || return 0
  [[ $want == "$(<"$PEERS/.stamp")" ]]
}

find_one() { # dir name: the first file called name under dir
  find "$1" -name "$2" -print -quit 2>/dev/null
}

write_env() {
  local rsmod ngmod nglib kcat
  kcat=$(command -v kcat) || die "kcat is not on PATH after installing package kcat"
  rsmod=$(dirname "$(find_one "$TREE" omkafka.so)")
  [[ -f $rsmod/imtcp.so ]] || die "rsyslog's imtcp.so is missing beside omkafka.so in $rsmod (packages rsyslog, rsyslog-kafka)"
  [[ -f $rsmod/lmnsd_gtls.so ]] || die "rsyslog's lmnsd_gtls.so is missing beside omkafka.so in $rsmod (package rsyslog-gnutls)"
  ngmod=$(dirname "$(find_one "$TREE/usr/lib" libkafka.so)")
  [[ -f $ngmod/libafsocket.so ]] || die "syslog-ng's libafsocket.so is missing beside libkafka.so in $ngmod (packages syslog-ng-core, syslog-ng-mod-rdkafka)"
  nglib=$(dirname "$(find_one "$TREE/usr/lib" 'libsyslog-ng-*.so*')")
  [[ -d $nglib ]] || die "libsyslog-ng is missing under $TREE/usr/lib (package syslog-ng-core)"
  {
    echo "BENCH_KCAT='$kcat'"
    echo "BENCH_RSYSLOGD='$TREE/usr/sbin/rsyslogd'"
    echo "BENCH_RSYSLOG_MODDIR='$rsmod'"
    echo "BENCH_SYSLOG_NG='$TREE/usr/sbin/syslog-ng'"
    echo "BENCH_SYSLOG_NG_MODDIR='$ngmod'"
    echo "BENCH_PEERS_LD_LIBRARY_PATH='$nglib'"
  } >"$ENV_FILE.tmp"
  mv -f "$ENV_FILE.tmp" "$ENV_FILE"
  cat "$ENV_FILE"
}

smoke() { # each peer starts and reports its version
  local lp
  # shellcheck disable=SC1090
  source "$ENV_FILE"
  "$BENCH_KCAT" -V >/dev/null 2>&1 || die "kcat -V failed"
  "$BENCH_RSYSLOGD" -v >/dev/null 2>&1 || die "$BENCH_RSYSLOGD -v failed (a missing shared library? try: ldd $BENCH_RSYSLOGD)"
  lp="$BENCH_PEERS_LD_LIBRARY_PATH"
  LD_LIBRARY_PATH="$lp" "$BENCH_SYSLOG_NG" --version >/dev/null 2>&1 ||
    die "$BENCH_SYSLOG_NG --version failed (a missing shared library? try: LD_LIBRARY_PATH=$lp ldd $BENCH_SYSLOG_NG)"
}

main() {
  if [[ ${1:-} == --check ]]; then
    [[ -z $(missing_installed) ]] && tree_ok && write_env >/dev/null && smoke
    return
  fi
  command -v apt-get >/dev/null || die "apt-get not found: the peers come from Debian's packages"
  local need
  need=$(missing_installed)
  if [[ -n $need ]] || ! tree_ok; then
    if [[ -n $need ]] && [[ $(id -u) != 0 ]]; then
      die "installing $need needs root (apt-get install); run as root or install them first"
    fi
    log "updating the package lists (apt-get update)"
    # DPkg::Lock::Timeout: wait for another apt or dpkg run (unattended upgrades, another install) instead of failing.
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || die "apt-get update failed"
  fi
  need=$(missing_installed)
  if [[ -n $need ]]; then
    log "installing with apt-get: $need"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends $need >/dev/null ||
      die "apt-get install $need failed"
    need=$(missing_installed)
    [[ -z $need ]] || die "still missing after apt-get install: $need"
  fi
  if ! tree_ok; then
    local stamp
    stamp=$(want_stamp) || die "apt-cache has no candidate for one of ${UNPACKED[*]}; is the Debian package list reachable?"
    log "fetching ${UNPACKED[*]} (apt-get download) and unpacking them into ${PEERS#"$ROOT/"}/root"
    rm -rf "$DEBS" "$TREE"
    mkdir -p "$DEBS" "$TREE"
    # The download runs as the invoking user into our cache, not as apt's sandbox user.
    (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "${UNPACKED[@]}" >/dev/null) ||
      die "apt-get download ${UNPACKED[*]} into $DEBS failed"
    local deb
    for deb in "$DEBS"/*.deb; do
      dpkg-deb -x "$deb" "$TREE" || die "unpacking $deb into $TREE failed"
    done
    echo "$stamp" >"$PEERS/.stamp"
  fi
  write_env
  smoke
  log "peers ready: kcat, rsyslogd (omkafka, gtls), syslog-ng (kafka-c)"
}

main "$@"
