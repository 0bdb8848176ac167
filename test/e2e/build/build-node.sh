#!/usr/bin/env bash
# Builds the e2e suite's node binaries from the Go module proxy, no Docker, into
# ${FHIRMESH_CACHE:-~/.cache/fhirmesh}/node/<kube version>/: kubelet, kube-controller-manager,
# kube-scheduler and kube-proxy (in the control plane's wrapper module), CoreDNS (only the plugins
# the suite's Corefile uses: no forward), crictl, and the static pause binary of the sandbox image.
# Binaries already there that report the right version are kept (well under a second).
#
# Usage: build-node.sh [COMPONENT...]   COMPONENT: kube coredns crictl pause (default: all)
#
# Environment (all optional): KUBE_VERSION, COREDNS_VERSION, CRICTL_VERSION, FHIRMESH_CACHE,
# KEEP_WORKDIR=1 (keep the generated wrapper modules).
# stdout: FHIRMESH_NODE_BIN=<dir>; progress goes to stderr. <dir>/pause-image.tar is the sandbox image
# (docker-archive, fhirmesh.local/e2e/pause:1) for ctr images import.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
control_plane_build=$repo/test/cluster/build/build-control-plane.sh
# shellcheck source-path=SCRIPTDIR
source "$repo/test/cluster/build/versions.env"
# shellcheck source-path=SCRIPTDIR
source "$here/versions.env"

log() { echo "build-node: $*" >&2; }
die() {
  log "$*"
  exit 1
}
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

