#!/usr/bin/env bash
# The deploy rehearsal: creates, updates and deletes the synthesized stacks in the AWS emulator's
# CloudFormation (moto server), with the Lambdas' file assets uploaded to the emulator's S3 where the template
# points at them. The stacks: the default template `cdk synth` wrote into cdk.out/ (connect mode, the source
# as a parameter), and the scheduled and production listen-mode variants of stack.Variants (infra/variants).
# dev/rehearse/rehearse.py drives it: it starts a moto server of its own on a free port (never the local
# stack's), and stops it at the end. moto comes from dev/rehearse/requirements.lock, installed into a venv
# under .cache/.
#
#   dev/rehearse.sh            synthesize (cdk.out/ when missing, the variants into .cache/rehearse/) and
#                              rehearse
#   dev/rehearse.sh --reuse    rehearse what cdk.out/ and .cache/cfnlint/variants hold (make test: the
#                              cdk synth and cfn-lint phases wrote them just before)
#   dev/rehearse.sh install    install the emulator's venv only
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto}

LOCK=dev/rehearse/requirements.lock
VENV=.cache/venv-rehearse/$(sha256sum "$LOCK" | cut -c1-12)
VARIANTS=.cache/cfnlint/variants

# The variants' CDK app runs its jsii runtime on the Node.js dev/cdk.sh installs, when it is there.
export PATH="$PWD/.cache/cdk/node_modules/.bin:$PATH"

die() { printf 'dev/rehearse.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

install() {
  local logf=.cache/venv-rehearse.log
  if [[ -f $VENV/.complete && -x $VENV/bin/moto_server ]]; then return; fi
  command -v python3 >/dev/null || die "python3 not found: it runs the AWS emulator (moto server)"
  step "installing the AWS emulator (moto server with CloudFormation, $LOCK) into $VENV"
  rm -rf "$VENV"
  mkdir -p "$(dirname "$VENV")"
  if ! python3 -m venv "$VENV" >"$logf" 2>&1 ||
    ! PIP_CACHE_DIR="$PWD/.cache/pip" "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$LOCK" \
      >>"$logf" 2>&1; then
    tail -n 20 "$logf" >&2
    die "installing moto and its dependencies from $LOCK into $VENV failed; see $logf"
  fi
  [[ -x $VENV/bin/moto_server ]] || die "pip ran but $VENV/bin/moto_server is missing"
  "$VENV/bin/python" -c 'import moto.cloudformation.parsing, boto3' ||
    die "moto's CloudFormation does not import in $VENV"
  touch "$VENV/.complete"
}

case "${1:-}" in
  install)
    install
    exit 0
    ;;
  --reuse | "") ;;
  *) die "unknown argument $1 (want --reuse or install)" ;;
esac

install
if [[ ${1:-} == --reuse ]]; then
  [[ -f cdk.out/LogPipeline.template.json ]] || die "cdk.out/LogPipeline.template.json is missing: run dev/cdk.sh synth first"
  [[ -d $VARIANTS ]] || die "$VARIANTS is missing: run dev/cfnlint.sh first (or dev/rehearse.sh without --reuse)"
else
  if [[ ! -f cdk.out/LogPipeline.template.json ]]; then
    dev/cdk.sh synth >/dev/null
  fi
  VARIANTS=.cache/rehearse/variants
  step "synthesizing the variants into $VARIANTS (cdk-nag on each)"
  mkdir -p "$(dirname "$VARIANTS")"
  go run ./infra/variants "$VARIANTS" >/dev/null || die "synthesizing the variants failed"
fi
# A scratch directory of this run (the emulator's log, the zipped assets), kept when the rehearsal fails.
mkdir -p .cache/rehearse
WORK=$(mktemp -d .cache/rehearse/run.XXXXXX)
step "rehearsing create, update and delete in the AWS emulator's CloudFormation (moto $(
  "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("moto"))'))"
rc=0
"$VENV/bin/python" dev/rehearse/rehearse.py --moto-server "$VENV/bin/moto_server" --work "$WORK" \
  --stack "default=cdk.out:LogPipeline" \
  --stack "scheduled=$VARIANTS:LogPipeline-scheduled" \
  --stack "production-listen-nlb=$VARIANTS:LogPipeline-production-listen-nlb" || rc=$?
if ((rc == 0)); then
  rm -rf "$WORK"
else
  die "the deploy rehearsal failed (exit $rc); the emulator's log: $WORK/moto.log"
fi
