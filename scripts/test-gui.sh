#!/usr/bin/env bash
# The desktop app's checks (app-ui/), as CI runs them:
#   deps: the Debian packages the app builds and is tested with, then in
#         app-ui `npm ci`, the vitest suite and the vite build (app-ui/dist,
#         which the app embeds: `cargo build --workspace` needs it);
#   e2e:  the app (cargo build -p chantry-app), tauri-driver (installed
#         from crates.io into the build cache once), clippy of the test,
#         and the end-to-end test in a real window (tests/tests/gui):
#         Xvfb, trayer, WebKitWebDriver, the app as an unprivileged user
#         against `chantryd service` in network namespaces.
# With no argument it does both. scripts/test.sh runs `deps` before the
# workspace is built and `e2e` with the other end-to-end tests.
#
# Uses $CHANTRYD if it names a chantryd built with test-hooks; builds one
# otherwise. Run as root on Debian; it installs what it needs. The test
# saves screenshots in $CARGO_TARGET_DIR/gui-shots (docs/screenshots has
# a copy).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib.sh

mode="${1:-all}"
case "$mode" in
deps | e2e | all) ;;
*)
    echo "usage: $0 [deps|e2e]" >&2
    exit 2
    ;;
esac

if [ "$mode" != e2e ]; then
    # Build: WebKitGTK 4.1, the AppIndicator tray, librsvg (icons), libxdo
    # (menus). Test: WebKitWebDriver, an X server, an XEmbed tray, X input,
    # a session bus, ImageMagick for the screenshots' pixels, python3-gi for
    # the StatusNotifierWatcher stand-in, GNOME Keyring for the passphrase.
    ensure_packages build-essential pkg-config libwebkit2gtk-4.1-dev libayatana-appindicator3-dev \
        librsvg2-dev libxdo-dev libssl-dev webkit2gtk-driver xvfb trayer xdotool dbus dbus-x11 \
        imagemagick python3-gi gnome-keyring iproute2 iputils-ping
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        echo "error: node and npm are needed for the app's front end (vite 8 wants Node.js 20.19 or newer)" >&2
        exit 1
    fi
    echo "==> app-ui: npm ci (package-lock.json), vitest, vite build"
    (
        cd app-ui
        npm ci --no-audit --no-fund --loglevel=error
        npx vitest run
        npm run build
    )
    [ "$mode" = deps ] && exit 0
fi

ensure_cargo

echo "==> app-ui: the app (chantry, debug build)"
cargo build -p chantry-app --locked
export CHANTRY_APP="$CARGO_TARGET_DIR/debug/chantry"

echo "==> tauri-driver (cargo install, cached in the build directory)"
tools="$CARGO_TARGET_DIR/tools"
if [ ! -x "$tools/bin/tauri-driver" ]; then
    cargo install tauri-driver --locked --version 2.1.0 --root "$tools"
fi
export TAURI_DRIVER="$tools/bin/tauri-driver"

if [ -z "${CHANTRYD:-}" ] || [ ! -x "$CHANTRYD" ]; then
    echo "==> chantryd for the end-to-end test (test-hooks build)"
    cargo build -q --profile e2e -p chantry-service --features test-hooks --bins --locked
    export CHANTRYD="$CARGO_TARGET_DIR/e2e/chantryd"
fi

echo "==> clippy of the desktop end-to-end test"
cargo clippy -p chantry-e2e --features gui --all-targets --locked -- -D warnings

echo "==> end-to-end: the app in a real window, its tray, a real service and tunnel"
export CHANTRY_GUI_SHOTS="$CARGO_TARGET_DIR/gui-shots"
cargo test -p chantry-e2e --features gui --test gui --locked -- --nocapture --test-threads=1
echo "screenshots: $CHANTRY_GUI_SHOTS"
