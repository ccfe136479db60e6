# Sourced by the browser scripts: sets LATENTGPU_CHROME (Chromium or Chrome) and CHROMEDRIVER
# to what is installed, unless they are set already; leaves them empty when nothing is found.
find_first() {
    local c
    for c in "$@"; do
        if [ -x "$c" ]; then echo "$c"; return; fi
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
    done
}
LATENTGPU_CHROME=${LATENTGPU_CHROME:-$(find_first chromium chromium-browser google-chrome \
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" \
    "/Applications/Chromium.app/Contents/MacOS/Chromium")}
CHROMEDRIVER=${CHROMEDRIVER:-$(find_first chromedriver)}
export LATENTGPU_CHROME CHROMEDRIVER
