#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer). `scripts/fuzz.sh smoke` builds every
# target and runs each for a few seconds (CI); `scripts/fuzz.sh TARGET [SECS]`
# runs one target longer.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh
ensure_packages build-essential
ensure_cargo
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz from crates.io"
    cargo install cargo-fuzz --locked --quiet
fi
# cargo-fuzz needs -Z flags; allow them on the stable toolchain.
export RUSTC_BOOTSTRAP=1
# The fuzz crate has its own target dir (sanitizer builds differ).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR}-fuzz"

mode="${1:-smoke}"
if [ "$mode" = smoke ]; then
    secs="${FUZZ_SECS:-5}"
    targets=$(cargo fuzz list)
    cargo fuzz build --release --sanitizer none
    for t in $targets; do
        out=$(cargo fuzz run --release --sanitizer none "$t" -- -max_total_time="$secs" -rss_limit_mb=2048 2>&1) || {
            echo "$out" | tail -40
            echo "fuzz: $t FAILED"
            exit 1
        }
        runs=$(echo "$out" | grep -Eo 'Done [0-9]+ runs' | tail -1)
        echo "fuzz: $t ok (${runs:-ran} in ${secs}s)"
    done
else
    cargo fuzz run --release "$mode" -- -max_total_time="${2:-60}"
fi
