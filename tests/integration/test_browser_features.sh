#!/usr/bin/env bash
# The page's side of issue 10 in real browsers, against tests/browser/mock_server.py (which
# implements the server contract the page is designed against; docs/web.md): camera-app flow,
# take-over, restart, take events, offline card, wake lock, keys, manifest, clock, waveform,
# axe-core in every state, screenshots. Once in Debian's Chromium, once in WebKitGTK.
# Run by tests/run.sh; the mock is started and stopped by the node test itself.
set -u
# It tests the page against the mock, not a build: once (with the plain build) is enough.
if [[ "${PIREC_SAN:-0}" == 1 ]]; then
  echo "skipped: the page against the mock does not depend on the build (run with the plain build)"
  exit 77
fi
src=${PIREC_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
browser_dir="$src/tests/browser"
for m in playwright-core axe-core; do
  if [[ ! -d "$browser_dir/node_modules/$m" ]]; then
    echo "FAIL: tests/browser/node_modules/$m is missing: run scripts/install-deps.sh --test"
    exit 1
  fi
done
for c in node /usr/bin/chromium WebKitWebDriver Xvfb flac; do
  if ! command -v "$c" >/dev/null; then
    echo "FAIL: $c is missing: run scripts/install-deps.sh --test"
    exit 1
  fi
done
status=0
for engine in ${PIREC_BROWSERS:-chromium webkit}; do
  node "$browser_dir/features.test.mjs" --engine "$engine" --artifacts "$src/tests/artifacts" || status=1
done
exit $status
