#!/usr/bin/env bash
# Build the static aarch64 (musl) `bramble` binary that goes into board images, with the container
# runtime and seccomp (libcontainer's `libseccomp` feature).
#
#   scripts/build-aarch64.sh            -> target/aarch64-unknown-linux-musl/release/bramble
#
# Tools: rustup's aarch64-unknown-linux-musl target and cargo-zigbuild with ziglang (both from
# PyPI) as the C cross compiler for -sys crates (LMDB, the __fprintf_chk shim). Installs what is
# missing.
#
# libseccomp: Debian's arm64 libseccomp.a, fetched with `apt-get download libseccomp-dev:arm64`
# and unpacked with `dpkg -x` under target/aarch64-deps (never installed: arm64 packages would
# replace host files). apt must know arm64: scripts/deps.sh does `dpkg --add-architecture arm64`.
# That archive is built for glibc; the one glibc-only symbol it needs (__fprintf_chk) comes from
# kubelet/runtime/build.rs on musl targets.
#
# Environment:
#   BRAMBLE_AARCH64_PROFILE   cargo profile (default: release)
#   BRAMBLE_AARCH64_FEATURES  extra cargo arguments, e.g. "--no-default-features --features foo"
set -euo pipefail
cd "$(dirname "$0")/.."
target=aarch64-unknown-linux-musl
profile="${BRAMBLE_AARCH64_PROFILE:-release}"

if ! rustup target list --installed | grep -qx "$target"; then
    rustup target add "$target"
fi
if ! command -v cargo-zigbuild >/dev/null || ! python3 -c 'import ziglang' 2>/dev/null; then
    python3 -m pip install --quiet ziglang cargo-zigbuild
fi

# Debian's static libseccomp for arm64.
deps="$PWD/target/aarch64-deps"
seccomp_lib="$deps/root/usr/lib/aarch64-linux-gnu"
if [ ! -f "$seccomp_lib/libseccomp.a" ]; then
    if ! apt-cache show libseccomp-dev:arm64 >/dev/null 2>&1; then
        echo "apt has no arm64 package lists: run scripts/deps.sh (dpkg --add-architecture arm64)" >&2
        exit 1
    fi
    rm -rf "$deps" && mkdir -p "$deps/debs"
    # apt's _apt sandbox user cannot write into this tree; download as the caller.
    (cd "$deps/debs" && apt-get -q -o APT::Sandbox::User="$(id -un)" download \
        libseccomp-dev:arm64 libseccomp2:arm64)
    for deb in "$deps"/debs/*.deb; do
        dpkg -x "$deb" "$deps/root"
        dpkg-deb -W --showformat='${Package} ${Version}\n' "$deb" >>"$deps/versions"
    done
fi
echo "libseccomp for $target: $(paste -sd';' "$deps/versions" 2>/dev/null) ($seccomp_lib/libseccomp.a)"
export LIBSECCOMP_LIB_PATH="$seccomp_lib"
export LIBSECCOMP_LINK_TYPE=static

# shellcheck disable=SC2086
cargo zigbuild --locked --profile "$profile" --target "$target" -p bramble ${BRAMBLE_AARCH64_FEATURES:-}

out="target/$target/$profile/bramble"
info=$(file "$out")
echo "$info"
case "$info" in
    *"ARM aarch64"*"statically linked"*|*"ARM aarch64"*"static-pie linked"*) ;;
    *) echo "$out is not a static aarch64 executable" >&2; exit 1 ;;
esac
ls -l "$out"
