#!/usr/bin/env bash
# Installs the Debian packages pirec needs to build, run and test, if any is missing.
# Runs apt-get only when something is missing, through sudo when not root.
# Usage: scripts/install-deps.sh          what building and running needs (make run)
#        scripts/install-deps.sh --test   also the peers the tests and benchmarks drive,
#                                         Chromium and playwright-core (make check)
set -euo pipefail
cd "$(dirname "$0")/.."

build_pkgs=(build-essential pkg-config
  libasound2-dev libflac-dev libmicrohttpd-dev libwebsockets-dev libwslay-dev
  libjansson-dev libssl-dev libinih-dev libudev-dev libcmocka-dev)
# Peers and tools the tests and benchmarks drive.
test_pkgs=(flac sox socat python3 python3-websockets python3-jwt valgrind alsa-utils
  wrk procps util-linux e2fsprogs ffmpeg time)
# The libFuzzer harnesses of tests/fuzz/ (make fuzz, make check): clang and its runtimes.
test_pkgs+=(clang libclang-rt-14-dev)
# A clock-paced ALSA capture device without a sound card: JACK's dummy backend behind the
# ALSA jack plugin (tests/support/jack_dummy.py).
test_pkgs+=(jackd2 libasound2-plugins)
browser_pkgs=(chromium)
# Node.js may come from elsewhere (e.g. NodeSource's nodejs bundles npm and conflicts with
# Debian's npm package): ask Debian for it only when the commands are missing.
command -v node >/dev/null 2>&1 || browser_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || browser_pkgs+=(npm)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then want+=("${test_pkgs[@]}" "${browser_pkgs[@]}"); fi

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The browser test drives Debian's Chromium through playwright-core from npm (no browser
# download: it is told to use /usr/bin/chromium).
if [[ "${1:-}" == "--test" && -f tests/browser/package.json && ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm install --no-audit --no-fund --silent)
fi

# The browser test also runs in WebKitGTK, the engine of iPad Safari: WebKitWebDriver
# (webkit2gtk-driver) drives MiniBrowser under Xvfb; axe-core (npm) checks accessibility.
if [[ "${1:-}" == "--test" ]]; then
  webkit_missing=()
  for p in webkit2gtk-driver xvfb; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || webkit_missing+=("$p")
  done
  if ((${#webkit_missing[@]})); then
    echo "install-deps: installing ${webkit_missing[*]}"
    SUDO=""
    if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${webkit_missing[@]}"
  fi
  if [[ -f tests/browser/package.json && ! -d tests/browser/node_modules/axe-core ]]; then
    (cd tests/browser && npm install --no-audit --no-fund --silent)
  fi
fi
