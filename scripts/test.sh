#!/usr/bin/env bash
# Runs the whole test suite on every GPU adapter present (getting Mesa's software GPUs first on a
# Linux machine that has none).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-gpu.sh
exec cargo test --release "$@"
