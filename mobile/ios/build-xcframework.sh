#!/usr/bin/env bash
# Builds ChantryMobile.xcframework (device and simulator static libraries
# with the uniffi C header and module map) for the Xcode project. Runs on a
# Mac with Xcode and rustup; see README.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
targets=(aarch64-apple-ios aarch64-apple-ios-sim)
rustup target add "${targets[@]}"
for t in "${targets[@]}"; do
    cargo build --release -p chantry-mobile --lib --target "$t" --locked
done
out=mobile/ios/build
rm -rf "$out" && mkdir -p "$out/headers"
cp mobile/ios/ChantryMobile/Generated/chantry_mobileFFI.h "$out/headers/"
cp mobile/ios/ChantryMobile/Generated/chantry_mobileFFI.modulemap "$out/headers/module.modulemap"
target_dir="${CARGO_TARGET_DIR:-target}"
args=()
for t in "${targets[@]}"; do
    args+=(-library "$target_dir/$t/release/libchantry_mobile.a" -headers "$out/headers")
done
xcodebuild -create-xcframework "${args[@]}" -output "$out/ChantryMobile.xcframework"
echo "built $out/ChantryMobile.xcframework"
