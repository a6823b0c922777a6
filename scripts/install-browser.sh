#!/usr/bin/env bash
# Installs headless Chromium and its WebDriver (Debian packages) for the browser test of the
# short links (tests/clicks/test_browser.py). Idempotent: does nothing when both are there.
# Needs root (CI containers run as root) or sudo; without either it says so and exits 0, and
# the browser test then skips with that reason.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo -n)
else
    echo "install-browser: not root and no sudo; the browser test will skip" >&2
    exit 0
fi
export DEBIAN_FRONTEND=noninteractive
if ! { "${as_root[@]}" apt-get update -qq &&
    "${as_root[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null; }; then
    echo "install-browser: apt-get could not install chromium; the browser test will skip" >&2
fi
