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

"$(dirname "$0")/apt-install.sh" "No GPU driver found (Vulkan or EGL)" \
    mesa-vulkan-drivers libegl1 libegl-mesa0 libgl1-mesa-dri
