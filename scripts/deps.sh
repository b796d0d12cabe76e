#!/usr/bin/env bash
# Installs what building and testing Bramble needs on a fresh Debian machine (run as root).
# Usage: scripts/deps.sh [build|test]   (test installs the build packages too)
set -euo pipefail
what=${1:-build}

build_pkgs=(pkg-config libseccomp-dev)
test_pkgs=(busybox-static docker-registry skopeo umoci e2fsprogs dosfstools mtools parted fdisk
           squashfs-tools erofs-utils kmod cpio xz-utils zstd qemu-system-arm iproute2 curl file
           containernetworking-plugins)

want=("${build_pkgs[@]}")
[ "$what" = test ] && want+=("${test_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "missing packages: ${missing[*]} (run as root, or install them)" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
