#!/usr/bin/env bash
# The reader's image, built and run without a container registry: the base is made of Debian packages with
# mmdebstrap (the libraries, certificates and files of the Dockerfile's distroless/cc runtime image), the
# reader is built with the Dockerfile's own go build command, and the image is built by podman from the
# Dockerfile's runtime stage (FROM the imported base; each COPY --from=build from a directory that holds the
# build stage's files). Then tasks/reader/image_test.go runs the image as the synthesized task definition
# says, against the local stack.
#
#   dev/image.sh            build the image, synthesize if cdk.out/ is missing, run the test
#   dev/image.sh build      build the image only (podman tag localhost/log-reader:dev)
#   dev/image.sh install    install podman, runc and mmdebstrap only (Debian packages; needs root)
#
# The base tarball is cached under .cache/image/ by a key of its package lists and recipe, so only the first
# run downloads packages (about 20 s here); remove .cache/image/ to take newer Debian packages.
set -euo pipefail
cd "$(dirname "$0")/.."
export GOTOOLCHAIN=${GOTOOLCHAIN_OVERRIDE:-auto} # honour go.mod's toolchain line (the Dockerfile's golang tag)

IMAGE=localhost/log-reader:dev
CACHE=.cache/image
SUITE=bookworm # the Dockerfile's golang:*-bookworm and distroless/cc-debian12
# The shared libraries of the distroless/cc image; mmdebstrap resolves their dependencies (each other).
LIBS=(libc6 libgcc-s1 libgomp1 libstdc++6 libssl3)
# Unpacked without their dependencies (debconf, perl, openssl), as distroless takes them: files only.
FILES=(base-files netbase tzdata ca-certificates)
# What the Dockerfile's build stage installs for the runtime image: busybox, the health check's probe.
BUILD_STAGE_PKGS=(busybox-static)
TOOLS=(podman runc mmdebstrap)

die() { printf 'dev/image.sh: %s\n' "$*" >&2; exit 1; }
step() { printf '==> %s\n' "$*" >&2; }

