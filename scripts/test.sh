#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls this). Run as root on a
# fresh Debian machine; it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages build-essential pkg-config ca-certificates iproute2 iputils-ping iperf3 nftables
ensure_cargo

echo "==> desktop app: its system libraries, front-end tests and build (the workspace embeds app-ui/dist)"
scripts/test-gui.sh deps

echo "==> format"
cargo fmt --all --check

echo "==> clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy -p chantry-service --all-targets --features test-hooks --locked -- -D warnings
scripts/check-targets.sh

echo "==> known answers from the reference implementation (../shared/vectors)"
cargo test -p app-core --test vectors --locked -- --nocapture --test-threads=1 2>&1 \
    | grep -E '^(vectors:|test |test result)'

echo "==> chantryd for the end-to-end tests (test-hooks build)"
cargo build --profile e2e -p chantry-service --features test-hooks --bins --locked
export CHANTRYD="$CARGO_TARGET_DIR/e2e/chantryd"

echo "==> every test in the workspace but the end-to-end ones"
cargo test --workspace --exclude chantry-e2e --locked
cargo test -p chantry-service --features test-hooks --locked

echo "==> end-to-end: chantryd in network namespaces (one test at a time)"
cargo test -p chantry-e2e --locked -- --test-threads=1

echo "==> mobile: Python tests through the generated bindings, drift, phone targets"
scripts/test-mobile.sh

echo "==> desktop app: the end-to-end test in a real window with its tray"
scripts/test-gui.sh e2e

echo "==> fuzz targets build and run briefly"
scripts/fuzz.sh smoke
