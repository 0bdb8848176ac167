#!/usr/bin/env bash
# Builds the cluster-test control plane (kube-apiserver, etcd, kubectl) from the Go module proxy, no
# Docker, into ${FHIRMESH_CACHE:-~/.cache/fhirmesh}/k8s/<kube version>/. Binaries already there that
# report the right version are kept, so running it before every cluster test run costs well under a second.
#
# Usage: build-control-plane.sh [--dry-run | --find-latest | --help]
#   --dry-run      resolve the versions, check every module on the proxy, print the wrapper go.mod files;
#                  build nothing
#   --find-latest  print the newest release whose k8s.io/kubernetes zip and staging modules the proxy
#                  serves, and the etcd it requires (what to pin in versions.env); build nothing
#
# Environment (all optional):
#   KUBE_VERSION     Kubernetes release to build, e.g. v1.36.4 (default: PINNED_KUBE_VERSION in versions.env)
#   ETCD_VERSION     etcd release, e.g. v3.7.0 (default: the pinned one for the pinned release, otherwise
#                    the go.etcd.io/etcd/server/v3 version that release's go.mod requires)
#   KUBE_GIT_COMMIT  commit to stamp as gitCommit in /version (the module proxy does not record it)
#   ETCD_GIT_SHA     commit to stamp as etcd's "Git SHA" (default: none)
#   BUILD_KUBECTL    0 skips kubectl
#   FHIRMESH_CACHE   cache root (default ~/.cache/fhirmesh)
#   KEEP_WORKDIR     1 keeps the generated wrapper modules for inspection
#
# stdout: FHIRMESH_KUBE_APISERVER=..., FHIRMESH_ETCD=..., FHIRMESH_KUBECTL=... lines; progress goes to stderr.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../../.." && pwd)
# shellcheck source-path=SCRIPTDIR
source "$here/versions.env"

log() { echo "build-control-plane: $*" >&2; }
die() {
  log "$*"
  exit 1
}
elapsed() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

mode=build
case ${1:-} in
  '') ;;
  --dry-run) mode=dry-run ;;
  --find-latest) mode=find-latest ;;
  -h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
    exit 0
    ;;
  *) die "unknown argument '$1' (try --help)" ;;
esac

command -v go >/dev/null || die "the Go toolchain is needed on PATH (https://go.dev/dl/); none found"
node=$repo/node_modules/.bin/node
[[ -x $node ]] || node=$(command -v node || true)
[[ -n $node ]] || die "node is needed to read go.mod JSON: run npm ci in $repo first"

# The user's GOFLAGS (-mod=vendor, ...) and any go.work must not leak into the wrapper modules.
export GOFLAGS=-buildvcs=false GOWORK=off CGO_ENABLED=0
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fhirmesh-k8s-build.XXXXXX")
stage=
cleanup() {
  if [[ ${KEEP_WORKDIR:-0} == 1 ]]; then log "kept the wrapper modules in $scratch"; else rm -rf "$scratch"; fi
  [[ -z $stage ]] || rm -rf "$stage"
}
trap cleanup EXIT

# Reads JSON on stdin and prints what the JavaScript expression in $1 returns, given the document as `j`.
json() { "$node" -e "const j = JSON.parse(require('fs').readFileSync(0, 'utf8')); const r = ($1); if (r !== undefined) console.log(r);"; }

# Runs a go command in the scratch directory, outside any module, so module queries go to the proxy.
go_outside_module() { (cd "$scratch" && go "$@"); }

# Downloads module@version (zip included) and prints the path of its go.mod; dies with the proxy's reason.
download_module() {
  local info err
  info=$(go_outside_module mod download -json "$1" || true)
  err=$(json 'j.Error ?? ""' <<<"$info")
  [[ -z $err ]] || die "cannot download $1 from the module proxy: $err"
  json 'j.GoMod' <<<"$info"
}

# The modules k/k's go.mod replaces with ./staging/src/..., one per line.
staging_modules() {
  go mod edit -json "$1" | json 'j.Replace.filter((r) => r.New.Path.startsWith("./staging/")).map((r) => r.Old.Path).join("\n")'
}

# The etcd server version a k/k go.mod requires (its integration tests run that etcd), or nothing.
required_etcd() {
  go mod edit -json "$1" | json '(j.Require.find((r) => r.Path === "go.etcd.io/etcd/server/v3") ?? j.Require.find((r) => r.Path === "go.etcd.io/etcd/client/v3") ?? {}).Version ?? ""'
}