install_tools() {
  local missing=() t
  for t in "${TOOLS[@]}"; do command -v "$t" >/dev/null || missing+=("$t"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || die "apt-get not found: ${missing[*]} come from Debian's packages"
  [[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get install); run as root or install them first"
  step "installing with apt-get: ${missing[*]}"
  # DPkg::Lock::Timeout: wait for another apt or dpkg run instead of failing.
  apt-get update -qq -o DPkg::Lock::Timeout=600 >/dev/null || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends \
    "${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
  for t in "${missing[@]}"; do command -v "$t" >/dev/null || die "$t is still missing after apt-get install"; done
}

# apt_sources: the machine's Debian package sources, which mmdebstrap reads as its mirror list.
apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    [[ -s $f ]] && grep -q '^[^#]*\(deb\|Types\)' "$f" && { echo "$f"; return; }
  done
  die "no Debian package sources in /etc/apt (sources.list.d/debian.sources or sources.list)"
}

# base_hook ROOT BUILD: mmdebstrap's extract hook. Unpacks FILES into ROOT and the build stage's packages into
# BUILD, then does what distroless does beyond unpacking: the CA bundle (update-ca-certificates' output), the
# users root, nobody and nonroot (65532) with nonroot's home, and a sticky /tmp.
base_hook() {
  local root=$1 build=$2 deb
  mkdir -p "$root/tmp/debs" "$build"
  (cd "$root/tmp/debs" && APT_CONFIG=$MMDEBSTRAP_APT_CONFIG apt-get download -q -o APT::Sandbox::User=root "${FILES[@]}" "${BUILD_STAGE_PKGS[@]}")
  for deb in "$root"/tmp/debs/*.deb; do
    case ${deb##*/} in
      busybox-static_*) dpkg-deb -x "$deb" "$build" ;;
      *) dpkg-deb -x "$deb" "$root" ;;
    esac
  done
  rm -rf "$root/tmp/debs"
  cat "$root"/usr/share/ca-certificates/mozilla/*.crt >"$root/etc/ssl/certs/ca-certificates.crt"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$root/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' 'nonroot:x:65532:' >"$root/etc/group"
  mkdir -p "$root/root" "$root/home/nonroot"
  chmod 0700 "$root/root" "$root/home/nonroot"
  chown 65532:65532 "$root/home/nonroot"
  chmod 1777 "$root/tmp"
  [[ -x $build/bin/busybox ]] || { echo "busybox-static did not unpack to $build/bin/busybox" >&2; return 1; }
}

# base_key: changes with the package lists, the recipe (this file's hook and mmdebstrap call) and the
# package sources.
base_key() {
  { printf '%s\n' "$SUITE" "${LIBS[*]}" "${FILES[*]}" "${BUILD_STAGE_PKGS[*]}"
    declare -f base_hook build_base
    cat "$(apt_sources)"
  } | sha256sum | cut -c1-16
}

# build_base KEY: the base tarball and the build stage's busybox under $CACHE/base-KEY/, unless cached.
build_base() {
  local dir=$CACHE/base-$1 t0
  [[ -f $dir/base.tar && -x $dir/build/bin/busybox ]] && return
  t0=$(date +%s)
  step "building the base from Debian packages with mmdebstrap into $dir (cold cache only)"
  rm -rf "$dir" "$dir.tmp"
  mkdir -p "$dir.tmp"
  mmdebstrap --quiet --variant=extract --include="$(IFS=,; echo "${LIBS[*]}")" \
    --extract-hook="'$PWD/dev/image.sh' base-hook \"\$1\" '$PWD/$dir.tmp/build'" \
    "$SUITE" "$dir.tmp/base.tar" "$(apt_sources)" || die "mmdebstrap failed (see above)"
  mv "$dir.tmp" "$dir"
  step "base built in $(($(date +%s) - t0))s"
}

# containerfile BASE: the Dockerfile's runtime stage (from its last FROM), FROM the imported base, with
# each COPY --from=build reading the build stage's path from the build/ directory of the context.
containerfile() {
  local out
  out=$(awk -v base="$1" '
    /^FROM /   { n = NR }
    { line[NR] = $0 }
    END {
      for (i = n; i <= NR; i++) {
        l = line[i]
        if (i == n) l = "FROM " base
        else if (l ~ /^COPY --from=build \//) sub(/^COPY --from=build \//, "COPY build/", l)
        print l
      }
    }' tasks/reader/Dockerfile)
  grep -q -- '--from=' <<<"$out" && die "the Dockerfile's runtime stage copies from a stage other than build: $(grep -- '--from=' <<<"$out")"
  printf '%s\n' "$out"
}

build_image() {
  install_tools
  local key base ctx t0
  key=$(base_key)
  build_base "$key"
  base=localhost/reader-base:$key
  if ! podman image exists "$base"; then
    step "importing the base as $base"
    podman import -q "$CACHE/base-$key/base.tar" "$base" >/dev/null || die "podman import failed"
  fi
  # Bases of other keys (older package lists or recipes) are not kept.
  local d tag
  for d in "$CACHE"/base-*; do
    [[ $d == "$CACHE/base-$key" ]] || rm -rf "$d"
  done
  for tag in $(podman images --format '{{.Repository}}:{{.Tag}}' localhost/reader-base); do
    [[ $tag == "$base" ]] || podman rmi "$tag" >/dev/null 2>&1 || true
  done

  # The context is kept between runs: go build leaves an up-to-date binary alone, and podman then reuses
  # its layers.
  ctx=$CACHE/context
  mkdir -p "$ctx/build/bin" "$ctx/build/out"
  cp "$CACHE/base-$key/build/bin/busybox" "$ctx/build/bin/busybox"
  step "building the reader as the Dockerfile does"
  t0=$(date +%s)
  # The Dockerfile's go build, flag for flag (tasks/reader/dockerfile_test.go holds the two equal).
  CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o "$ctx/build/out/reader" ./tasks/reader
  containerfile "$base" >"$ctx/Containerfile"
  step "building $IMAGE from the Dockerfile's runtime stage (go build took $(($(date +%s) - t0))s)"
  # Docker's image format keeps HEALTHCHECK (the OCI format has no field for it).
  local old
  old=$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)
  podman build -q --format docker -f "$ctx/Containerfile" -t "$IMAGE" "$ctx" >/dev/null || die "podman build failed"
  # The image this build replaced, untagged now, is not kept.
  if [[ -n $old && $old != $(podman image inspect --format '{{.Id}}' "$IMAGE") ]]; then
    podman rmi "$old" >/dev/null 2>&1 || true
  fi
  step "$IMAGE: $(podman image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.1f MB", $1 / 1e6}')"
}

case "${1:-test}" in
  install)
    install_tools
    ;;
  base-hook) # called by mmdebstrap
    base_hook "$2" "$3"
    ;;
  build)
    build_image
    ;;
  test)
    build_image
    [[ -f cdk.out/manifest.json ]] || dev/cdk.sh synth
    READER_IMAGE=$IMAGE CDK_OUT=$PWD/cdk.out CGO_ENABLED=1 \
      go test -count=1 -v -tags readerimage -run TestImage -timeout 5m ./tasks/reader/ "${@:2}"
    ;;
  *)
    die "unknown command $1 (want test, build or install)"
    ;;
esac
