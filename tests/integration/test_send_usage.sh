#!/usr/bin/env bash
# pirec send: bad URLs and bad usage exit 2 with a message that names the problem;
# ringbuffer:// and mem:// are refused from the command line; --help exits 0.
set -u
fail() { echo "FAIL: $*"; exit 1; }
B="$PIREC_BIN"
T="$TEST_TMP"
printf 'data' >"$T/in"

expect2() { # what-the-message-must-say args...
  local want=$1; shift
  "$B" send "$@" >"$T/out" 2>"$T/err"
  local rc=$?
  ((rc == 2)) || fail "pirec send $* exit $rc (want 2): $(cat "$T/err")"
  grep -qF -- "$want" "$T/err" || fail "pirec send $*: message does not say \"$want\": $(cat "$T/err")"
}

# bad URLs
expect2 "the port must be 1..65535" "file://$T/in" "ws://127.0.0.1:99999/x"
expect2 "no stream name" "file://$T/in" "ws://127.0.0.1:9090/"
expect2 "no stream name" "file://$T/in" "ws://127.0.0.1:9090"
expect2 "queries and fragments" "file://$T/in" "ws://127.0.0.1:9090/x?token=1"
expect2 "unknown sink scheme" "file://$T/in" "http://127.0.0.1/x"
expect2 "unknown source scheme" "nope://x" "file://$T/out"
expect2 "can only be a sink" "ws://127.0.0.1/x" "file://$T/out"
expect2 "the file path is empty" "file://" "file://$T/out"
expect2 "no scheme" "$T/in" "file://$T/out"
expect2 "spaces are not allowed" "file://$T/in" "ws://host/a b"
expect2 "name starts with '.'" "file://$T/in" "ws://host/.."
expect2 "user names or passwords" "file://$T/in" "ws://me:secret@host/x"
grep -q secret "$T/err" && fail "the password was echoed: $(cat "$T/err")"
# memory inside a program
expect2 "names memory inside a program" "ringbuffer://handle=4096" "file://$T/out"
expect2 "names memory inside a program" "file://$T/in" "mem://address=4096&size=4"
# options and arguments
expect2 "expected FROM and TO" "file://$T/in"
expect2 "expected FROM and TO" "file://$T/in" "file://$T/o" "extra"
expect2 "--chunk-size" --chunk-size 0 "file://$T/in" "file://$T/o"
expect2 "--chunk-size" --chunk-size 12x "file://$T/in" "file://$T/o"
expect2 "--chunk-size" --chunk-size 17M "file://$T/in" "file://$T/o"
expect2 "--give-up" --give-up -1 "file://$T/in" "ws://h/x"
expect2 "--stop-timeout" --stop-timeout abc "file://$T/in" "ws://h/x"
expect2 "--buffer" --buffer 10 "file://$T/in" "ws://h/x"
expect2 "unknown option" --bogus "file://$T/in" "file://$T/o"
[[ ! -e "$T/o" && ! -e "$T/out.bin" ]] || fail "a failed usage created a file"

# options may also follow FROM and TO, as with the other commands
"$B" send --quiet "file://$T/in" "file://$T/after" --chunk-size 1K >"$T/out" 2>&1 \
  || fail "options after FROM TO: exit $?: $(cat "$T/out")"
cmp -s "$T/in" "$T/after" || fail "options after FROM TO: the copy differs"
expect2 "--chunk-size" "file://$T/in" "file://$T/o" --chunk-size 0

"$B" send --help >"$T/out" 2>&1 || fail "--help exit $?"
grep -q "usage: pirec send" "$T/out" || fail "--help text: $(cat "$T/out")"
echo ok
