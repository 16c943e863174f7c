#!/usr/bin/env bash
# On a 32-bit build (armhf, run under qemu), a ringbuffer:// or mem:// address wider than a
# pointer is refused with a clear message, never truncated; a 32-bit address still parses.
# Cross-compiles the URL parser with a small driver (no sockets, no lws needed).
set -u
fail() { echo "FAIL: $*"; exit 1; }
CC=arm-linux-gnueabihf-gcc
command -v $CC >/dev/null || { echo "no $CC (crossbuild-essential-armhf): 32-bit case not run"; exit 77; }
command -v qemu-arm-static >/dev/null || { echo "no qemu-arm-static: 32-bit case not run"; exit 77; }
cat >"$TEST_TMP/drv.c" <<'EOC'
#include <stdio.h>
#include <string.h>
#include "record/url.h"
int main(int argc, char **argv)
{
    struct rec_url u;
    int rc = rec_url_parse(argv[1], REC_URL_SOURCE, &u);
    printf("rc=%d addr=%llu ptrbits=%d\n", rc, (unsigned long long)u.addr, (int)sizeof(void *) * 8);
    return argc > 2 ? 0 : rc != 0;
}
EOC
S="$PIREC_SRC"
$CC -std=c11 -D_GNU_SOURCE -D_FILE_OFFSET_BITS=64 -Wall -Wextra -Werror -I"$S/include" -I"$S/src" \
    -o "$TEST_TMP/drv" "$TEST_TMP/drv.c" "$S/src/record/url.c" "$S/src/record/wsproto.c" \
    "$S/src/common/log.c" -ljansson -pthread 2>"$TEST_TMP/cc.err" ||
  { cat "$TEST_TMP/cc.err"; fail "cross-compiling the URL parser for armhf failed"; }
run() { QEMU_LD_PREFIX=/ qemu-arm-static "$TEST_TMP/drv" "$@" 2>&1; }
out=$(run "ringbuffer://handle=0x100001000" x)
echo "$out"
echo "$out" | grep -q "ptrbits=32" || fail "the driver is not a 32-bit program: $out"
echo "$out" | grep -q "rc=-22" || fail "a 33-bit address was accepted on a 32-bit build: $out"
echo "$out" | grep -q "wider than a pointer on this 32-bit build" || fail "unclear message: $out"
out=$(run "mem://address=18446744073709551615&size=1" x)
echo "$out" | grep -q "wider than a pointer" || fail "a 64-bit mem address was not refused clearly: $out"
out=$(run "ringbuffer://handle=4096") || fail "a 32-bit address was refused: $out"
echo "32-bit addresses: ok"
