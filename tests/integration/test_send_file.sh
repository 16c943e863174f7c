#!/usr/bin/env bash
# pirec send with file endpoints: byte-exact copies at several chunk sizes, an existing
# longer target is replaced, empty input, sdbuffer:// source; a missing input, a directory,
# the same file as both ends and an unwritable target are clear errors (exit 1) that leave
# no output behind; a FIFO source ends on SIGINT with what was written delivered.
set -u
fail() { echo "FAIL: $*"; exit 1; }
B="$PIREC_BIN"
T="$TEST_TMP"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; exec 3>&- 2>/dev/null' EXIT

size=$((3 * 1024 * 1024 + 17))
head -c "$size" /dev/urandom >"$T/in.bin"

# byte-exact at several chunk sizes; the summary says what was done
for chunk in 1 777 4096 16M; do
  if [[ $chunk == 1 ]]; then head -c 20000 "$T/in.bin" >"$T/src"; else cp "$T/in.bin" "$T/src"; fi
  out=$("$B" send --chunk-size "$chunk" "file://$T/src" "file://$T/out.bin" 2>"$T/err") ||
    fail "chunk $chunk: exit $? $(cat "$T/err")"
  cmp -s "$T/src" "$T/out.bin" || fail "chunk $chunk: output differs from input"
  n=$(stat -c %s "$T/src")
  [[ "$out" == *"$n bytes"*"all delivered"* ]] || fail "chunk $chunk: summary is \"$out\""
done

# an existing, longer target is replaced (like cp), not overwritten in place
head -c $((size * 2)) /dev/urandom >"$T/out.bin"
"$B" send --quiet "file://$T/in.bin" "file://$T/out.bin" >"$T/out" 2>"$T/err" || fail "replace: $(cat "$T/err")"
cmp -s "$T/in.bin" "$T/out.bin" || fail "replace: target keeps old bytes"
[[ ! -s "$T/out" ]] || fail "--quiet printed: $(cat "$T/out")"

# empty input gives an empty file; sdbuffer://handle= is a file source
: >"$T/empty"
"$B" send "file://$T/empty" "file://$T/empty.out" >/dev/null 2>&1 || fail "empty input"
[[ -f "$T/empty.out" && ! -s "$T/empty.out" ]] || fail "empty input: no empty output"
"$B" send "sdbuffer://handle=$T/in.bin" "file://$T/sd.out" >/dev/null 2>&1 || fail "sdbuffer source"
cmp -s "$T/in.bin" "$T/sd.out" || fail "sdbuffer source: output differs"

# a missing input: exit 1, the message names the file and the reason, no output created
"$B" send "file://$T/missing.bin" "file://$T/never.out" >"$T/out" 2>"$T/err"
rc=$?
((rc == 1)) || fail "missing input: exit $rc"
grep -q "missing.bin" "$T/err" && grep -q "No such file" "$T/err" || fail "missing input: message $(cat "$T/err")"
[[ ! -e "$T/never.out" ]] || fail "missing input: an output file was created"

# a directory as input
"$B" send "file://$T" "file://$T/never.out" >/dev/null 2>"$T/err"
rc=$?
((rc == 1)) || fail "directory input: exit $rc"
grep -q "is a directory" "$T/err" || fail "directory input: message $(cat "$T/err")"

# the same file at both ends is refused before it is truncated
cp "$T/in.bin" "$T/same.bin"
"$B" send "file://$T/same.bin" "file://$T/same.bin" >/dev/null 2>"$T/err"
rc=$?
((rc == 1)) || fail "same file: exit $rc"
grep -q "same file" "$T/err" || fail "same file: message $(cat "$T/err")"
cmp -s "$T/in.bin" "$T/same.bin" || fail "same file: the input was damaged"

# a target in a directory that does not exist
"$B" send "file://$T/in.bin" "file://$T/no/dir/out" >/dev/null 2>"$T/err"
rc=$?
((rc == 1)) || fail "bad target: exit $rc"
grep -q "no/dir/out" "$T/err" || fail "bad target: message $(cat "$T/err")"

# a FIFO source runs until SIGINT; what was written before is delivered
mkfifo "$T/fifo"
"$B" send "file://$T/fifo" "file://$T/fifo.out" >"$T/fifo.stdout" 2>"$T/fifo.err" &
spid=$!
pids+=("$spid")
exec 3>"$T/fifo"
printf 'first line\n' >&3
deadline=$((SECONDS + 30))
until [[ "$(stat -c %s "$T/fifo.out" 2>/dev/null)" == 11 ]]; do
  ((SECONDS < deadline)) || fail "fifo: data did not arrive"
  kill -0 "$spid" 2>/dev/null || fail "fifo: pirec send exited early: $(cat "$T/fifo.err")"
  sleep 0.02
done
kill -INT "$spid"
wait "$spid"
rc=$?
exec 3>&-
((rc == 1)) || fail "fifo: exit $rc after SIGINT (interrupted is not 'all delivered')"
grep -q "interrupted" "$T/fifo.err" && grep -q "11 delivered, 0 not delivered" "$T/fifo.err" ||
  fail "fifo: message $(cat "$T/fifo.err")"
[[ "$(cat "$T/fifo.out")" == "first line" ]] || fail "fifo: output differs"
echo ok