components=("$@")
((${#components[@]} > 0)) || components=(kube coredns crictl pause)
for c in "${components[@]}"; do
  case $c in kube | coredns | crictl | pause) ;; *) die "unknown component '$c' (kube, coredns, crictl, pause)" ;; esac
done
wants() { [[ " ${components[*]} " == *" $1 "* ]]; }

command -v go >/dev/null || die "the Go toolchain is needed on PATH; none found"
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0

kube_version=${KUBE_VERSION:-$PINNED_KUBE_VERSION}
[[ $kube_version =~ ^v1\.([0-9]+)\.[0-9]+$ ]] || die "KUBE_VERSION must be a release like v1.37.1, got '$kube_version'"
kube_minor=${BASH_REMATCH[1]}
coredns_version=${COREDNS_VERSION:-$PINNED_COREDNS_VERSION}
crictl_version=${CRICTL_VERSION:-$PINNED_CRICTL_VERSION}

cache_root=${FHIRMESH_CACHE:-$HOME/.cache/fhirmesh}
out_dir=$cache_root/node/$kube_version
recipe=$({
  cat "${BASH_SOURCE[0]}" "$here/versions.env"
  find "$here/templates" -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
} | sha256sum | cut -c1-16)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fhirmesh-node-build.XXXXXX")
stage=
cleanup() {
  if [[ ${KEEP_WORKDIR:-0} == 1 ]]; then log "kept the wrapper modules in $scratch"; else rm -rf "$scratch"; fi
  [[ -z $stage ]] || rm -rf "$stage"
}
trap cleanup EXIT

reports() {
  local bin=$1 want=$2 output
  shift 2
  [[ -x $bin ]] && output=$("$bin" "$@" 2>&1) && grep -qxF -- "$want" <<<"$output"
}
recipe_of() { cat "$out_dir/.recipe-$1" 2>/dev/null || true; }
kube_bins=(kubelet kube-controller-manager kube-scheduler kube-proxy)
kube_ok() {
  local bin
  for bin in "${kube_bins[@]}"; do reports "$out_dir/$bin" "Kubernetes $kube_version" --version || return 1; done
}
coredns_ok() { reports "$out_dir/coredns" "CoreDNS-${coredns_version#v}" -version; }
crictl_ok() { reports "$out_dir/crictl" "crictl version $crictl_version" --version; }
pause_image=fhirmesh.local/e2e/pause:1
pause_tag=${pause_image##*:}
pause_ok() { [[ -x $out_dir/pause && -f $out_dir/pause-image.tar ]]; }
ok() { [[ $(recipe_of "$1") == "$recipe" ]] && "$1_ok"; }

todo=()
for c in "${components[@]}"; do ok "$c" || todo+=("$c"); done
if ((${#todo[@]} == 0)); then
  log "${components[*]}: already built in $out_dir"
  echo "FHIRMESH_NODE_BIN=$out_dir"
  exit 0
fi

mkdir -p "$out_dir"
if command -v flock >/dev/null; then
  exec 9>"$out_dir/.build.lock"
  flock 9
fi
stage=$(mktemp -d "$out_dir/.stage.XXXXXX")
started=$SECONDS
build_date=$(date -u ${SOURCE_DATE_EPOCH:+--date=@$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
log "building ${todo[*]} into $out_dir with $(go env GOVERSION)"

# Renames the staged binaries into place and records the recipe they were built with.
install_built() {
  local component=$1 bin
  shift
  for bin in "$@"; do mv -f "$stage/$bin" "$out_dir/$bin"; done
  echo "$recipe" >"$out_dir/.recipe-$component"
}

build_kube() {
  ok kube && return 0
  local t0=$SECONDS kube_dir ldflags=(-s -w) pkg
  # The control plane's script writes the wrapper module (k/k's go/godebug lines, every staging module
  # replaced by its published v0.Y.Z): one definition of it for both suites.
  mkdir -p "$scratch/control-plane"
  TMPDIR=$scratch/control-plane KEEP_WORKDIR=1 BUILD_KUBECTL=0 KUBE_VERSION=$kube_version \
    bash "$control_plane_build" --dry-run >/dev/null 2>"$scratch/control-plane.log" ||
    die "the control plane's wrapper module could not be written: $(tail -5 "$scratch/control-plane.log")"
  kube_dir=$(echo "$scratch"/control-plane/fhirmesh-k8s-build.*/kube)
  [[ -f $kube_dir/go.mod ]] || die "no wrapper go.mod in $kube_dir"
  rm -rf "$kube_dir/kube-apiserver"
  cp -R "$here/templates/kube-node/." "$kube_dir/"
  log "resolving the kube wrapper module for ${kube_bins[*]}"
  (cd "$kube_dir" && go mod tidy)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=(-X "$pkg.gitVersion=$kube_version" -X "$pkg.gitMajor=1" -X "$pkg.gitMinor=$kube_minor"
      -X "$pkg.gitCommit=${KUBE_GIT_COMMIT:-}" -X "$pkg.gitTreeState=clean" -X "$pkg.buildDate=$build_date")
  done
  log "compiling ${kube_bins[*]} (the first time several minutes; less once kube-apiserver is built)"
  (cd "$kube_dir" && go build -trimpath -ldflags "${ldflags[*]}" -o "$stage/" "${kube_bins[@]/#/./}")
  install_built kube "${kube_bins[@]}"
  kube_ok || die "the built kube binaries do not all report 'Kubernetes $kube_version'"
  log "kube node binaries: $(elapsed $((SECONDS - t0)))"
}

build_coredns() {
  ok coredns && return 0
  local t0=$SECONDS info gomod template directives
  info=$(cd "$scratch" && go mod download -json "github.com/coredns/coredns@$coredns_version") ||
    die "cannot download github.com/coredns/coredns@$coredns_version from the module proxy"
  gomod=$(sed -n 's/^\t"GoMod": "\(.*\)",$/\1/p' <<<"$info")
  directives=$(grep -E '^(go|godebug) ' "$gomod")
  mkdir -p "$scratch/coredns"
  cp -R "$here/templates/coredns/." "$scratch/coredns/"
  rm "$scratch/coredns/go.mod.tmpl"
  template=$(<"$here/templates/coredns/go.mod.tmpl")
  template=${template//@@GO_DIRECTIVES@@/$directives}
  template=${template//@@COREDNS_VERSION@@/$coredns_version}
  printf '%s\n' "$template" >"$scratch/coredns/go.mod"
  log "compiling CoreDNS $coredns_version"
  (cd "$scratch/coredns" && go mod tidy && go build -trimpath -ldflags "-s -w" -o "$stage/coredns" ./coredns)
  install_built coredns coredns
  coredns_ok || die "the built coredns does not report CoreDNS-${coredns_version#v}"
  log "coredns: $(elapsed $((SECONDS - t0)))"
}

build_crictl() {
  ok crictl && return 0
  local t0=$SECONDS
  log "compiling crictl $crictl_version"
  # cri-tools has no replace directives, so go install works; its version is stamped like upstream's Makefile.
  GOBIN=$stage go install -trimpath -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$crictl_version" \
    "sigs.k8s.io/cri-tools/cmd/crictl@$crictl_version"
  install_built crictl crictl
  crictl_ok || die "the built crictl does not report 'crictl version $crictl_version'"
  log "crictl: $(elapsed $((SECONDS - t0)))"
}

# The sandbox image containerd's sandbox_image names: no registry is reachable, so it is built here,
# /pause alone, run as 65535 like upstream's.
build_pause() {
  ok pause && return 0
  local tool
  for tool in gcc umoci skopeo; do
    command -v "$tool" >/dev/null || die "$tool is needed for the pause image (apt-get install gcc libc6-dev umoci skopeo)"
  done
  gcc -static -Os -s -Wall -Werror -o "$stage/pause" "$here/templates/pause/pause.c"
  mkdir -p "$scratch/pause-rootfs"
  cp "$stage/pause" "$scratch/pause-rootfs/pause"
  touch -h --date=@0 "$scratch/pause-rootfs/pause" "$scratch/pause-rootfs"
  umoci init --layout "$scratch/pause-oci"
  umoci new --image "$scratch/pause-oci:$pause_tag"
  umoci insert --image "$scratch/pause-oci:$pause_tag" --history.created 1970-01-01T00:00:00Z "$scratch/pause-rootfs" /
  umoci config --image "$scratch/pause-oci:$pause_tag" --created 1970-01-01T00:00:00Z --no-history \
    --config.user 65535:65535 --config.entrypoint /pause --architecture amd64 --os linux
  skopeo --insecure-policy copy --quiet "oci:$scratch/pause-oci:$pause_tag" "docker-archive:$stage/pause-image.tar:$pause_image"
  install_built pause pause pause-image.tar
}

for c in "${todo[@]}"; do "build_$c"; done
log "built ${todo[*]} in $(elapsed $((SECONDS - started)))"
for bin in "${kube_bins[@]}" coredns crictl pause; do
  if [[ -x $out_dir/$bin ]]; then log "$(printf '%-24s %s' "$bin" "$(du -h "$out_dir/$bin" | cut -f1)")"; fi
done
echo "FHIRMESH_NODE_BIN=$out_dir"
