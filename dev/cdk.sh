#!/usr/bin/env bash
# A convenience around the project's CDK command, which is `npx cdk ...` from the repository root (the root
# package.json points it at dev/cdk/cli.js: it installs the CLI and the Node.js LTS it runs on, both pinned in
# dev/cdk/package-lock.json, under .cache/cdk/ and runs them; the app builds the Lambdas while it synthesizes). This script only adds the
# offline settings make test wants.
#
#   dev/cdk.sh synth            synthesize the stack offline into cdk.out/ (no AWS account needed)
#   dev/cdk.sh install          install the pinned CDK CLI only
#   dev/cdk.sh <cdk args...>    anything else goes to the pinned cdk (e.g. dev/cdk.sh diff -c env=staging)
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line, also where the go env says "local"

# Offline and quiet: no upgrade check, no notices download, no telemetry.
export CDK_DISABLE_VERSION_CHECK=1 CDK_DISABLE_CLI_TELEMETRY=1

die() { printf 'dev/cdk.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

{ command -v node >/dev/null && command -v npm >/dev/null; } ||
  die "node or npm not found: install Node.js and npm (npm installs the AWS CDK CLI and the Node.js it runs on)"
cdk() { node dev/cdk/cli.js "$@"; }

cmd=${1:-synth}
case "$cmd" in
  install)
    cdk --version >/dev/null
    ;;
  synth)
    shift || true
    step "cdk synth (offline; builds the Lambdas)"
    t0=$(date +%s)
    cdk synth --no-notices --quiet "$@"
    step "synthesized into cdk.out/ in $(( $(date +%s) - t0 ))s"
    ;;
  *)
    cdk "$@"
    ;;
esac
