#!/usr/bin/env bash
# Static checks of the Go code: go vet, golangci-lint (pinned version, .golangci.yml) and govulncheck.
#
#   dev/lint.sh               all three; exit 1 if any fails (each runs even when an earlier one failed)
#   dev/lint.sh vet|lint|vuln one of them
#   dev/lint.sh tools         only install the tools and the vulnerability database (make test does this in
#                             the background at its start, so a cold cache builds them while tests run)
#
# The tools are installed with `go install` into .cache/bin at pinned versions, once. govulncheck's
# vulnerability database host is not reachable from here, so the database is built locally: the
# golang.org/x/vulndb module (which holds every report as an OSV JSON file) comes through the Go module
# proxy, and its own cmd/indexdb turns those files into the database layout govulncheck reads with
# -db file://. VULNDB_VERSION picks the snapshot of the reports (pinned, so a run is repeatable;
# VULNDB_VERSION=latest takes the newest); the database lives in .cache/vulndb and is rebuilt only when the
# version changes.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
export CGO_ENABLED=1
# govulncheck judges the standard library of the Go that runs it: go.mod's toolchain line must win.
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line, also where the go env says "local"

GOLANGCI_LINT_VERSION=${GOLANGCI_LINT_VERSION:-v2.15.0}
GOVULNCHECK_VERSION=${GOVULNCHECK_VERSION:-v1.9.0}
VULNDB_VERSION=${VULNDB_VERSION:-v0.0.0-20261105234957-e22db6528018}
BIN="$ROOT/.cache/bin"
VULNDB="$ROOT/.cache/vulndb"

log() { printf 'lint: %s\n' "$*" >&2; }
die() {
  printf 'lint: error: %s\n' "$*" >&2
  exit 1
}

# ensure_tool NAME PACKAGE VERSION: go install PACKAGE@VERSION into .cache/bin unless that version is there.
ensure_tool() {
  local name=$1 pkg=$2 version=$3 stamp="$BIN/.$1.version"
  if [[ -x $BIN/$name && -f $stamp && $(<"$stamp") == "$version" ]]; then return; fi
  log "installing $name $version into ${BIN#"$ROOT/"} (go install $pkg@$version)"
  mkdir -p "$BIN"
  GOBIN="$BIN" go install "$pkg@$version" ||
    die "go install $pkg@$version failed: $name is needed for this check"
  [[ -x $BIN/$name ]] || die "go install $pkg@$version ran but $BIN/$name is missing"
  echo "$version" >"$stamp"
}

# ensure_vulndb: the vulnerability database in .cache/vulndb, built from the golang.org/x/vulndb module.
ensure_vulndb() {
  local stamp="$VULNDB/.version" version=$VULNDB_VERSION dir tmp
  if [[ $version == latest ]]; then
    version=$(cd "$(mktemp -d)" && go list -m -f '{{.Version}}' golang.org/x/vulndb@latest) ||
      die "resolving golang.org/x/vulndb@latest through the Go module proxy failed"
  fi
  if [[ -f $stamp && $(<"$stamp") == "$version" && -f $VULNDB/index/modules.json ]]; then return; fi
  log "building the vulnerability database from golang.org/x/vulndb@$version into ${VULNDB#"$ROOT/"}"
  # Outside the project's module, so that go.mod is never touched.
  dir=$(cd "$(mktemp -d)" && go mod download -json "golang.org/x/vulndb@$version" | sed -n 's/^\t"Dir": "\(.*\)",$/\1/p') ||
    die "downloading golang.org/x/vulndb@$version through the Go module proxy failed"
  [[ -d $dir/data/osv ]] || die "golang.org/x/vulndb@$version has no data/osv directory (looked in '$dir')"
  ensure_tool indexdb golang.org/x/vulndb/cmd/indexdb "$version"
  tmp="$VULNDB.tmp.$$"
  rm -rf "$tmp"
  "$BIN/indexdb" -vulns "$dir/data/osv" -out "$tmp" || { rm -rf "$tmp"; die "indexdb could not build the database from $dir/data/osv"; }
  rm -rf "$VULNDB"
  mv "$tmp" "$VULNDB"
  echo "$version" >"$VULNDB/.version"
  log "vulnerability database: $(find "$VULNDB/ID" -name '*.json' | wc -l) reports"
}

run_vet() { go vet ./...; }

run_tools() {
  ensure_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
  ensure_tool govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
  ensure_vulndb
}

run_lint() {
  ensure_tool golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint "$GOLANGCI_LINT_VERSION"
  # --allow-serial-runners: wait for another golangci-lint run on this machine instead of failing.
  "$BIN/golangci-lint" run --allow-serial-runners ./...
}

run_vuln() {
  ensure_tool govulncheck golang.org/x/vuln/cmd/govulncheck "$GOVULNCHECK_VERSION"
  ensure_vulndb
  log "govulncheck with $(go env GOVERSION) against the reports of golang.org/x/vulndb@$(<"$VULNDB/.version")"
  "$BIN/govulncheck" -db "file://$VULNDB" ./...
}

checks=("${@:-vet lint vuln}")
read -r -a checks <<<"${checks[*]}"
failed=()
for c in "${checks[@]}"; do
  case $c in
  vet | lint | vuln | tools) ;;
  *)
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
    ;;
  esac
  log "== $c"
  # Each check in a subshell: a failed install (die) fails that check, not the others.
  if ! ("run_$c"); then failed+=("$c"); fi
done
if ((${#failed[@]})); then
  log "failed: ${failed[*]}"
  exit 1
fi
log "all passed: ${checks[*]}"
