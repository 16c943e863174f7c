#!/usr/bin/env bash
# make install into a temporary prefix, then build a small program against the installed
# library exactly as a user would (pkg-config pirec-record), once statically and once
# against the shared library, and run both. Also checks the installed files and that the
# shared library exports nothing but the public API.
set -u
fail() { echo "FAIL: $*"; exit 1; }
P="$TEST_TMP/p"
san=()
cflags=()
if [[ "${PIREC_SAN:-0}" == 1 ]]; then
  san=(SAN=1 OPT=-O1) # the same flags as the build under test, so make rebuilds nothing
  cflags=(-fsanitize=address,undefined)
fi

make -s -C "$PIREC_SRC" install PREFIX="$P" O="$PIREC_BUILD" "${san[@]}" >"$TEST_TMP/make.log" 2>&1 ||
  { tail -n 30 "$TEST_TMP/make.log"; fail "make install failed"; }

for f in bin/pirec lib/libpirec-record.a lib/libpirec-record.so lib/libpirec-record.so.0 \
         include/pirec/record.h include/pirec/ringbuffer.h lib/pkgconfig/pirec-record.pc \
         include/pirec/compat/yoc/record.h include/pirec/compat/aos/ringbuffer.h; do
  [[ -e "$P/$f" ]] || fail "not installed: $f"
done
"$P/bin/pirec" --version | grep -q "pirec" || fail "installed pirec does not run"

# Only the public API leaves the shared library.
extra=$(nm -D --defined-only "$P/lib/libpirec-record.so" | awk '{print $3}' |
        grep -vE '^(record_|ringbuffer_)' | grep -vE '^(_init|_fini|_edata|_end|__bss_start)$' || true)
[[ -z "$extra" ]] || fail "the shared library exports more than the API: $extra"

cat >"$TEST_TMP/use.c" <<'EOF'
/* A user's program: a block of memory through a ring into a file, with the public API. */
#include <pirec/record.h>
#include <pirec/ringbuffer.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 9;
    static char block[100000];
    for (size_t i = 0; i < sizeof block; i++)
        block[i] = (char)(i * 31 + 7);
    char from[128], to[4200];
    if (record_register_memory(block, sizeof block)) /* mem:// names only registered blocks */
        return 6;
    snprintf(from, sizeof from, "mem://address=0x%llx&size=%zu",
             (unsigned long long)(uintptr_t)block, sizeof block);
    snprintf(to, sizeof to, "file://%s", argv[1]);
    rec_hdl_t h = record_register(from, to);
    if (!h || record_start(h) || record_wait(h, 30000))
        return 1;
    record_stats_t s;
    record_get_stats(h, &s);
    int r = -1, w = -1;
    record_get_count(h, &r, &w);
    record_unregister(h);
    if (s.state != RECORD_FINISHED || r != (int)sizeof block || w != r)
        return 2;
    FILE *f = fopen(argv[1], "rb");
    static char back[100001];
    size_t n = f ? fread(back, 1, sizeof back, f) : 0;
    if (f)
        fclose(f);
    if (n != sizeof block || memcmp(back, block, n))
        return 3;
    dev_ringbuf_t rb;
    char mem[8];
    uint8_t in[10] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, out[10];
    ringbuffer_create(&rb, mem, sizeof mem);
    if (ringbuffer_write(&rb, in, 10) != 7 || rb.dropped != 3 || ringbuffer_read(&rb, out, 10) != 7)
        return 4;
    if (record_register("mem://address=12abc&size=1", to) != NULL) /* strict URLs */
        return 5;
    puts("use: ok");
    return 0;
}
EOF

export PKG_CONFIG_PATH="$P/lib/pkgconfig"
pkg-config --exists pirec-record || fail "pkg-config does not find pirec-record"
[[ "$(pkg-config --modversion pirec-record)" == 0.1.0 ]] || fail "version $(pkg-config --modversion pirec-record)"

