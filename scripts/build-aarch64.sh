#!/usr/bin/env bash
# Build the static aarch64 (musl) `bramble` binary that goes into board images.
#
#   scripts/build-aarch64.sh            -> target/aarch64-unknown-linux-musl/release/bramble
#
# Tools: rustup's aarch64-unknown-linux-musl target and cargo-zigbuild with ziglang (both from
# PyPI) as the C cross compiler for -sys crates (LMDB). Installs what is missing.
#
# Environment:
#   BRAMBLE_AARCH64_PROFILE   cargo profile (default: release)
#   BRAMBLE_AARCH64_FEATURES  extra cargo arguments for the feature set, e.g.
#                             "--no-default-features --features foo". libcontainer's `libseccomp`
#                             feature links Debian's glibc-built libseccomp.a, which does not link
#                             for aarch64 musl (undefined __fprintf_chk); build without that feature
#                             if the root package exposes one.
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

# shellcheck disable=SC2086
cargo zigbuild --profile "$profile" --target "$target" -p bramble ${BRAMBLE_AARCH64_FEATURES:-}

out="target/$target/$profile/bramble"
file "$out" 2>/dev/null || true
ls -l "$out"
