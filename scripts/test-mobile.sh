#!/usr/bin/env bash
# The mobile engine's own checks (mobile/, uniffi-bindgen/), as CI runs them:
#   1. the Python tests through the generated bindings (mobile/tests/python):
#      two engines over a simulated lossy link, an engine tunnelling over
#      loopback UDP to a chantryd in a network namespace with a ping inside
#      the tunnel (root), the typed errors, the memory budget;
#   2. the committed Kotlin, Swift and Python bindings match what the code
#      generates (scripts/mobile-bindings.sh --check);
#   3. `cargo check` of the mobile crate for aarch64-linux-android and
#      aarch64-apple-ios.
# The Rust tests of the crate (cargo test -p chantry-mobile) run with the
# workspace's tests in scripts/test.sh.
#
# Uses $CHANTRYD if it names a chantryd built with test-hooks; builds one
# otherwise. Run as root on Debian; it installs what it needs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

ensure_packages iproute2 python3
ensure_cargo

echo "==> mobile: chantryd for the loopback tunnel test"
if [ -z "${CHANTRYD:-}" ] || [ ! -x "$CHANTRYD" ]; then
    cargo build -q --profile e2e -p chantry-service --features test-hooks --bins --locked
    export CHANTRYD="$CARGO_TARGET_DIR/e2e/chantryd"
fi

echo "==> mobile: Python bindings and library into a temporary directory"
py="$(mktemp -d)"
trap 'rm -rf "$py"' EXIT
scripts/mobile-bindings.sh --python "$py"
cargo run -q -p chantry-mobile --example vicar_fixture --locked -- "$py/fixture.vicar" "correct horse"

echo "==> mobile: pytest in a virtual environment"
venv="$CARGO_TARGET_DIR/mobile-venv"
if ! "$venv/bin/python" -c "import pytest" 2>/dev/null; then
    rm -rf "$venv"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        ensure_packages python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install -q --disable-pip-version-check pytest
fi
CHANTRY_MOBILE_PY="$py" "$venv/bin/python" -m pytest -q -p no:cacheprovider mobile/tests/python

echo "==> mobile: generated Kotlin, Swift and Python bindings have not drifted"
scripts/mobile-bindings.sh --check

echo "==> mobile: cargo check for the phones"
for target in aarch64-linux-android aarch64-apple-ios; do
    if ! rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        rustup target add "$target" >/dev/null 2>&1 || true
    fi
    if rustup target list --installed 2>/dev/null | grep -qx "$target"; then
        cargo check -q -p chantry-mobile --target "$target" --locked
        echo "cargo check -p chantry-mobile --target $target: ok"
    else
        echo "SKIPPED: cargo check for $target: the Rust standard library for it is not installed and 'rustup target add $target' failed (no rustup, or its download server is unreachable)"
    fi
done
