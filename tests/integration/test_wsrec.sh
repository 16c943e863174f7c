#!/usr/bin/env bash
# The seed's example app (examples/wsrec), built against libpirec-record.a like a user's
# program, streams three real-time rings (mic/ref/proc) to `pirec ingest`; each stored file
# must be byte-exact against what wsrec fed into its ring, and wsrec must report no loss.
set -u
fail() { echo "FAIL: $*"; [[ -f $TEST_TMP/ingest.err ]] && tail -n 20 "$TEST_TMP/ingest.err"; exit 1; }

WSREC="$PIREC_BUILD/examples/wsrec"
[[ -x "$WSREC" ]] || fail "$WSREC was not built"
if ! "$PIREC_BIN" ingest --help >/dev/null 2>&1; then
  fail "pirec ingest --help fails"
fi

store="$TEST_TMP/store"
mkdir -p "$store"
"$PIREC_BIN" ingest --listen 127.0.0.1:0 --dir "$store" >"$TEST_TMP/ingest.out" 2>"$TEST_TMP/ingest.err" &
ipid=$!
trap 'kill "$ipid" 2>/dev/null; wait "$ipid" 2>/dev/null' EXIT

# The ingest prints the port it bound; poll for that line with a deadline.
port=""
deadline=$((SECONDS + 30))
while [[ -z "$port" ]]; do
  port=$(sed -n 's/.*listening on .*:\([0-9][0-9]*\)[[:space:]]*$/\1/p' "$TEST_TMP/ingest.out" | head -n1)
  [[ -n "$port" ]] && break
  kill -0 "$ipid" 2>/dev/null || fail "pirec ingest exited early"
  ((SECONDS < deadline)) || fail "pirec ingest did not print its port"
  sleep 0.05
done

# 1.25 s of 16 kHz 16-bit audio (random bytes: any corruption shows), streamed for 2 s.
input="$TEST_TMP/in.pcm"
head -c 40000 /dev/urandom >"$input"
"$WSREC" "ws://127.0.0.1:$port" take 2 "$input" >"$TEST_TMP/wsrec.out" 2>"$TEST_TMP/wsrec.err"
rc=$?
cat "$TEST_TMP/wsrec.out"
((rc == 0)) || { tail -n 20 "$TEST_TMP/wsrec.err"; fail "wsrec exit $rc"; }

for what in mic ref proc; do
  line=$(grep "^$what: " "$TEST_TMP/wsrec.out") || fail "no summary for $what"
  fed=$(sed -n 's/.* fed \([0-9]*\) .*/\1/p' <<<"$line")
  lost=$(sed -n 's/.* lost \([0-9]*\) .*/\1/p' <<<"$line")
  [[ "$lost" == 0 ]] || fail "$what lost $lost bytes"
  ((fed > 0)) || fail "$what fed nothing"
  # A slow machine may not have fed the whole input in 2 s: compare what was fed.
  files=("$store"/*_"$what"_take)
  ((${#files[@]} == 1)) && [[ -f "${files[0]}" ]] || fail "expected one file *_${what}_take in $store: $(ls "$store")"
  size=$(stat -c %s "${files[0]}")
  ((size == fed)) || fail "$what: stored $size bytes, fed $fed"
  cmp -s <(head -c "$fed" "$input") "${files[0]}" || fail "$what: stored bytes differ from what was fed"
  echo "$what: $size bytes byte-exact"
done
echo "ok"
