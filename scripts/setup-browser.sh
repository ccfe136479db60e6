#!/usr/bin/env bash
# Makes sure the browser tests and the web page can be built and run: the wasm32 target,
# wasm-bindgen's CLI at the version Cargo.lock pins, and (on Linux) a Chromium with its
# ChromeDriver. Installs what is missing: Debian's chromium and chromium-driver via apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    echo "Adding the Rust target wasm32-unknown-unknown..." >&2
    rustup target add wasm32-unknown-unknown
fi

# wasm-bindgen's CLI must be the exact version of the wasm-bindgen crate in Cargo.lock.
want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)
have=$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)
if [ "$have" != "$want" ]; then
    echo "Installing wasm-bindgen-cli $want (found: ${have:-none})..." >&2
    # Not --locked: one of its locked dependencies is not served by every registry mirror.
    cargo install wasm-bindgen-cli --version "$want"
fi

source scripts/browser-env.sh
[ -n "$LATENTGPU_CHROME" ] && [ -n "$CHROMEDRIVER" ] && exit 0
if [ "$(uname -s)" != "Linux" ]; then
    echo "No Chrome/Chromium with ChromeDriver found: install both (or set LATENTGPU_CHROME and CHROMEDRIVER)." >&2
    exit 1
fi
scripts/apt-install.sh "No Chromium with ChromeDriver found" chromium chromium-driver
