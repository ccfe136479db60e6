#!/usr/bin/env bash
# Builds the web page's wasm module (examples/web) into examples/web/pkg/, and with `--serve`
# serves the repository on http://localhost:8000 (the page fetches models/ from it):
# open http://localhost:8000/examples/web/
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-browser.sh
cargo build --release -p latentgpu-web --target wasm32-unknown-unknown
wasm-bindgen --target web --no-typescript --out-dir examples/web/pkg \
    "${CARGO_TARGET_DIR:-target}/wasm32-unknown-unknown/release/latentgpu_web.wasm"
echo "built examples/web/pkg/ ($(du -h examples/web/pkg/latentgpu_web_bg.wasm | cut -f1) of wasm)" >&2
if [ "${1:-}" = "--serve" ]; then
    port=${PORT:-8000}
    echo "open http://localhost:$port/examples/web/ (in Chromium on Linux: --enable-unsafe-webgpu)" >&2
    exec python3 -m http.server "$port" --bind 127.0.0.1
fi
