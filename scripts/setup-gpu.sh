#!/usr/bin/env bash
# Makes sure a WebGPU adapter exists. On Linux with no Vulkan driver installed, installs Mesa's
# software Vulkan (lavapipe) and GL (llvmpipe) from the distribution's packages; a machine with a
# GPU driver (or macOS/Windows) is left alone.
set -euo pipefail

[ "$(uname -s)" = "Linux" ] || exit 0

has_vulkan_driver() {
    local d
    for d in /usr/share/vulkan/icd.d /etc/vulkan/icd.d /usr/local/share/vulkan/icd.d; do
        compgen -G "$d/*.json" >/dev/null && return 0
    done
    [ -n "${VK_DRIVER_FILES:-}${VK_ICD_FILENAMES:-}" ]
}

has_egl() {
    ldconfig -p 2>/dev/null | grep -q 'libEGL.so.1'
}

if has_vulkan_driver && has_egl; then
    exit 0
fi

if ! command -v apt-get >/dev/null 2>&1; then
    echo "No Vulkan driver found and no apt-get: install Mesa's Vulkan drivers (lavapipe) or your GPU's driver." >&2
    exit 1
fi

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "No GPU driver found: installing Mesa's software Vulkan (lavapipe) and GL (llvmpipe)..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri >/dev/null
