#!/usr/bin/env bash
# Runs the latentgpu command line (getting Mesa's software GPUs first on a Linux machine that has
# none), e.g. `scripts/run.sh generate --prompt "ROMEO:"`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup-gpu.sh
exec cargo run --release --quiet -- "$@"
