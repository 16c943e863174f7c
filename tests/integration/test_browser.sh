#!/usr/bin/env bash
# The web page in real browsers against the real server: tests/browser/page.test.mjs against
# `pirec serve --demo`, once in Debian's Chromium (playwright-core) and once in WebKitGTK,
# the engine of iPad Safari (WebKitWebDriver + MiniBrowser under Xvfb); a fresh server each.
# Run by tests/run.sh with PIREC_BIN, PIREC_SRC and TEST_TMP; exit 77 = skipped.
# Screenshots go to tests/artifacts/page-*.png.
set -u
src=${PIREC_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
bin=${PIREC_BIN:-$src/build/pirec}
tmp=${TEST_TMP:-$(mktemp -d)}
browser_dir="$src/tests/browser"

# make check installs all of these (scripts/install-deps.sh --test): a missing one is a
# failure, not a reason to skip the page's only end-to-end test.
if ! "$bin" serve --help >/dev/null 2>&1; then
  echo "FAIL: $bin serve --help fails"
  exit 1
fi
if [[ ! -d "$browser_dir/node_modules/playwright-core" ]]; then
  echo "FAIL: tests/browser/node_modules is missing: run scripts/install-deps.sh --test"
  exit 1
fi
if [[ ! -x /usr/bin/chromium ]] || ! command -v node >/dev/null; then
  echo "FAIL: /usr/bin/chromium or node is missing: run scripts/install-deps.sh --test"
  exit 1
fi
if ! command -v WebKitWebDriver >/dev/null || ! command -v Xvfb >/dev/null; then
  echo "FAIL: WebKitWebDriver or Xvfb is missing (webkit2gtk-driver, xvfb): run scripts/install-deps.sh --test"
  exit 1
fi

stop_pid() {
  local p=$1
  if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; then
    kill -TERM "$p" 2>/dev/null
    for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null
  fi
}
pids=()
cleanup() {
  local p f
  for p in "${pids[@]}"; do stop_pid "$p"; done
  # the servers the node test started again on the same port (it stops them itself, unless killed)
  for f in "$tmp"/*/server2.pid; do [[ -f "$f" ]] && stop_pid "$(cat "$f")"; done
}
trap cleanup EXIT

# run_engine ENGINE: a fresh server in $tmp/ENGINE, the page test in that engine against it.
run_engine() {
  local engine=$1 dir="$tmp/$1" url="" pid rc st deadline
  local log="$dir/server.log" extra=()
  mkdir -p "$dir/rec" "$dir/state"
  # A short lease (20 s) lets the test see the page renew it by itself (halfway, at most 60 s
  # before the end).
  if "$bin" serve --help 2>&1 | grep -q -- '--config'; then
    printf '[server]\nlease_seconds = 20\n' >"$dir/pirec.ini"
    extra=(--config "$dir/pirec.ini")
  fi
  "$bin" serve --demo --listen 127.0.0.1:0 --recordings "$dir/rec" --state-dir "$dir/state" "${extra[@]}" >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")

  # Wait for "listening on http://127.0.0.1:PORT/" (deadline 20 s), or for the server to die.
  deadline=$((SECONDS + 20))
  while ((SECONDS < deadline)); do
    url=$(grep -o 'listening on http://127\.0\.0\.1:[0-9]*' "$log" | head -n1 | sed 's/^listening on //')
    [[ -n "$url" ]] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "FAIL: pirec serve exited before listening:"; cat "$log"; return 1
    fi
    sleep 0.1
  done
  if [[ -z "$url" ]]; then
    echo "FAIL: pirec serve did not say 'listening on http://127.0.0.1:PORT/' within 20 s:"; cat "$log"; return 1
  fi
  echo "server for $engine: $url (pid $pid)"

  # Near the end the node test stops the server with SIGTERM (--server-pid), checks that the
  # page tells the user, starts it again on the same port (--restart-bin, same folders) and
  # checks that the page comes back by itself; it stops that second server itself.
  node "$browser_dir/page.test.mjs" --engine "$engine" --base-url "$url" --server-pid "$pid" \
    --artifacts "$src/tests/artifacts" --restart-bin "$bin" --restart-tmp "$dir"
  rc=$?

  # The first server must have shut down cleanly after that SIGTERM.
  if ((rc == 0)); then
    for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "FAIL: pirec serve still running 10 s after SIGTERM"; rc=1
    else
      wait "$pid"; st=$?
      if ((st != 0)); then echo "FAIL: pirec serve exited with status $st after SIGTERM"; rc=1; fi
    fi
  fi
  if ((rc != 0)); then
    echo "---- $engine: server log (last 60 lines) ----"; tail -n 60 "$log"
  fi
  return $rc
}

# Both engines with the plain build; under the sanitizers the server is what is tested, and
# one engine is enough (keeps make check short).
engines=${PIREC_BROWSERS:-chromium webkit}
[[ "${PIREC_SAN:-0}" == 1 && -z "${PIREC_BROWSERS:-}" ]] && engines=chromium
status=0
for engine in $engines; do
  run_engine "$engine" || status=1
done
exit $status
