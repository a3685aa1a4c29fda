#!/usr/bin/env bash
# Static checks: go vet, golangci-lint (pinned version, .golangci.yml) and govulncheck on the Go code; no
# tracked file over 1 MiB unless dev/large-files.txt lists it with a reason; shellcheck on every shell script.
#
#   dev/lint.sh               all five; exit 1 if any fails (each runs even when an earlier one failed)
#   dev/lint.sh vet|lint|vuln|size|shell  some of them
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
#
# The shellcheck run is Debian's package: the one on PATH, else the package fetched with apt-get download and unpacked
# under .cache/shellcheck (never installed machine-wide), again only when apt's candidate version changes.
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

# run_size: a tracked file over MAX_FILE_BYTES (1 MiB) is an error unless dev/large-files.txt lists its path
# with a reason ("path  reason" lines; # starts a comment). A committed binary or data dump is what this
# catches; an entry whose path is no longer tracked is an error too, so the list stays true.
MAX_FILE_BYTES=$((1024 * 1024))
LARGE_FILES=dev/large-files.txt
run_size() {
  local -A allowed=()
  local path reason size bad=0 n=0
  if [[ -f $LARGE_FILES ]]; then
    while read -r path reason; do
      [[ -z $path || $path == '#'* ]] && continue
      [[ -n $reason ]] || { log "$LARGE_FILES: '$path' has no reason"; bad=1; }
      allowed[$path]=1
    done <"$LARGE_FILES"
  fi
  # The index's blobs: what a commit would hold, whether or not the work tree has the file.
  local entry i paths=() shas=() sizes=()
  while IFS= read -r -d '' entry; do
    paths+=("${entry#*$'\t'}")
    read -r _ entry _ <<<"${entry%%$'\t'*}"
    shas+=("$entry")
  done < <(git ls-files -s -z)
  ((${#paths[@]})) || die "git ls-files listed no tracked file"
  mapfile -t sizes < <(printf '%s\n' "${shas[@]}" | git cat-file --batch-check='%(objectsize)')
  ((${#sizes[@]} == ${#paths[@]})) || die "git cat-file gave ${#sizes[@]} sizes for ${#paths[@]} files"
  for i in "${!paths[@]}"; do
    path=${paths[i]} size=${sizes[i]}
    n=$((n + 1))
    if ((size > MAX_FILE_BYTES)) && [[ -z ${allowed[$path]:-} ]]; then
      log "$path is $size bytes, over $MAX_FILE_BYTES: remove it (and ignore it in .gitignore) or list it with a reason in $LARGE_FILES"
      bad=1
    fi
  done
  for path in "${!allowed[@]}"; do
    [[ -n $(git ls-files -- ":(literal)$path") ]] || { log "$LARGE_FILES lists '$path', which is not tracked"; bad=1; }
  done
  ((bad == 0)) || return 1
  log "$n tracked files, none over $MAX_FILE_BYTES bytes unless listed in $LARGE_FILES"
}

SHELLCHECK_DIR="$ROOT/.cache/shellcheck"
# ensure_shellcheck: prints the shellcheck to run: the one on PATH, else Debian's package unpacked under
# .cache/shellcheck (apt-get download needs no root; apt-get update, when apt has no candidate, does).
ensure_shellcheck() {
  local want deb
  if command -v shellcheck >/dev/null; then
    command -v shellcheck
    return
  fi
  want=$(apt-cache policy shellcheck 2>/dev/null | awk '/^ *Candidate:/ {print $2}') || true
  if [[ -z $want || $want == "(none)" ]] && [[ -x $SHELLCHECK_DIR/usr/bin/shellcheck ]]; then
    echo "$SHELLCHECK_DIR/usr/bin/shellcheck" # offline reuse: apt's lists are gone, the unpacked one is there
    return
  fi
  if [[ -x $SHELLCHECK_DIR/usr/bin/shellcheck && -f $SHELLCHECK_DIR/.version && $(<"$SHELLCHECK_DIR/.version") == "$want" ]]; then
    echo "$SHELLCHECK_DIR/usr/bin/shellcheck"
    return
  fi
  command -v apt-get >/dev/null || die "shellcheck is not on PATH and apt-get is missing: install Debian's (or your system's) shellcheck package"
  if [[ -z $want || $want == "(none)" ]]; then
    [[ $(id -u) == 0 ]] || die "shellcheck is not on PATH and apt has no candidate for it: as root, apt-get update (or apt-get install shellcheck)"
    log "updating the package lists (apt-get update) to find shellcheck"
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || die "apt-get update failed"
    want=$(apt-cache policy shellcheck 2>/dev/null | awk '/^ *Candidate:/ {print $2}')
    [[ -n $want && $want != "(none)" ]] || die "apt has no candidate for shellcheck after apt-get update"
  fi
  log "fetching Debian's shellcheck $want (apt-get download) and unpacking it into ${SHELLCHECK_DIR#"$ROOT/"}"
  rm -rf "$SHELLCHECK_DIR"
  mkdir -p "$SHELLCHECK_DIR/debs"
  # The download runs as the invoking user into our cache, not as apt's sandbox user.
  (cd "$SHELLCHECK_DIR/debs" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "shellcheck=$want" >/dev/null) ||
    die "apt-get download shellcheck=$want into $SHELLCHECK_DIR/debs failed"
  for deb in "$SHELLCHECK_DIR"/debs/*.deb; do
    dpkg-deb -x "$deb" "$SHELLCHECK_DIR" || die "unpacking $deb into $SHELLCHECK_DIR failed"
  done
  "$SHELLCHECK_DIR/usr/bin/shellcheck" --version >/dev/null ||
    die "$SHELLCHECK_DIR/usr/bin/shellcheck does not run (a missing shared library? try: ldd $SHELLCHECK_DIR/usr/bin/shellcheck)"
  echo "$want" >"$SHELLCHECK_DIR/.version"
  echo "$SHELLCHECK_DIR/usr/bin/shellcheck"
}

# shell_scripts: every tracked file named *.sh or starting with a sh or bash shebang.
shell_scripts() {
  local f
  while IFS= read -r -d '' f; do
    [[ -f $f ]] || continue
    if [[ $f == *.sh ]] || head -n1 "$f" | grep -qE '^#!.*[/ ](ba)?sh( |$)'; then echo "$f"; fi
  done < <(git ls-files -z)
}

# run_shell: shellcheck on every shell script, following what they source (-x). A finding is fixed, or its
# check disabled on that line with a comment saying why.
run_shell() {
  local sc scripts
  sc=$(ensure_shellcheck)
  mapfile -t scripts < <(shell_scripts)
  ((${#scripts[@]})) || die "no shell scripts found (git ls-files)"
  log "$("$sc" --version | sed -n 's/^version: /shellcheck /p') on ${#scripts[@]} scripts"
  "$sc" -x "${scripts[@]}"
}

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

checks=("${@:-vet size shell lint vuln}")
read -r -a checks <<<"${checks[*]}"
failed=()
for c in "${checks[@]}"; do
  case $c in
  vet | size | shell | lint | vuln | tools) ;;
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
