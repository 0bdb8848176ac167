#!/usr/bin/env bash
# Assembles the fhirmesh image's three layers as directories under OUT (runtime, modules, app), for
# image/build-image.sh (umoci, no container engine) and for the Dockerfile (COPY of each): one layout.
#   runtime  the stripped Node binary of the `node` npm package, the libraries ldd lists for it,
#            /etc (passwd, group, nsswitch.conf), /tmp and the two launchers in /usr/local/bin
#   modules  /app/node_modules: production dependencies from package-lock.json, without type
#            declarations and source maps
#   app      /app: dist/ of api, runtime, proxy and controller (built fresh), the CRD, discovery.proto, package.json
# Everything is root-owned (the image runs as 65532, which can write only /tmp and its home) and
# carries the time SOURCE_DATE_EPOCH (default 0), so the same sources give the same layers.
#
# Usage: image/assemble-layers.sh OUT        (OUT must not exist yet)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=${1:?usage: assemble-layers.sh OUT}
epoch=${SOURCE_DATE_EPOCH:-0}

log() { echo "assemble-layers: $*" >&2; }
die() { log "$*"; exit 1; }
[[ ! -e $out ]] || die "$out exists: give a new directory"
for tool in strip ldd npm; do
  command -v "$tool" >/dev/null || die "$tool is needed on PATH (binutils, libc-bin, npm)"
done
node_bin=$repo/node_modules/node/bin/node
[[ -x $node_bin ]] || die "no Node binary at $node_bin: run npm ci first (the node package provides it)"
node_version=$("$node_bin" --version)
[[ $node_version == v24.* ]] || die "the image runs Node 24; $node_bin is $node_version"

# Least often changed first, so a new commit ships only the app layer.
runtime=$out/runtime # libraries, node, /etc, launchers
modules=$out/modules # /app/node_modules
app=$out/app         # /app without node_modules

log "runtime: node $node_version and the libraries ldd lists for it"
mkdir -p "$runtime/usr/local/bin" "$runtime/tmp" "$runtime/home/nonroot"
cp "$node_bin" "$runtime/usr/local/bin/node"
# The npm package ships it unstripped (126 MB); symbols serve only debuggers: about 18 MB less.
strip --strip-unneeded "$runtime/usr/local/bin/node"
# Each library under the path the binary asks for (ld.so searches /lib/x86_64-linux-gnu itself).
while read -r path; do
  [[ $path == /* ]] || continue
  mkdir -p "$runtime$(dirname "$path")"
  cp -L "$path" "$runtime$path"
done < <(ldd "$node_bin" | awk '$2 == "=>" { print $3 } $1 ~ /^\// { print $1 }')
cp -R "$here/rootfs/." "$runtime/"
chmod 1777 "$runtime/tmp"

log "app: npm run build (into a fresh directory: no stale outputs of deleted sources)"
mkdir -p "$app/app"
(cd "$repo" && npx --no-install tsc -p tsconfig.build.json --outDir "$out/dist" --sourceMap false)
mkdir -p "$app/app/dist"
# Everything tsc built except the CLI (the demo and its sample FHIR server need dev dependencies):
# a new top-level package (runtime/ was one) comes along without editing this line.
for part in "$out/dist"/*/; do
  [[ $(basename "$part") == cli ]] || cp -R "$part" "$app/app/dist/"
done
mkdir -p "$app/app/crds" "$app/app/api/fhirmesh/v1"
cp "$repo/crds/fhirroutes.fhirmesh.io.yaml" "$app/app/crds/"
cp "$repo/api/fhirmesh/v1/discovery.proto" "$app/app/api/fhirmesh/v1/"
# package.json says "type": "module" for dist/ (and names the version); nothing else of it is used.
cp "$repo/package.json" "$app/app/"

log "node_modules: production dependencies from package-lock.json (npm ci --omit=dev)"
mkdir -p "$modules/app"
cp "$repo/package.json" "$repo/package-lock.json" "$modules/app/"
(cd "$modules/app" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >&2)
rm "$modules/app/package.json" "$modules/app/package-lock.json" "$modules/app/node_modules/.package-lock.json"
# Type declarations and source maps are never read at run time (node runs without
# --enable-source-maps): about half of node_modules, mostly @kubernetes/client-node's.
find "$modules/app/node_modules" -type f \( -name '*.d.ts' -o -name '*.d.mts' -o -name '*.d.cts' -o -name '*.map' \) -delete

# Everything root-owned and not writable by the user the image runs as; one file time for all.
for dir in "$runtime" "$modules" "$app"; do
  chown -R 0:0 "$dir"
  find "$dir" -exec touch -h --date="@$epoch" {} +
done
chown 65532:65532 "$runtime/home/nonroot"

rm -rf "$out/dist"
log "$(du -sh "$runtime" "$modules" "$app" | awk '{ printf "%s %s  ", $2, $1 }')"
