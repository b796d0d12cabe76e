#!/usr/bin/env bash
# Installs what the tests need and runs them all (as root: they start real containers,
# cgroups and registries). Heavier suites: BRAMBLE_SLOW_TESTS=1 scripts/test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh test
# The board-image and QEMU tests put the static aarch64 binary into real images.
bash scripts/build-aarch64.sh
cargo build --locked --workspace --all-targets
cargo test --locked --workspace --no-fail-fast
