#!/usr/bin/env bash
# torch-attn against LibTorch 2.x: Debian 13 (trixie) in a chroot, with its libtorch-dev 2.6 and
# python3-torch 2.6 as the PyTorch peer. Clones this checkout's HEAD into the chroot and runs
# `npm ci && npm run typecheck && npm test` there, against LibTorch 2.6 (CPU).
#
#   bash scripts/check-libtorch2.sh           # the CPU suite (.ci/run runs it after the Debian 12 suite)
#   bash scripts/check-libtorch2.sh --cuda    # libtorch-cuda-dev 2.6 (CUDA 12.4): compile and link
#                                             # the addon, check it links libtorch_cuda and says cuda
#
# The chroot is kept between runs in $TORCH_ATTN_TRIXIE (default /var/cache/torch-attn/trixie):
# the first run takes debootstrap (~25 s) and the packages (~800 MB, a few minutes; --cuda adds
# ~2.4 GB). Needs root (debootstrap, mounts). Node.js and npm are this machine's, copied in, so
# both suites run the same Node. Mounts are always undone on exit.
set -euo pipefail

mode=cpu
for arg in "$@"; do
  case "$arg" in
    --cuda) mode=cuda ;;
    -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
    *) echo "check-libtorch2: unknown argument '$arg' (allowed: --cuda)" >&2; exit 2 ;;
  esac
done

repo=$(cd "$(dirname "$0")/.." && pwd)
root=${TORCH_ATTN_TRIXIE:-/var/cache/torch-attn/trixie}
# libtorch-cuda-dev replaces libtorch-dev: the CUDA build gets a chroot of its own.
if [ "$mode" = cuda ]; then root="$root-cuda"; fi
started=$(date +%s)
log() { echo "check-libtorch2 [$(( $(date +%s) - started )) s]: $*"; }

if [ "$(id -u)" -ne 0 ]; then echo "check-libtorch2: needs root (debootstrap, chroot, mounts)" >&2; exit 2; fi

if [ ! -x "$root/usr/bin/apt-get" ]; then
  command -v debootstrap >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null
  log "debootstrap trixie into $root"
  rm -rf "$root"
  mkdir -p "$root"
  debootstrap --variant=minbase --components=main,contrib,non-free trixie "$root" http://deb.debian.org/debian >/dev/null
fi

mounts=()
cleanup() {
  for ((i=${#mounts[@]}-1; i>=0; i--)); do umount -l "${mounts[$i]}" 2>/dev/null || true; done
}
trap cleanup EXIT
bind() {  # bind SRC DST [ro]
  mkdir -p "$2"
  mount --bind "$1" "$2"
  mounts+=("$2")
  if [ "${3:-}" = ro ]; then mount -o remount,bind,ro "$2"; fi
}
for fs in proc sys dev dev/pts; do bind "/$fs" "$root/$fs"; done

# This machine's extra CA certificates (npm over TLS) and DNS.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /usr/local/share/ca-certificates/*.crt "$root/usr/local/share/ca-certificates/" 2>/dev/null || true
cp /etc/resolv.conf "$root/etc/resolv.conf"
# contrib holds libtorch-cuda-dev, non-free the CUDA toolkit (nvcc) its CMake package needs.
echo "deb http://deb.debian.org/debian trixie main contrib non-free" > "$root/etc/apt/sources.list"
rm -f "$root/etc/apt/sources.list.d/debian.sources"

# The README's packages, as they are named on Debian 13.
packages="ca-certificates git curl cmake g++ make python3 libturbojpeg0-dev libpng-dev nlohmann-json3-dev"  # curl: the README's serve examples
if [ "$mode" = cuda ]; then
  # The CUDA LibTorch depends on Gloo's CUDA build, which conflicts with libgloo-dev.
  packages="$packages libgloo-cuda-dev libtorch-cuda-dev nvidia-cuda-toolkit libnccl-dev binutils"
else
  packages="$packages libgloo-dev libtorch-dev python3-torch python3-torchvision"
fi
log "apt-get install ($mode)"
if ! chroot "$root" bash -c "export DEBIAN_FRONTEND=noninteractive; apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $packages >/dev/null"; then
  # libtorch-cuda depends on nvidia-cudnn, whose install script downloads cuDNN from NVIDIA:
  # unreachable here, so it stays unconfigured. Its files (and LibTorch's) are unpacked, which
  # is all compiling and linking need.
  if [ "$mode" = cuda ] && [ -e "$root/usr/lib/x86_64-linux-gnu/libtorch_cuda.so" ] && [ -x "$root/usr/bin/nvcc" ]; then
    log "nvidia-cudnn could not be configured (it fetches cuDNN from NVIDIA); building against the unpacked packages"
  else
    echo "check-libtorch2: apt-get install failed" >&2
    exit 1
  fi
fi
chroot "$root" update-ca-certificates >/dev/null

# This machine's Node.js and npm.
install -D -m 755 "$(command -v node)" "$root/usr/local/bin/node"
rm -rf "$root/usr/local/lib/node_modules/npm"
mkdir -p "$root/usr/local/lib/node_modules"
cp -a "$(dirname "$(dirname "$(readlink -f "$(command -v npm)")")")" "$root/usr/local/lib/node_modules/npm"
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"

# A fresh clone of HEAD; ../shared beside it when this checkout has one (the peer models).
work="$root/build"
rm -rf "$work/torch-attn"
mkdir -p "$work"
git clone -q "$repo" "$work/torch-attn"
if [ -d "$repo/../shared" ]; then bind "$(cd "$repo/../shared" && pwd)" "$work/shared" ro; fi

versions=$(chroot "$root" bash -c "dpkg-query -W -f='\${Package} \${Version}\n' libtorch-dev libtorch-cuda-dev python3-torch 2>/dev/null | awk 'NF == 2' | tr '\n' ';'")
log "building against: $versions"

if [ "$mode" = cpu ]; then
  # Debian 13's oneDNN 3.7 is wrong above SSE4.1 (CONTRIBUTING, "Debian 13's oneDNN"): torch-attn
  # caps itself, and the PyTorch 2.6 that writes the reference fixtures must run the same way, or
  # the references are wrong.
  chroot "$root" bash -c "cd /build/torch-attn && export HOME=/root ONEDNN_MAX_CPU_ISA=SSE41 && npm ci --no-audit --no-fund && npm run typecheck && npm test"
  log "LibTorch 2.x suite passed"
  exit 0
fi

# --cuda: configure and build against the CUDA LibTorch, then check what was linked.
chroot "$root" bash -c "cd /build/torch-attn && export HOME=/root && npm ci --no-audit --no-fund --ignore-scripts && \
  npm run build:native"
addon="$work/torch-attn/build/Release/torch_attn.node"
log "addon: $addon"
readelf -d "$addon" | grep NEEDED
if ! readelf -d "$addon" | grep -q 'libtorch_cuda'; then
  echo "check-libtorch2: the addon does not link libtorch_cuda" >&2
  exit 1
fi
# The CUDA-specific code paths are compiled in when CMake found torch_cuda (Ninja or Make build).
grep -rqs "TORCH_ATTN_WITH_CUDA=1" "$work/torch-attn/build/CMakeFiles" "$work/torch-attn/build/build.ninja" || { echo "check-libtorch2: built without TORCH_ATTN_WITH_CUDA=1" >&2; exit 1; }
# c10d's NCCL backend: compiled in (TORCH_ATTN_NCCL=1) and used (the addon calls ProcessGroupNCCL's
# constructor, which libtorch_cuda defines).
grep -rqs "TORCH_ATTN_NCCL=1" "$work/torch-attn/build/CMakeFiles" "$work/torch-attn/build/build.ninja" || { echo "check-libtorch2: built without the NCCL backend (TORCH_ATTN_NCCL=1)" >&2; exit 1; }
nccl=$(nm -DC --undefined-only "$addon" | grep -c 'c10d::ProcessGroupNCCL::ProcessGroupNCCL' || true)
if [ "$nccl" -eq 0 ]; then echo "check-libtorch2: the addon does not call ProcessGroupNCCL" >&2; exit 1; fi
log "NCCL backend compiled in: $(nm -DC --undefined-only "$addon" | grep 'c10d::ProcessGroupNCCL::ProcessGroupNCCL' | head -1 | sed 's/^ *U //')"
# node-gyp's build (the fallback) takes the same decisions from scripts/libtorch.js.
gyp_defines=$(chroot "$root" bash -c "cd /build/torch-attn && node scripts/libtorch.js --gyp-defines")
case "$gyp_defines" in
  *TORCH_ATTN_WITH_CUDA=1*TORCH_ATTN_NCCL=1*) log "node-gyp's defines agree: CUDA and NCCL" ;;
  *) echo "check-libtorch2: node-gyp's defines lack CUDA or NCCL: $gyp_defines" >&2; exit 1 ;;
esac
# Loading needs cuDNN 9 (nvidia-cudnn fetches it from NVIDIA, unreachable here) and a GPU; where
# it loads, buildInfo() must say cuda and the CUDA version LibTorch states.
if chroot "$root" bash -c "cd /build/torch-attn && node -e \"const b=require('./build/Release/torch_attn.node').buildInfo(); console.log(JSON.stringify(b)); process.exit(b.cuda && /^[0-9]+[.][0-9]+$/.test(b.cudaVersion) ? 0 : 1)\""; then
  log "CUDA build loads and reports cuda: true and its CUDA version"
else
  log "CUDA build compiled and linked against libtorch_cuda; it does not load here (see above: cuDNN / GPU)"
fi
