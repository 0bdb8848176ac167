#!/usr/bin/env bash
# Builds the fhirmesh image without a container engine (npm run image): the shared libraries the
# Node 24 binary links against (no distribution, no shell, no npm), the stripped Node binary of the
# `node` npm package, the compiled dist/ of the proxy and the controller, production node_modules
# only, and two launchers (fhirmesh-proxy, fhirmesh-controller) run by the kernel through their
# #!/usr/local/bin/node line. User 65532:65532. The tag is the image's own manifest digest, so the
# same sources give the same tag. The layers come from image/assemble-layers.sh, which the
# Dockerfile runs too.
#
# Usage: image/build-image.sh [--out DIR]      (default DIR: dist/image)
# Environment: IMAGE_NAME (default ghcr.io/fhirmesh/fhirmesh, the chart's image.repository),
#   SOURCE_DATE_EPOCH (file times and created dates; default 0, as ko does, so content alone decides).
# Writes DIR/oci (OCI layout, tag sha-<12 hex>), DIR/fhirmesh-image.tar (docker-archive, for
# `ctr images import` or `docker load`) and DIR/image.env (IMAGE_NAME, IMAGE_TAG, IMAGE_REF).
# Needs umoci and skopeo (apt-get install umoci skopeo).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
out=$repo/dist/image
case ${1:-} in
  '') ;;
  --out) out=${2:?--out needs a directory} ;;
  -h | --help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2; exit 0 ;;
  *) echo "build-image: unknown argument '$1' (try --help)" >&2; exit 2 ;;
esac
image_name=${IMAGE_NAME:-ghcr.io/fhirmesh/fhirmesh}
epoch=${SOURCE_DATE_EPOCH:-0}
created=$(date -u --date="@$epoch" +%Y-%m-%dT%H:%M:%SZ)

log() { echo "build-image: $*" >&2; }
die() { log "$*"; exit 1; }
for tool in umoci skopeo; do
  command -v "$tool" >/dev/null || die "$tool is needed on PATH (apt-get install umoci skopeo)"
done
node_bin=$repo/node_modules/node/bin/node
[[ -x $node_bin ]] || die "no Node binary at $node_bin: run npm ci first (the node package provides it)"
node_version=$("$node_bin" --version)
[[ $node_version == v24.* ]] || die "the image runs Node 24; $node_bin is $node_version"

started=$SECONDS
scratch=$(mktemp -d "${TMPDIR:-/tmp}/fhirmesh-image.XXXXXX")
trap 'rm -rf "$scratch"' EXIT

# The three layer directories; the Dockerfile runs the same script, so both give one layout.
layers=$scratch/layers
SOURCE_DATE_EPOCH=$epoch bash "$here/assemble-layers.sh" "$layers"
runtime=$layers/runtime modules=$layers/modules app=$layers/app

log "OCI layout (umoci)"
oci=$scratch/oci
umoci init --layout "$oci"
umoci new --image "$oci:build"
history=(--history.created "$created" --history.author fhirmesh)
umoci insert --image "$oci:build" "${history[@]}" --history.created_by "runtime: node $node_version + its libraries" "$runtime" /
umoci insert --image "$oci:build" "${history[@]}" --history.created_by "node_modules: npm ci --omit=dev" "$modules" /
umoci insert --image "$oci:build" "${history[@]}" --history.created_by "app: dist, crds, discovery.proto" "$app" /
umoci config --image "$oci:build" --created "$created" --author fhirmesh --architecture amd64 --os linux \
  --no-history --config.user 65532:65532 --config.workingdir /app \
  --config.env PATH=/usr/local/bin:/usr/bin:/bin --config.env NODE_ENV=production \
  --config.cmd fhirmesh-proxy \
  --config.exposedports 8080/tcp --config.exposedports 9901/tcp --config.exposedports 9902/tcp \
  --config.exposedports 15010/tcp --config.exposedports 9443/tcp \
  --config.label org.opencontainers.image.title=fhirmesh \
  --config.label "org.opencontainers.image.version=$("$node_bin" -p 'require(process.argv[1]).version' "$repo/package.json")"
umoci gc --layout "$oci"

# The tag is the manifest's digest: the same content (and SOURCE_DATE_EPOCH) gives the same tag.
digest=$("$node_bin" -p 'JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).manifests.find((m) => m.annotations["org.opencontainers.image.ref.name"] === "build").digest' "$oci/index.json")
tag=sha-${digest#sha256:}
tag=${tag:0:16}
umoci tag --image "$oci:build" "$tag"
umoci rm --image "$oci:build"

rm -rf "$out/oci" "$out/fhirmesh-image.tar"
mkdir -p "$out"
mv "$oci" "$out/oci"
skopeo --insecure-policy copy --quiet "oci:$out/oci:$tag" "docker-archive:$out/fhirmesh-image.tar:$image_name:$tag"
cat >"$out/image.env" <<EOF
IMAGE_NAME=$image_name
IMAGE_TAG=$tag
IMAGE_REF=$image_name:$tag
IMAGE_DIGEST=$digest
EOF

# Size as pulled (compressed layers + config) and as unpacked on a node.
compressed=$("$node_bin" -e '
  const fs = require("fs"), path = require("path");
  const blob = (d) => path.join(process.argv[1], "blobs", ...d.split(":"));
  const index = JSON.parse(fs.readFileSync(path.join(process.argv[1], "index.json"), "utf8"));
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0].digest), "utf8"));
  console.log([manifest.config, ...manifest.layers].reduce((n, d) => n + d.size, 0));
' "$out/oci")
unpacked=$(du -scb "$runtime" "$modules" "$app" | tail -1 | cut -f1)
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
log "built $image_name:$tag in $((SECONDS - started)) s: $(mib "$compressed") compressed, $(mib "$unpacked") unpacked"
log "OCI layout $out/oci, docker-archive $out/fhirmesh-image.tar ($(du -h "$out/fhirmesh-image.tar" | cut -f1))"
echo "IMAGE_REF=$image_name:$tag"
