#!/usr/bin/env bash
# Provides the observability suite's real backends: Jaeger built from its Go module (cmd/jaeger) into
# ${FHIRMESH_CACHE:-~/.cache/fhirmesh}/jaeger/<version>/, and Prometheus + promtool from Debian's
# `prometheus` package (apt-get) when they are not on PATH. A cached build is kept, so a rerun costs
# well under a second.
#
# Usage: build-tools.sh [--help]
# Environment (optional):
#   JAEGER_VERSION   module version of github.com/jaegertracing/jaeger (default v1.76.0, whose
#                    cmd/jaeger is the OpenTelemetry-collector based all-in-one binary)
#   FHIRMESH_CACHE   cache root (default ~/.cache/fhirmesh)
#
# stdout: FHIRMESH_JAEGER=..., FHIRMESH_PROMETHEUS=..., FHIRMESH_PROMTOOL=... lines; progress on stderr.
set -euo pipefail

log() { echo "build-tools: $*" >&2; }
die() {
  log "$*"
  exit 1
}
case ${1:-} in
  '') ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

jaeger_version=${JAEGER_VERSION:-v1.76.0}
[[ $jaeger_version =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "JAEGER_VERSION must be a release like v1.76.0, got '$jaeger_version'"
cache_root=${FHIRMESH_CACHE:-$HOME/.cache/fhirmesh}
jaeger_dir=$cache_root/jaeger/$jaeger_version
jaeger=$jaeger_dir/jaeger

# --- Jaeger ------------------------------------------------------------------------------------------
# A binary counts as built only once build-info.json names its version: `go install` writes the binary
# before that file, so an interrupted build is redone rather than trusted.
jaeger_ok() { [[ -x $jaeger ]] && grep -qF "\"jaegerVersion\": \"$jaeger_version\"" "$jaeger_dir/build-info.json" 2>/dev/null; }
if ! jaeger_ok; then
  command -v go >/dev/null || die "the Go toolchain is needed on PATH to build Jaeger (https://go.dev/dl/); none found"
  mkdir -p "$jaeger_dir"
  exec 9>"$cache_root/jaeger/.build.lock"
  flock 9
  if ! jaeger_ok; then
    started=$SECONDS
    log "building github.com/jaegertracing/jaeger/cmd/jaeger@$jaeger_version with $(go env GOVERSION) (the first time this takes several minutes)"
    # GOWORK/GOFLAGS of the caller must not leak in; -trimpath and no cgo as in upstream release builds.
    stage=$(mktemp -d "$cache_root/jaeger/.stage.XXXXXX")
    trap 'rm -rf "$stage"' EXIT
    # `go install module@version` refuses modules whose go.mod has replace directives (Jaeger's has
    # one, for sarama), so the module's own tree is built as the main module: its go.mod and go.sum
    # then pin exactly what upstream's release build uses.
    info=$(cd "$stage" && GOWORK=off GOFLAGS= go mod download -json "github.com/jaegertracing/jaeger@$jaeger_version") ||
      die "cannot download github.com/jaegertracing/jaeger@$jaeger_version from the module proxy: $info"
    source_dir=$(sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p' <<<"$info")
    [[ -d $source_dir ]] || die "the module proxy gave no source directory for jaeger@$jaeger_version: $info"
    cp -R "$source_dir" "$stage/src"
    chmod -R u+w "$stage/src"
    # The variables upstream's BuildInfo.mk stamps, so `jaeger version` reports the release.
    buildinfo=github.com/jaegertracing/jaeger/internal/version
    (cd "$stage/src" && GOWORK=off GOFLAGS=-trimpath CGO_ENABLED=0 \
      go build -ldflags "-s -w -X $buildinfo.latestVersion=$jaeger_version" -o "$stage/jaeger" ./cmd/jaeger)
    mv -f "$stage/jaeger" "$jaeger"
    cat >"$jaeger_dir/build-info.json" <<INFO
{
  "jaegerVersion": "$jaeger_version",
  "goVersion": "$(go env GOVERSION)",
  "buildSeconds": $((SECONDS - started))
}
INFO
    log "built Jaeger $jaeger_version in $((SECONDS - started)) s"
  fi
fi

# --- Prometheus --------------------------------------------------------------------------------------
if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  command -v apt-get >/dev/null || die "prometheus and promtool are missing and there is no apt-get: install Prometheus (https://prometheus.io/download/) and put both on PATH"
  log "installing Debian's prometheus package (prometheus + promtool)"
  # The suite runs its own Prometheus on a free loopback port with a config of its own; the package's
  # service (on :9090, where an init system starts it) is not used.
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq --no-install-recommends prometheus >&2
fi

log "$(printf '%-11s %s (%s)' jaeger "$jaeger" "$(du -h "$jaeger" | cut -f1)")"
echo "FHIRMESH_JAEGER=$jaeger"
echo "FHIRMESH_PROMETHEUS=$(command -v prometheus)"
echo "FHIRMESH_PROMTOOL=$(command -v promtool)"
