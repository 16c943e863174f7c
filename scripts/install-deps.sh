#!/usr/bin/env bash
# Installs the Debian packages pirec needs to build, run and test, if any is missing.
# Runs apt-get only when something is missing, through sudo when not root.
# Usage: scripts/install-deps.sh          what building and running needs (make run)
#        scripts/install-deps.sh --test   also the peers the tests and benchmarks drive,
#                                         Chromium and playwright-core (make check)
#        scripts/install-deps.sh --cross ARCH [DIR]
#                                         ARCH=arm64|armhf: the cross toolchain, qemu and the
#                                         target's -dev packages (make cross); libwebsockets-dev
#                                         of ARCH is unpacked into DIR/lws (default build-ARCH)
#        scripts/install-deps.sh --deb    what `make deb` needs (make check adds lintian)
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }

# apt-get install whatever of "$@" is missing (one apt-get update first).
install_missing() {
  local missing=() p
  for p in "$@"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  echo "install-deps: installing ${missing[*]}"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

if [[ "${1:-}" == "--deb" ]]; then
  install_missing build-essential pkg-config debhelper dpkg-dev fakeroot adduser \
    libasound2-dev libflac-dev libmicrohttpd-dev libwebsockets-dev libjansson-dev libssl-dev \
    libinih-dev libudev-dev systemd util-linux
  exit 0
fi

if [[ "${1:-}" == "--cross" ]]; then
  arch=${2:?"usage: install-deps.sh --cross arm64|armhf [DIR]"}
  case "$arch" in
    arm64) triplet=aarch64-linux-gnu ;;
    armhf) triplet=arm-linux-gnueabihf ;;
    *) echo "install-deps: ARCH=$arch is not supported: use arm64 or armhf" >&2; exit 2 ;;
  esac
  dir=${3:-build-$arch}
  foreign=$(dpkg --print-foreign-architectures)
  if ! grep -qx "$arch" <<<"$foreign"; then
    echo "install-deps: adding the $arch architecture to dpkg"
    $SUDO dpkg --add-architecture "$arch"
    $SUDO apt-get update -qq
  fi
  install_missing build-essential pkg-config "crossbuild-essential-$arch" qemu-user-static \
    "libasound2-dev:$arch" "libflac-dev:$arch" "libmicrohttpd-dev:$arch" "libjansson-dev:$arch" \
    "libssl-dev:$arch" "libinih-dev:$arch" "libudev-dev:$arch" "libcmocka-dev:$arch" \
    "libwebsockets17:$arch"
  # libwebsockets-dev:ARCH refuses to install beside the native one (both ship
  # /usr/include/lws_config.h, which differs per architecture): unpack it into DIR/lws and
  # point its .pc file there. The .so link goes to the multi-arch runtime library.
  lws="$dir/lws"
  if [[ ! -f "$lws/pkgconfig/libwebsockets.pc" ]]; then
    rm -rf "$lws" && mkdir -p "$lws"
    lws_abs=$(cd "$lws" && pwd)
    # (as root, apt's _apt user could not write into a root-owned build dir)
    sandbox=(); [[ $(id -u) -eq 0 ]] && sandbox=(-o APT::Sandbox::User=root)
    (cd "$lws" && apt-get download -q "${sandbox[@]}" "libwebsockets-dev:$arch" >/dev/null)
    dpkg -x "$lws"/libwebsockets-dev_*.deb "$lws/root"
    so=$(ls /usr/lib/"$triplet"/libwebsockets.so.* | head -n1)
    mkdir -p "$lws/lib" "$lws/pkgconfig"
    ln -sf "$so" "$lws/lib/libwebsockets.so"
    sed -e "s|^prefix=.*|prefix=$lws_abs/root/usr|" \
        -e "s|^libdir=.*|libdir=$lws_abs/lib|" \
        -e "s|^includedir=.*|includedir=$lws_abs/root/usr/include|" \
        "$lws/root/usr/lib/$triplet/pkgconfig/libwebsockets.pc" >"$lws/pkgconfig/libwebsockets.pc"
    rm -f "$lws"/libwebsockets-dev_*.deb
    echo "install-deps: libwebsockets-dev:$arch unpacked into $lws"
  fi
  exit 0
fi

build_pkgs=(build-essential pkg-config
  libasound2-dev libflac-dev libmicrohttpd-dev libwebsockets-dev libwslay-dev
  libjansson-dev libssl-dev libinih-dev libudev-dev libcmocka-dev)
# Peers and tools the tests and benchmarks drive.
test_pkgs=(flac sox socat python3 python3-websockets python3-jwt valgrind alsa-utils
  wrk procps util-linux e2fsprogs ffmpeg time
  debhelper dpkg-dev fakeroot lintian adduser systemd binutils)
# The libFuzzer harnesses of tests/fuzz/ (make fuzz, make check): clang and its runtimes.
test_pkgs+=(clang libclang-rt-14-dev)
# A clock-paced ALSA capture device without a sound card: JACK's dummy backend behind the
# ALSA jack plugin (tests/support/jack_dummy.py).
test_pkgs+=(jackd2 libasound2-plugins)
# strace's fault injection slows chosen syscalls to make a race deterministic
# (test_ingest_wire.py: the close answer waits for the file writes).
test_pkgs+=(strace)
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
# Every dependency package.json names must be there (one added later, e.g. axe-core, is
# installed into an existing node_modules too).
browser_modules_missing() {
  python3 -c 'import json, os, sys
deps = json.load(open("tests/browser/package.json")).get("dependencies", {})
sys.exit(0 if any(not os.path.isdir("tests/browser/node_modules/" + d) for d in deps) else 1)'
}
if [[ "${1:-}" == "--test" && -f tests/browser/package.json ]] && browser_modules_missing; then
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
