#!/usr/bin/env bash
# Draws the app icon and the four tray icons (one per state) from the SVG
# below with ImageMagick (Debian's imagemagick package). The PNGs are
# committed; run this only to change them.
set -euo pipefail
cd "$(dirname "$0")"

arch() { # $1 fill of the disc, $2 size
    cat <<SVG
<svg xmlns="http://www.w3.org/2000/svg" width="$2" height="$2" viewBox="0 0 64 64">
  <circle cx="32" cy="32" r="30" fill="$1"/>
  <path d="M19 54 L19 30 Q19 15 32 8 Q45 15 45 30 L45 54 Z" fill="#ffffff"/>
  <path d="M26 54 L26 35 Q26 27 32 23 Q38 27 38 35 L38 54 Z" fill="$1"/>
</svg>
SVG
}

app() { # $1 size
    cat <<SVG
<svg xmlns="http://www.w3.org/2000/svg" width="$1" height="$1" viewBox="0 0 64 64">
  <rect x="2" y="2" width="60" height="60" rx="14" fill="#1f3a5f"/>
  <path d="M19 56 L19 30 Q19 14 32 7 Q45 14 45 30 L45 56 Z" fill="#f3efe6"/>
  <path d="M26 56 L26 35 Q26 27 32 23 Q38 27 38 35 L38 56 Z" fill="#2e9d4f"/>
</svg>
SVG
}

render() { # $1 svg text, $2 out
    printf '%s' "$1" | convert -background none svg:- -strip "PNG32:$2"
}

render "$(app 32)" 32x32.png
render "$(app 128)" 128x128.png
render "$(app 256)" 128x128@2x.png
render "$(app 512)" icon.png
# Tray: grey disconnected, amber connecting, green connected, red error.
# The end-to-end test tells them apart by these fills.
render "$(arch '#7a7a7a' 64)" tray-disconnected.png
render "$(arch '#e0a000' 64)" tray-connecting.png
render "$(arch '#2e9d4f' 64)" tray-connected.png
render "$(arch '#d03030' 64)" tray-error.png
