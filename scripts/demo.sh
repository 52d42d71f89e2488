#!/usr/bin/env bash
# The main job at this stage: two Chantry tunnel engines exchange keys
# (X25519 + ML-KEM-1024) and pass packets, printed as they go. Later stages
# grow this into the full network-namespace demo with chantryd.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages build-essential pkg-config ca-certificates
ensure_cargo
cargo run --quiet --release --locked -p app-core --example demo
