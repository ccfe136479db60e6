#!/usr/bin/env bash
# Runs the whole test suite: the native tests on every GPU adapter present (getting Mesa's
# software GPUs first on a Linux machine that has none), then the browser tests and the web
# page's end-to-end check in headless Chromium on its WebGPU adapter (getting the wasm32 target,
# wasm-bindgen and, on Linux, Chromium first). Arguments go to the native `cargo test`.
#
# Where no Chromium/Chrome with ChromeDriver can be found or installed (macOS or Windows without
# them), the browser part is skipped with a notice, unless LATENTGPU_REQUIRE_BROWSER=1 (CI sets
# it), which makes that a failure.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-gpu.sh
cargo test --release "$@"

if ! scripts/setup-browser.sh; then
    if [ "${LATENTGPU_REQUIRE_BROWSER:-0}" = "1" ]; then
        echo "browser tests: setup failed and LATENTGPU_REQUIRE_BROWSER=1" >&2
        exit 1
    fi
    echo "NOTICE: browser tests skipped: no Chromium/Chrome with ChromeDriver (see README, 'In the browser')." >&2
    exit 0
fi
source scripts/browser-env.sh
scripts/test-browser.sh
scripts/build-web.sh
python3 scripts/check-web-page.py
