#!/usr/bin/env bash
# Checks every synthesized variant of the stack with CloudFormation's own linter, cfn-lint: the template
# `cdk synth` wrote into cdk.out/ (connect mode, source as a parameter) and each variant of stack.Variants
# (connect mode, listen mode behind a load balancer, scheduled bounded runs, an existing VPC), synthesized
# by infra/variants with cdk-nag. Zero errors and zero warnings pass; dev/cfnlint/cfnlintrc.yaml is the one
# place a finding is accepted, with its reason. cfn-lint comes from dev/cfnlint/requirements.lock, installed
# into a venv under .cache/.
#
#   dev/cfnlint.sh            synthesize the variants and lint them (and cdk.out/, when there)
#   dev/cfnlint.sh install    install cfn-lint only
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=.cache/venv-cfnlint
LOCK=dev/cfnlint/requirements.lock
OUT=.cache/cfnlint/variants

# The variants' CDK app runs its jsii runtime on the Node.js dev/cdk.sh installs, when it is there.
export PATH="$PWD/.cache/cdk/node_modules/.bin:$PATH"

die() { printf 'dev/cfnlint.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

install() {
  local want have=""
  want=$(sha256sum "$LOCK" | cut -d' ' -f1)
  [ -f "$VENV/.lock-sha256" ] && have=$(cat "$VENV/.lock-sha256")
  if [ "$want" = "$have" ] && [ -x "$VENV/bin/cfn-lint" ]; then
    return
  fi
  command -v python3 >/dev/null || die "python3 not found (cfn-lint is a Python tool)"
  step "installing cfn-lint ($LOCK) into $VENV"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv $VENV failed (on Debian: apt-get install python3-venv)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$LOCK" ||
    die "pip install -r $LOCK failed"
  "$VENV/bin/cfn-lint" --version >/dev/null || die "cfn-lint does not run after the install"
  echo "$want" >"$VENV/.lock-sha256"
}

lint() {
  local name=$1 template=$2 out errors warnings infos
  out=$("$VENV/bin/cfn-lint" --config-file dev/cfnlint/cfnlintrc.yaml --format parseable -- "$template") || true
  errors=$(grep -c ':E[0-9]' <<<"$out" || true)
  warnings=$(grep -c ':W[0-9]' <<<"$out" || true)
  infos=$(grep -c ':I[0-9]' <<<"$out" || true)
  printf '%-28s %3s errors %3s warnings %3s informational  (%s resources)\n' "$name" "$errors" "$warnings" "$infos" \
    "$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["Resources"]))' "$template")"
  [ -n "$out" ] && printf '%s\n' "$out" | sed 's/^/    /'
  [ "$errors" = 0 ] && [ "$warnings" = 0 ]
}

case "${1:-check}" in
  install)
    install
    ;;
  check)
    install
    step "synthesizing the variants into $OUT (cdk-nag on each)"
    mkdir -p "$(dirname "$OUT")"
    list=$(go run ./infra/variants "$OUT") || die "synthesizing the variants failed"
    step "cfn-lint $("$VENV/bin/cfn-lint" --version | awk '{print $2}')"
    rc=0
    if [ -f cdk.out/LogPipeline.template.json ]; then
      lint "cdk.out (cdk synth)" cdk.out/LogPipeline.template.json || rc=1
    fi
    while IFS=$'\t' read -r name template; do
      lint "$name" "$template" || rc=1
    done <<<"$list"
    [ "$rc" = 0 ] || die "cfn-lint found errors or warnings (accept one only in dev/cfnlint/cfnlintrc.yaml, with its reason)"
    ;;
  *)
    die "unknown command $1 (want check or install)"
    ;;
esac
