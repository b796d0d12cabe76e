#!/usr/bin/env bash
# Installs what the tests need and runs them all (as root: they start real containers,
# cgroups and registries). Heavier suites: BRAMBLE_SLOW_TESTS=1 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
# One clean build: incremental caches would only add gigabytes to a shared disk.
export CARGO_INCREMENTAL=0
df -h "${CARGO_TARGET_DIR:-target}" /tmp 2>/dev/null || df -h .
# The board-image and QEMU tests put the static aarch64 binary into real images.
bash scripts/build-aarch64.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast
