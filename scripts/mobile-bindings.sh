#!/usr/bin/env bash
# Generates the Kotlin, Swift and Python bindings of the mobile engine
# (chantry-mobile) from its compiled library with uniffi-bindgen, into the
# places the hosts use them from:
#   mobile/android/chantry/src/main/java/org/chantry/mobile/chantry_mobile.kt
#   mobile/ios/ChantryMobile/Generated/{ChantryMobile.swift,chantry_mobileFFI.h,chantry_mobileFFI.modulemap}
#   mobile/python/chantry_mobile.py
#
#   scripts/mobile-bindings.sh            regenerate them
#   scripts/mobile-bindings.sh --check    fail if the committed files differ
#                                         from what the current code generates
#   scripts/mobile-bindings.sh --python DIR
#                                         only the Python bindings, with the
#                                         library next to them, into DIR (tests)
#
# The output is unformatted (--no-format): it then depends only on the code
# and the pinned uniffi version, not on ktlint or swiftformat being present.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode=write
pydir=
case "${1:-}" in
    "") ;;
    --check) mode=check ;;
    --python) mode=python; pydir="${2:?--python needs a directory}" ;;
    *) echo "usage: $0 [--check | --python DIR]" >&2; exit 2 ;;
esac

# Only the cdylib (the staticlib is for iOS builds), and the generator in a
# separate cargo run so the library is built without the generator's
# features.
cargo rustc -q -p chantry-mobile --lib --crate-type cdylib --locked
cargo build -q -p uniffi-bindgen --locked
lib="$CARGO_TARGET_DIR/debug/libchantry_mobile.so"
bindgen="$CARGO_TARGET_DIR/debug/uniffi-bindgen"

gen="$(mktemp -d)"
trap 'rm -rf "$gen"' EXIT
for lang in kotlin swift python; do
    "$bindgen" generate --no-format --language "$lang" --out-dir "$gen/$lang" "$lib" >/dev/null
done

if [ "$mode" = python ]; then
    mkdir -p "$pydir"
    cp "$gen/python/chantry_mobile.py" "$lib" "$pydir/"
    exit 0
fi

# generated file -> committed file
pairs=(
    "kotlin/org/chantry/mobile/chantry_mobile.kt" "mobile/android/chantry/src/main/java/org/chantry/mobile/chantry_mobile.kt"
    "swift/ChantryMobile.swift" "mobile/ios/ChantryMobile/Generated/ChantryMobile.swift"
    "swift/chantry_mobileFFI.h" "mobile/ios/ChantryMobile/Generated/chantry_mobileFFI.h"
    "swift/chantry_mobileFFI.modulemap" "mobile/ios/ChantryMobile/Generated/chantry_mobileFFI.modulemap"
    "python/chantry_mobile.py" "mobile/python/chantry_mobile.py"
)
# Every generated file must be in the list above.
expected=$(( ${#pairs[@]} / 2 ))
produced=$(find "$gen" -type f | wc -l)
if [ "$produced" -ne "$expected" ]; then
    echo "error: uniffi-bindgen produced $produced files, this script knows $expected:" >&2
    (cd "$gen" && find . -type f) >&2
    exit 1
fi

drift=0
for ((i = 0; i < ${#pairs[@]}; i += 2)); do
    src="$gen/${pairs[i]}"
    dst="${pairs[i + 1]}"
    if [ "$mode" = check ]; then
        if ! cmp -s "$src" "$dst"; then
            echo "drift: $dst differs from what uniffi-bindgen generates now" >&2
            diff -u "$dst" "$src" 2>&1 | head -20 >&2 || true
            drift=1
        fi
    else
        mkdir -p "$(dirname "$dst")"
        cp "$src" "$dst"
        echo "wrote $dst"
    fi
done
if [ "$drift" -ne 0 ]; then
    echo "error: the generated bindings are out of date; run scripts/mobile-bindings.sh and commit" >&2
    exit 1
fi
[ "$mode" = check ] && echo "mobile bindings: no drift (${expected} files)"
exit 0
