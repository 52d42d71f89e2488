# Shared set-up for the demo and test scripts: run as root on Debian; installs
# what is missing and nothing else.

ensure_packages() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "==> installing Debian packages: ${missing[*]}"
        if [ "$(id -u)" -ne 0 ]; then
            echo "error: need root to install ${missing[*]}" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1; then
        # Debian's toolchain as a last resort when no rustup toolchain exists.
        ensure_packages cargo rustc
    fi
}

# Where cargo builds: kept outside the clone so repeated runs are warm; a
# cold directory works too.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/cache/chantry/target}"
mkdir -p "$CARGO_TARGET_DIR"
