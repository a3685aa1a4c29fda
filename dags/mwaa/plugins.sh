#!/usr/bin/env bash
# Builds plugins.zip for MWAA: the Go reader as bin/reader, for the subprocess runner on MWAA workers.
#
#   dags/mwaa/plugins.sh [OUT]       build the reader for linux/amd64 and write OUT (default .cache/mwaa/plugins.zip)
#
# READER_BINARY=path packages an already built reader instead of building one. MWAA workers run Amazon
# Linux 2023 on x86_64 (glibc 2.34); the reader links librdkafka statically but needs the C library, so
# the binary is checked to need no newer glibc than that. Upload the zip as the environment's plugins file
# together with dags/mwaa/startup.sh as its startup script.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${1:-$ROOT/.cache/mwaa/plugins.zip}
MAX_GLIBC=2.34

die() {
  printf 'plugins: error: %s\n' "$*" >&2
  exit 1
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bin"

if [[ -n ${READER_BINARY:-} ]]; then
  [[ -x $READER_BINARY ]] || die "READER_BINARY=$READER_BINARY is not an executable file"
  cp "$READER_BINARY" "$work/bin/reader"
else
  [[ $(uname -m) == x86_64 ]] || die "the reader needs cgo; build plugins.zip on an x86_64 Linux host (this is $(uname -m))"
  command -v go >/dev/null || die "go not found: it builds the reader"
  (cd "$ROOT" && CGO_ENABLED=1 GOOS=linux GOARCH=amd64 go build -trimpath -ldflags="-s -w" -o "$work/bin/reader" ./tasks/reader) ||
    die "building ./tasks/reader failed"
fi

command -v objdump >/dev/null || die "objdump not found (binutils): it checks the glibc the reader needs"
objdump -f "$work/bin/reader" | grep -q 'elf64-x86-64' || die "the reader is not a linux/amd64 ELF binary"
needed=$(objdump -T "$work/bin/reader" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
if [[ -n $needed && $(printf '%s\n%s\n' "$needed" "$MAX_GLIBC" | sort -V | tail -n 1) != "$MAX_GLIBC" ]]; then
  die "the reader needs glibc $needed but MWAA workers have $MAX_GLIBC: build it on an older distribution"
fi

mkdir -p "$(dirname "$OUT")"
# zip keeps the Unix mode in each entry, so an unpacker that honours it leaves bin/reader executable.
python3 - "$work" "$OUT" <<'PY'
import os, sys, zipfile
src, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
    info = zipfile.ZipInfo("bin/reader", date_time=(2020, 1, 1, 0, 0, 0))
    info.external_attr = (0o100755 & 0xFFFF) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with open(os.path.join(src, "bin", "reader"), "rb") as f:
        zf.writestr(info, f.read())
PY
printf 'plugins: wrote %s (bin/reader, needs glibc %s)\n' "$OUT" "${needed:-none}" >&2