# The `go` and `godebug` lines of a go.mod, as text for a wrapper's go.mod: in a dependency they are
# ignored, yet they decide the GODEBUG defaults (TLS, x509, timers) the binary runs with.
go_directives() {
  local directives
  # shellcheck disable=SC2016 # a JavaScript template literal, not shell
  directives=$(go mod edit -json "$1" | json '[`go ${j.Go}`, ...(j.GoDebug ?? []).map((d) => `godebug ${d.Key}=${d.Value}`)].join("\n")')
  if grep -q '^godebug' "$1" && ! grep -q '^godebug' <<<"$directives"; then
    die "could not read the godebug lines of $1 (go mod edit -json changed?)"
  fi
  echo "$directives"
}

if [[ $mode == find-latest ]]; then
  # The proxy's version list for k8s.io/kubernetes only has what someone fetched; the staging modules'
  # list is complete. So try v1.Y.Z for each published v0.Y.Z, newest first. A tag can be listed and
  # still refuse its zip (403) or its checksum (sum.golang.org 404): only a real download counts.
  mapfile -t candidates < <(go_outside_module list -m -versions k8s.io/api | tr ' ' '\n' | grep -E '^v0\.[0-9]+\.[0-9]+$' | sort -Vr | head -8)
  for staging_version in "${candidates[@]}"; do
    candidate=v1.${staging_version#v0.}
    if ! info=$(go_outside_module mod download -json "k8s.io/kubernetes@$candidate" 2>/dev/null) ||
      [[ -n $(json 'j.Error ?? ""' <<<"$info") ]]; then
      log "$candidate: the proxy does not serve k8s.io/kubernetes@$candidate"
      continue
    fi
    gomod=$(json 'j.GoMod' <<<"$info")
    mapfile -t staging < <(staging_modules "$gomod")
    if ! go_outside_module mod download "${staging[@]/%/@$staging_version}" >/dev/null 2>&1; then
      log "$candidate: not every staging module is published at $staging_version"
      continue
    fi
    log "$candidate: buildable; pin it and its etcd as PINNED_KUBE_VERSION / PINNED_ETCD_VERSION in versions.env"
    echo "KUBE_VERSION=$candidate ETCD_VERSION=$(required_etcd "$gomod")"
    exit 0
  done
  die "none of the newest releases is fully on the module proxy: ${candidates[*]/#v0./v1.}"
fi

kube_version=${KUBE_VERSION:-$PINNED_KUBE_VERSION}
[[ $kube_version =~ ^v1\.([0-9]+)\.([0-9]+)$ ]] || die "KUBE_VERSION must be a release like v1.37.1, got '$kube_version'"
kube_minor=${BASH_REMATCH[1]}
staging_version=v0.${BASH_REMATCH[1]}.${BASH_REMATCH[2]}
build_kubectl=${BUILD_KUBECTL:-1}

# etcd's version follows the Kubernetes release unless given: the pin for the pinned release (so a
# cached build needs no network), else what that release's go.mod requires (go.mod and .info only).
if [[ -n ${ETCD_VERSION:-} ]]; then
  etcd_version=$ETCD_VERSION
elif [[ $kube_version == "$PINNED_KUBE_VERSION" ]]; then
  etcd_version=$PINNED_ETCD_VERSION
else
  kube_info=$(go_outside_module list -m -e -json "k8s.io/kubernetes@$kube_version")
  kube_error=$(json 'j.Error?.Err ?? ""' <<<"$kube_info")
  [[ -z $kube_error ]] || die "k8s.io/kubernetes@$kube_version is not on the module proxy (try --find-latest): $kube_error"
  kube_gomod=$(json 'j.GoMod' <<<"$kube_info")
  etcd_version=$(required_etcd "$kube_gomod")
  [[ -n $etcd_version ]] || die "k8s.io/kubernetes@$kube_version requires no go.etcd.io/etcd module: set ETCD_VERSION"
fi
[[ $etcd_version =~ ^v3\.[0-9]+\.[0-9]+$ ]] || die "ETCD_VERSION must be a release like v3.7.0, got '$etcd_version'"

cache_root=${FHIRMESH_CACHE:-$HOME/.cache/fhirmesh}
out_dir=$cache_root/k8s/$kube_version
# Binaries built by another version of this script or its templates are rebuilt, not trusted.
recipe=$({
  cat "${BASH_SOURCE[0]}"
  find "$here/templates" -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
} | sha256sum | cut -c1-16)

# True when $1 is executable and one line of its output for the remaining arguments is exactly $2.
reports() {
  local bin=$1 want=$2 output
  shift 2
  # Captured first: grep -q closing a pipe early would SIGPIPE the binary and fail the pipeline.
  [[ -x $bin ]] && output=$("$bin" "$@" 2>/dev/null) && grep -qxF -- "$want" <<<"$output"
}
apiserver_ok() { reports "$out_dir/kube-apiserver" "Kubernetes $kube_version" --version; }
kubectl_ok() { [[ $build_kubectl == 0 ]] || reports "$out_dir/kubectl" "Client Version: $kube_version" version --client; }
etcd_ok() { reports "$out_dir/etcd" "etcd Version: ${etcd_version#v}" --version; }
recipe_ok() { grep -qF "\"recipe\": \"$recipe\"" "$out_dir/build-info.json" 2>/dev/null; }
all_ok() { recipe_ok && apiserver_ok && kubectl_ok && etcd_ok; }

print_result() {
  local name
  for name in kube-apiserver etcd kubectl; do
    [[ -x $out_dir/$name ]] || continue
    log "$(printf '%-15s %s (%s)' "$name" "$out_dir/$name" "$(du -h "$out_dir/$name" | cut -f1)")"
  done
  echo "FHIRMESH_KUBE_APISERVER=$out_dir/kube-apiserver"
  echo "FHIRMESH_ETCD=$out_dir/etcd"
  [[ $build_kubectl == 0 ]] || echo "FHIRMESH_KUBECTL=$out_dir/kubectl"
}

# Writes the kube wrapper module into $scratch/kube: go.mod from the template, with k/k's go/godebug
# lines and every staging module replaced by its published v0.Y.Z, plus the main packages.
write_kube_wrapper() {
  log "k8s.io/kubernetes@$kube_version: downloading (the first time about 150 MB unpacked)"
  local kube_gomod kube_mod_json unreplaced replaces='' module template
  kube_gomod=$(download_module "k8s.io/kubernetes@$kube_version")
  kube_mod_json=$(go mod edit -json "$kube_gomod")
  mapfile -t staging < <(staging_modules "$kube_gomod")
  ((${#staging[@]} > 0)) || die "k8s.io/kubernetes@$kube_version replaces no ./staging/ modules: its go.mod layout changed"
  # Any other k8s.io module required at v0.0.0 would fail later as "unknown revision v0.0.0".
  unreplaced=$(json '(() => {
      const staged = new Set(j.Replace.filter((r) => r.New.Path.startsWith("./staging/")).map((r) => r.Old.Path));
      return j.Require.filter((r) => r.Version === "v0.0.0" && !staged.has(r.Path)).map((r) => r.Path).join(" ");
    })()' <<<"$kube_mod_json")
  [[ -z $unreplaced ]] || die "k8s.io/kubernetes@$kube_version requires $unreplaced at v0.0.0 without a staging replace"

  log "checking ${#staging[@]} staging modules at $staging_version"
  local missing
  if ! missing=$(go_outside_module mod download "${staging[@]/%/@$staging_version}" 2>&1); then
    die "not every staging module is published at $staging_version (try the previous patch release, or --find-latest):
$missing"
  fi

  for module in "${staging[@]}"; do replaces+=$'\t'"$module => $module $staging_version"$'\n'; done
  mkdir -p "$scratch/kube"
  cp -R "$here/templates/kube/." "$scratch/kube/"
  rm "$scratch/kube/go.mod.tmpl"
  [[ $build_kubectl != 0 ]] || rm -r "$scratch/kube/kubectl"
  template=$(<"$here/templates/kube/go.mod.tmpl")
  template=${template//@@GO_DIRECTIVES@@/$(go_directives "$kube_gomod")}
  template=${template//@@KUBE_VERSION@@/$kube_version}
  template=${template//@@STAGING_REPLACES@@/${replaces%$'\n'}}
  printf '%s\n' "$template" >"$scratch/kube/go.mod"
}

# Writes the etcd wrapper module into $scratch/etcd.
write_etcd_wrapper() {
  log "go.etcd.io/etcd/server/v3@$etcd_version: downloading"
  local etcd_gomod template
  etcd_gomod=$(download_module "go.etcd.io/etcd/server/v3@$etcd_version")
  mkdir -p "$scratch/etcd"
  cp -R "$here/templates/etcd/." "$scratch/etcd/"
  rm "$scratch/etcd/go.mod.tmpl"
  template=$(<"$here/templates/etcd/go.mod.tmpl")
  template=${template//@@GO_DIRECTIVES@@/$(go_directives "$etcd_gomod")}
  template=${template//@@ETCD_VERSION@@/$etcd_version}
  printf '%s\n' "$template" >"$scratch/etcd/go.mod"
}

if [[ $mode == dry-run ]]; then
  write_kube_wrapper
  write_etcd_wrapper
  printf '== %s\n%s\n\n' "$scratch/kube/go.mod" "$(<"$scratch/kube/go.mod")" "$scratch/etcd/go.mod" "$(<"$scratch/etcd/go.mod")"
  if all_ok; then state="already built"; else state="not built yet"; fi
  log "Kubernetes $kube_version ($staging_version staging modules) and etcd $etcd_version are on the proxy; $out_dir: $state"
  exit 0
fi

if all_ok; then
  log "Kubernetes $kube_version and etcd $etcd_version are already built"
  print_result
  exit 0
fi

mkdir -p "$out_dir"
# One build per cache at a time (parallel CI jobs sharing a cache); recheck once we hold the lock.
if command -v flock >/dev/null; then
  exec 9>"$cache_root/k8s/.build.lock"
  flock 9
  if all_ok; then
    log "Kubernetes $kube_version and etcd $etcd_version were built meanwhile"
    print_result
    exit 0
  fi
fi

# Binaries are built into a stage directory on the cache's filesystem and renamed into place, so an
# interrupted build never leaves a half-written binary behind.
stage=$(mktemp -d "$cache_root/k8s/.stage.XXXXXX")
started=$SECONDS
build_date=$(date -u ${SOURCE_DATE_EPOCH:+--date=@$SOURCE_DATE_EPOCH} +%Y-%m-%dT%H:%M:%SZ)
log "building into $out_dir with $(go env GOVERSION), scratch $scratch"

if ! recipe_ok; then log "no build of this recipe ($recipe) yet: building everything"; fi
if ! recipe_ok || ! apiserver_ok || ! kubectl_ok; then
  t0=$SECONDS
  write_kube_wrapper
  log "resolving the kube wrapper module (go mod tidy)"
  (cd "$scratch/kube" && go mod tidy)
  t1=$SECONDS

  # The variables upstream's hack/lib/version.sh stamps, so /version and `kubectl version` report the
  # release. gitCommit stays empty unless given: the proxy does not record the tag's commit.
  # -s -w as in upstream release builds (hack/lib/golang.sh) unless DBG=1.
  ldflags=(-s -w)
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=(-X "$pkg.gitVersion=$kube_version" -X "$pkg.gitMajor=1" -X "$pkg.gitMinor=$kube_minor"
      -X "$pkg.gitCommit=${KUBE_GIT_COMMIT:-}" -X "$pkg.gitTreeState=clean" -X "$pkg.buildDate=$build_date")
  done
  packages=(./kube-apiserver)
  [[ $build_kubectl == 0 ]] || packages+=(./kubectl)
  log "compiling ${packages[*]} (the first time this takes several minutes)"
  (cd "$scratch/kube" && go build -trimpath -ldflags "${ldflags[*]}" -o "$stage/" "${packages[@]}")
  log "kube wrapper: download+tidy $(elapsed $((t1 - t0))), compile $(elapsed $((SECONDS - t1)))"
  mv -f "$stage/kube-apiserver" "$out_dir/kube-apiserver"
  [[ $build_kubectl == 0 ]] || mv -f "$stage/kubectl" "$out_dir/kubectl"
fi

if ! recipe_ok || ! etcd_ok; then
  t0=$SECONDS
  write_etcd_wrapper
  log "compiling etcd"
  (cd "$scratch/etcd" && go mod tidy &&
    go build -trimpath -ldflags "-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=${ETCD_GIT_SHA:-none}" -o "$stage/etcd" ./etcd)
  log "etcd: $(elapsed $((SECONDS - t0)))"
  mv -f "$stage/etcd" "$out_dir/etcd"
fi

apiserver_ok || die "the built kube-apiserver does not report 'Kubernetes $kube_version': $("$out_dir/kube-apiserver" --version 2>&1 || true)"
kubectl_ok || die "the built kubectl does not report 'Client Version: $kube_version'"
etcd_ok || die "the built etcd does not report 'etcd Version: ${etcd_version#v}'"

cat >"$out_dir/build-info.json" <<EOF
{
  "kubeVersion": "$kube_version",
  "etcdVersion": "$etcd_version",
  "goVersion": "$(go env GOVERSION)",
  "builtAt": "$build_date",
  "buildSeconds": $((SECONDS - started)),
  "recipe": "$recipe"
}
EOF
log "built Kubernetes $kube_version and etcd $etcd_version in $(elapsed $((SECONDS - started)))"
print_result
