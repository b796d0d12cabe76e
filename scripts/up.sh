#!/usr/bin/env bash
# Builds Bramble and starts a single-node cluster on this machine; kubectl then talks to it.
# Extra arguments go to `bramble up` (see `bramble up --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh build
cargo build --release --locked -p bramble
exec ./target/release/bramble up "$@"
