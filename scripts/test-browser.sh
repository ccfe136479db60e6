#!/usr/bin/env bash
# Runs the browser tests (tests/browser.rs) with wasm-bindgen-test in headless Chromium (or
# Chrome) on its WebGPU adapter. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-browser.sh

source scripts/browser-env.sh
browser=$LATENTGPU_CHROME
driver=$CHROMEDRIVER
if [ -z "$browser" ] || [ -z "$driver" ]; then
    echo "Need Chromium or Chrome and ChromeDriver (set LATENTGPU_CHROME and CHROMEDRIVER)." >&2
    exit 1
fi

# WebGPU is behind --enable-unsafe-webgpu in Chromium on Linux; the rest keeps a root, offline,
# headless browser quiet. wasm-bindgen-test-runner adds --headless itself.
mkdir -p target
cat > target/webdriver.json <<JSON
{
  "goog:chromeOptions": {
    "binary": "$browser",
    "args": [
      "--no-sandbox", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--disable-quic",
      "--disable-dev-shm-usage", "--enable-unsafe-webgpu"
    ]
  }
}
JSON

export WASM_BINDGEN_TEST_WEBDRIVER_JSON="$PWD/target/webdriver.json"
export WASM_BINDGEN_TEST_TIMEOUT=${WASM_BINDGEN_TEST_TIMEOUT:-900}
export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
exec cargo test --release --target wasm32-unknown-unknown --test browser "$@"