# static: the archive (by path: with both .a and .so installed, -l picks the .so), plus
# what pkg-config --static says the archive needs
libs=$(pkg-config --static --libs pirec-record) || fail "pkg-config --static --libs failed"
libs=${libs//-lpirec-record/}
cc -std=c11 -Wall -Wextra -Werror "${cflags[@]}" -o "$TEST_TMP/use_static" "$TEST_TMP/use.c" \
   $(pkg-config --cflags pirec-record) "$P/lib/libpirec-record.a" $libs 2>"$TEST_TMP/cc.err" ||
  { cat "$TEST_TMP/cc.err"; fail "static link failed"; }
ldd "$TEST_TMP/use_static" | grep -q libpirec-record && fail "the static program needs the shared library"
"$TEST_TMP/use_static" "$TEST_TMP/out_static" || fail "static program exit $?"

# shared
cc -std=c11 -Wall -Wextra -Werror "${cflags[@]}" -o "$TEST_TMP/use_shared" "$TEST_TMP/use.c" \
   $(pkg-config --cflags --libs pirec-record) 2>"$TEST_TMP/cc.err" ||
  { cat "$TEST_TMP/cc.err"; fail "shared link failed"; }
LD_LIBRARY_PATH="$P/lib" ldd "$TEST_TMP/use_shared" | grep -q "$P/lib/libpirec-record.so.0" ||
  fail "the shared program does not use the installed library"
LD_LIBRARY_PATH="$P/lib" "$TEST_TMP/use_shared" "$TEST_TMP/out_shared" || fail "shared program exit $?"

# An SDK caller (tests/support/sdk/callers.c includes <yoc/record.h> and <aos/ringbuffer.h>)
# compiles against the installed library with only the compat include path added.
compat=$(pkg-config --variable=compatdir pirec-record)
[[ "$compat" == "$P/include/pirec/compat" ]] || fail "pkg-config compatdir is '$compat'"
cc -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror "${cflags[@]}" -I"$compat" -o "$TEST_TMP/sdk_caller" \
   "$PIREC_SRC/tests/support/sdk/callers.c" -L"$P/lib" -lpirec-record -pthread 2>"$TEST_TMP/cc.err" ||
  { cat "$TEST_TMP/cc.err"; fail "an SDK caller does not compile with only the compat include path"; }
LD_LIBRARY_PATH="$P/lib" ldd "$TEST_TMP/sdk_caller" | grep -q "$P/lib/libpirec-record.so.0" ||
  fail "the SDK caller does not use the installed library"

# ... and runs: the SDK's file pattern (poll read_bytes, stop at the size) with the installed
# library into the installed `pirec ingest`, byte-exact.
mkdir -p "$TEST_TMP/store"
"$P/bin/pirec" ingest --listen 127.0.0.1:0 --dir "$TEST_TMP/store" >"$TEST_TMP/ingest.out" \
  2>"$TEST_TMP/ingest.log" &
ingest_pid=$!
trap 'kill $ingest_pid 2>/dev/null' EXIT
port=""
for _ in $(seq 1 300); do   # up to 30 s for the "listening on" line
  port=$(sed -n 's/^pirec ingest: listening on .*:\([0-9]*\).*/\1/p' "$TEST_TMP/ingest.out")
  [[ -n "$port" ]] && break
  kill -0 $ingest_pid 2>/dev/null || break
  sleep 0.1
done
[[ -n "$port" ]] || { cat "$TEST_TMP/ingest.log"; fail "the installed pirec ingest did not start"; }
head -c 300000 /dev/urandom >"$TEST_TMP/sdk_in"
LD_LIBRARY_PATH="$P/lib" "$TEST_TMP/sdk_caller" file "file://$TEST_TMP/sdk_in" \
  "ws://127.0.0.1:$port/sdk_out" 300000 >"$TEST_TMP/sdk.out" 2>&1 ||
  { cat "$TEST_TMP/sdk.out"; fail "the SDK caller failed against the installed library"; }
grep -q "stop_rc=0 .* lost=0" "$TEST_TMP/sdk.out" || { cat "$TEST_TMP/sdk.out"; fail "SDK caller: $(cat "$TEST_TMP/sdk.out")"; }
cmp -s "$TEST_TMP/sdk_in" "$TEST_TMP/store/sdk_out" || fail "the SDK caller's file arrived different"
kill $ingest_pid 2>/dev/null
wait $ingest_pid 2>/dev/null
trap - EXIT

# The build directory has the soname link, so programs linked there run from there.
[[ -L "$PIREC_BUILD/libpirec-record.so.0" ]] || fail "no libpirec-record.so.0 link in $PIREC_BUILD"
echo ok
