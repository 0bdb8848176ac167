#!/usr/bin/env bash
# The real-node e2e suite (npm run test:e2e): builds what it needs (cached), makes a network namespace
# of its own, and runs vitest inside it; the test's global setup starts etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, containerd + runc, the kubelet, kube-proxy and CoreDNS
# there. Pods and Services exist only inside that namespace, whose default route is unreachable and
# whose pod egress is dropped except to the node, pods and Services: nothing leaves the machine.
# Restores what the kubelet changes on the host (three sysctls, a few fixed paths, cgroups) on exit.
#
# Usage: test/e2e/run.sh [vitest args...]       Needs root, Go (first build), and the Debian packages
# containerd runc iptables iproute2 conntrack umoci skopeo containernetworking-plugins (.ci/run installs them).
# FHIRMESH_KEEP_E2E=1 keeps the run directory (logs of every component) after the run.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
log() { echo "e2e: $*" >&2; }
die() {
  log "$*"
  exit 1
}

[[ $(id -u) == 0 ]] || die "the e2e suite runs a kubelet and containerd: run it as root"
for tool in containerd containerd-shim-runc-v2 runc ctr iptables ip nsenter conntrack umoci skopeo; do
  command -v "$tool" >/dev/null || die "$tool is missing: apt-get install containerd runc iptables iproute2 conntrack umoci skopeo containernetworking-plugins"
done
for plugin in bridge host-local loopback; do
  [[ -x /usr/lib/cni/$plugin ]] || die "/usr/lib/cni/$plugin is missing: apt-get install containernetworking-plugins"
done

# Builds, on the host network (the Go module proxy); each is a no-op when cached.
started=$SECONDS
while IFS='=' read -r key value; do
  [[ $key == FHIRMESH_* ]] && export "$key=$value"
done < <(bash "$repo/test/cluster/build/build-control-plane.sh")
FHIRMESH_NODE_BIN=$(bash "$here/build/build-node.sh" | sed -n 's/^FHIRMESH_NODE_BIN=//p')
export FHIRMESH_NODE_BIN
bash "$repo/image/build-image.sh" >/dev/null
export FHIRMESH_IMAGE_ARCHIVE=$repo/dist/image/fhirmesh-image.tar
# shellcheck disable=SC1091
source "$repo/dist/image/image.env"
export FHIRMESH_IMAGE_NAME=$IMAGE_NAME FHIRMESH_IMAGE_TAG=$IMAGE_TAG
log "binaries and image ready in $((SECONDS - started)) s ($IMAGE_NAME:$IMAGE_TAG)"

run_dir=$(mktemp -d "${TMPDIR:-/tmp}/fhirmesh-node-e2e.XXXXXX")
export FHIRMESH_E2E_DIR=$run_dir
netns=fhirmesh-e2e-$$

# What the kubelet and CNI change outside the run dir: saved now, put back on exit.
sysctls=(vm.overcommit_memory kernel.panic kernel.panic_on_oops)
declare -A saved_sysctl
for key in "${sysctls[@]}"; do saved_sysctl[$key]=$(sysctl -n "$key"); done
fixed_paths=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /usr/libexec/kubernetes)
declare -A existed
for p in "${fixed_paths[@]}"; do [[ -e $p ]] && existed[$p]=1; done
cgroup_roots=()
for root in /sys/fs/cgroup/*/; do [[ -e ${root}kubepods ]] || cgroup_roots+=("${root}kubepods"); done

cleanup() {
  local status=$?
  set +e
  # Processes the run left (a crashed setup): every one whose cwd or arguments name the run dir.
  for pid_dir in /proc/[0-9]*; do
    pid=${pid_dir#/proc/}
    [[ $pid == "$$" ]] && continue
    if tr '\0' ' ' <"$pid_dir/cmdline" 2>/dev/null | grep -qF "$run_dir"; then kill -KILL "$pid" 2>/dev/null; fi
  done
  # Mounts under the run dir (kubelet volumes, container rootfs, netns files), deepest first.
  awk -v dir="$run_dir" 'index($5, dir) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r mount; do
    umount -l "$mount" 2>/dev/null
  done
  for key in "${sysctls[@]}"; do
    [[ $(sysctl -n "$key") == "${saved_sysctl[$key]}" ]] || sysctl -qw "$key=${saved_sysctl[$key]}"
  done
  for p in "${fixed_paths[@]}"; do [[ -n ${existed[$p]:-} ]] || rm -rf "$p"; done
  # cgroups the kubelet made (kubepods in each hierarchy), leaves first; only empty ones can go.
  for root in "${cgroup_roots[@]}"; do
    [[ -d $root ]] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  ip netns delete "$netns" 2>/dev/null
  if [[ ${FHIRMESH_KEEP_E2E:-0} == 1 || $status != 0 ]]; then
    log "run directory kept: $run_dir (logs/ has every component's log)"
  else
    rm -rf "$run_dir"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The node's network: one namespace, a veth pair inside it for the node IP (no dummy module here),
# and no way out. Pod and Service ranges exist only in here.
ip netns add "$netns"
in_netns() { nsenter --net="/run/netns/$netns" "$@"; }
in_netns ip link set lo up
in_netns ip link add fm-node type veth peer name fm-peer
in_netns ip addr add 10.77.0.2/24 dev fm-node
in_netns ip link set fm-node up
in_netns ip link set fm-peer up
in_netns ip route add unreachable default
# The node's own connections to a Service IP (the apiserver calling the webhook, the test calling
# the gateway) are routed before kube-proxy's DNAT: give the Service range a route, or they fail there.
in_netns ip route add 10.96.0.0/24 dev fm-node src 10.77.0.2
# Bridged pod-to-pod replies of Service traffic must pass conntrack (per namespace on this kernel).
in_netns sysctl -qw net.bridge.bridge-nf-call-iptables=1
# Pods may reach pods and Services (already DNATed to pods here); the node's own addresses are
# INPUT, not FORWARD, so they stay reachable. Everything else they send is dropped.
in_netns iptables -N FHIRMESH-E2E-EGRESS
in_netns iptables -A FHIRMESH-E2E-EGRESS -d 10.244.0.0/16 -j RETURN
in_netns iptables -A FHIRMESH-E2E-EGRESS -m conntrack --ctstate RELATED,ESTABLISHED -j RETURN
in_netns iptables -A FHIRMESH-E2E-EGRESS -j DROP
in_netns iptables -I FORWARD 1 -s 10.244.0.0/16 -j FHIRMESH-E2E-EGRESS

log "network namespace $netns (node 10.77.0.2, pods 10.244.0.0/24, services 10.96.0.0/24); run dir $run_dir"
cd "$repo"
in_netns "$repo/node_modules/.bin/node" "$repo/node_modules/vitest/vitest.mjs" run --config test/e2e/vitest.config.ts "$@"
