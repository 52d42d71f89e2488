#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Run as root on a
# fresh Debian machine; it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages build-essential pkg-config ca-certificates
ensure_cargo

echo "==> format"
cargo fmt --all --check

echo "==> clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "==> known answers from the reference implementation (../shared/vectors)"
cargo test -p app-core --test vectors --locked -- --nocapture --test-threads=1 2>&1 \
    | grep -E '^(vectors:|test |test result)'

echo "==> every test in the workspace"
cargo test --workspace --locked

echo "==> fuzz targets build and run briefly"
scripts/fuzz.sh smoke
