#!/usr/bin/env bash
# Type-checks the service and the core for the other desktop systems
# (docs/architecture.md, "Other systems"): app-core and chantry-service
# (library and binaries) for x86_64-pc-windows-gnu and aarch64-apple-darwin,
# with `cargo clippy -- -D warnings` (a `cargo check` whose warnings and
# lints are errors, as on Linux). The Windows named pipe, its DACL, the
# service registration and the macOS launchd code live behind cfg and are
# compiled only here; the tunnel's Linux-only modules are left out on both.
#
# SQLite: the sqlx build compiles its bundled C library for the target, for
# which this machine has no C toolchain (no mingw, no macOS SDK). A check
# links nothing, so LIBSQLITE3_SYS_USE_PKG_CONFIG=1 makes libsqlite3-sys use
# its pregenerated bindings and skip the C build; real builds on Windows and
# macOS compile the bundled SQLite as usual. The variable only touches the
# foreign targets' build-script runs (their own fingerprints), not the
# Linux build's.
#
# Uses $CARGO_TARGET_DIR (scripts/lib.sh) like the rest of the suite.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_cargo

targets=(x86_64-pc-windows-gnu aarch64-apple-darwin)

missing=()
for t in "${targets[@]}"; do
    rustup target list --installed 2>/dev/null | grep -qx "$t" || missing+=("$t")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> rustup target add ${missing[*]}"
    rustup target add "${missing[@]}"
fi

for t in "${targets[@]}"; do
    echo "==> cargo check (clippy, warnings are errors) for $t: app-core, chantry-service"
    LIBSQLITE3_SYS_USE_PKG_CONFIG=1 \
        cargo clippy -q --locked -p app-core -p chantry-service --lib --bins --target "$t" \
        -- -D warnings
done
echo "cargo check for ${targets[*]}: ok"
