#!/usr/bin/env bash
# Installs Debian packages for the setup scripts: `scripts/apt-install.sh WHY PACKAGE...`.
# Fails with WHY when there is no apt-get (install the packages' equivalents by hand).
set -euo pipefail
why=$1
shift
if ! command -v apt-get >/dev/null 2>&1; then
    echo "$why, and there is no apt-get: install $* (or their equivalents) by hand." >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "$why: installing $*..." >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "$@" >/dev/null
