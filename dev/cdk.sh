#!/usr/bin/env bash
# The AWS side's tooling: installs the pinned AWS CDK CLI and the Node.js LTS it runs on (both from
# dev/cdk/package-lock.json; the machine's own npm only installs them) under .cache/cdk/, cross-compiles the Lambdas for provided.al2023 on arm64 into bin/lambda/<name>/bootstrap, and runs cdk.
#
#   dev/cdk.sh synth            build the Lambdas and synthesize the stack offline (no AWS account needed)
#   dev/cdk.sh build            build the Lambdas only
#   dev/cdk.sh install          install the CDK CLI and the arm64 cross compiler only
#   dev/cdk.sh <cdk args...>    anything else goes to the pinned cdk, after building the Lambdas
#                               (e.g. dev/cdk.sh deploy -c sourceAddr=logs.example.com:5170)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line, also where the go env says "local"

CACHE=.cache/cdk
CDK="$CACHE/node_modules/.bin/cdk"
LAMBDA_DIR=bin/lambda
# provided.al2023 ships glibc 2.34: the health Lambda (cgo, librdkafka) must need nothing newer.
MAX_GLIBC=2.34
# Offline and quiet: no upgrade check, no notices download, no telemetry.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1
# The cached Node.js first on PATH: the CLI and the CDK app's jsii runtime run on it, not on the machine's.
export PATH="$PWD/$CACHE/node_modules/.bin:$PATH"

die() { printf 'dev/cdk.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

install_cli() {
  command -v npm >/dev/null || die "npm not found: install Node.js and npm (npm installs the AWS CDK CLI and the Node.js it runs on)"
  local want have=""
  want=$(sha256sum dev/cdk/package-lock.json | cut -d' ' -f1)
  [ -f "$CACHE/.lock-sha256" ] && have=$(cat "$CACHE/.lock-sha256")
  if [ "$want" = "$have" ] && [ -x "$CDK" ]; then
    return
  fi
  step "installing the AWS CDK CLI into $CACHE"
  mkdir -p "$CACHE"
  cp dev/cdk/package.json dev/cdk/package-lock.json "$CACHE/"
  (cd "$CACHE" && npm ci --no-audit --no-fund --loglevel=error) ||
    die "npm ci in $CACHE failed (the CLI version is pinned in dev/cdk/package-lock.json)"
  [ -x "$CDK" ] || die "the CDK CLI is missing at $CDK after npm ci"
  [ -x "$CACHE/node_modules/.bin/node" ] || die "Node.js is missing at $CACHE/node_modules/.bin/node after npm ci (package node in dev/cdk/package.json)"
  echo "$want" >"$CACHE/.lock-sha256"
}

install_cross_compiler() {
  command -v aarch64-linux-gnu-gcc >/dev/null && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    step "installing the arm64 cross compiler (gcc-aarch64-linux-gnu) for the health Lambda"
    export DEBIAN_FRONTEND=noninteractive
    # Wait for another apt or dpkg run (a first boot's unattended upgrades, another install) instead of failing.
    apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends gcc-aarch64-linux-gnu libc6-dev-arm64-cross >/dev/null ||
      die "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross failed"
  fi
  command -v aarch64-linux-gnu-gcc >/dev/null ||
    die "aarch64-linux-gnu-gcc not found: install gcc-aarch64-linux-gnu and libc6-dev-arm64-cross (Debian/Ubuntu), as root"
}

build_lambdas() {
  install_cross_compiler
  local fn
  for fn in health bootstrap; do
    [ -f "functions/$fn/main.go" ] || die "functions/$fn/main.go is missing: the stack deploys it as a Lambda"
  done
  step "building $LAMBDA_DIR/health/bootstrap (linux/arm64, cgo: librdkafka)"
  CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc \
    go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$LAMBDA_DIR/health/bootstrap" ./functions/health
  step "building $LAMBDA_DIR/bootstrap/bootstrap (linux/arm64, pure Go)"
  CGO_ENABLED=0 GOOS=linux GOARCH=arm64 \
    go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$LAMBDA_DIR/bootstrap/bootstrap" ./functions/bootstrap

  local need
  need=$(aarch64-linux-gnu-readelf -V "$LAMBDA_DIR/health/bootstrap" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  if [ -n "$need" ] && [ "$(printf '%s\n%s\n' "$need" "$MAX_GLIBC" | sort -V | tail -1)" != "$MAX_GLIBC" ]; then
    die "$LAMBDA_DIR/health/bootstrap needs glibc $need; provided.al2023 has $MAX_GLIBC"
  fi
}

cmd=${1:-synth}
case "$cmd" in
  install)
    install_cli
    install_cross_compiler
    ;;
  build)
    build_lambdas
    ;;
  synth)
    shift || true
    install_cli
    build_lambdas
    step "cdk synth (offline)"
    t0=$(date +%s)
    # An example source address: synth checks the stack's shape; deploy takes the real one with -c.
    "$CDK" synth --no-notices --quiet -c sourceAddr=log-source.example.internal:5170 "$@"
    step "synthesized LogPipeline into cdk.out/ in $(( $(date +%s) - t0 ))s"
    ;;
  *)
    install_cli
    build_lambdas
    "$CDK" "$@"
    ;;
esac
