#!/usr/bin/env bash
# Runs the Lambda artifacts as AWS runs them: the bootstrap binaries that cdk.out's template references, under
# the AWS Lambda Runtime Interface Emulator, invoked over its HTTP API against the local stack
# (functions/emulator_test.go). Builds the emulator from its Go module (pinned below) into .cache/rie/.
#
#   dev/lambda-emulator.sh            synthesize if cdk.out/ is missing, then run the tests
#   dev/lambda-emulator.sh install    build the emulator only
#
# The emulator listens on 127.0.0.1:32090 (invoke API) and 127.0.0.1:32091 (Runtime API); the tests treat
# 127.0.0.1:32099 as an unreachable broker.
set -euo pipefail
cd "$(dirname "$0")/.."

RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d
RIE_DIR=.cache/rie/$RIE_VERSION
RIE=$RIE_DIR/aws-lambda-rie

die() { printf 'dev/lambda-emulator.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

install_rie() {
  [ -x "$RIE" ] && return
  step "building aws-lambda-rie $RIE_VERSION into $RIE_DIR"
  mkdir -p "$RIE_DIR"
  GOBIN="$PWD/$RIE_DIR" CGO_ENABLED=0 go install "$RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION" ||
    die "go install $RIE_MODULE/cmd/aws-lambda-rie@$RIE_VERSION failed"
  [ -x "$RIE" ] || die "aws-lambda-rie is missing at $RIE after go install"
}

case "${1:-test}" in
  install)
    install_rie
    ;;
  test)
    install_rie
    [ -f cdk.out/manifest.json ] || dev/cdk.sh synth
    LAMBDA_RIE="$PWD/$RIE" CDK_OUT="$PWD/cdk.out" \
      go test -count=1 -v -tags lambdaemulator -timeout 10m ./functions/ "${@:2}"
    ;;
  *)
    die "unknown command $1 (want test or install)"
    ;;
esac
