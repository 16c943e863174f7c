#!/usr/bin/env bash
# Runs every test against one or more builds and prints one closing line
# "check: N passed, N failed, N skipped".
#
#   tests/run.sh --build build [--build build-san] [--only PATTERN]...
#   tests/run.sh --build build --exec qemu-arm-static --build build-armhf --cross-only serve_api
#
# --only may be repeated: a test runs when its name contains any of the patterns.
# --exec WRAPPER applies to the --build options after it: a foreign build (a cross build
# under qemu-user) runs its unit tests as "WRAPPER test", and PIREC_BIN is a script that
# execs "WRAPPER pirec" (QEMU_LD_PREFIX=/; PIREC_EXEC=WRAPPER for the tests). Of the
# integration tests, such a build runs only those matching a --cross-only PATTERN.
#
# Unit tests: $BUILD/tests/test_* (cmocka binaries built from tests/unit/).
# Integration tests: tests/integration/test_*.sh and test_*.py, run with
#   PIREC_BIN    the pirec binary of the build under test
#   PIREC_BUILD  that build directory (libraries, examples)
#   PIREC_SRC    the source tree
#   PIREC_SAN    1 when the build has ASan+UBSan
#   TEST_TMP     a fresh directory, removed after a pass
# Exit status 77 means skipped (with the reason on the last line of output); a case a unit
# binary skips (cmocka's skip()) is reported as skipped too, with the last line it printed.
# PIREC_REQUIRE_ALL=1 (set by `make check`, which installs every tool) turns each skip not
# in allowed_skips into a failure.
# Each test has a deadline (PIREC_TEST_TIMEOUT seconds, default 300).
set -u
cd "$(dirname "$0")/.."
src=$(pwd)
builds=()
wraps=()
only=()
cross_only=()
wrap=""
while (($#)); do
  case "$1" in
    --build) builds+=("$2"); wraps+=("$wrap"); shift 2 ;;
    --only) only+=("$2"); shift 2 ;;
    --exec) wrap="$2"; shift 2 ;;
    --cross-only) cross_only+=("$2"); shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
((${#builds[@]})) || { builds=(build); wraps=(""); }

passed=0 failed=0 skipped=0
failures=()
art="$src/tests/artifacts"
mkdir -p "$art"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
limit=${PIREC_TEST_TIMEOUT:-300}
# Skips that stay legitimate where every tool is installed ("build/test[:case]" globs):
# valgrind cannot run an ASan build; a tmpfs can only be mounted as root; a 32-bit process
# may not get a 2 GiB mapping; the fuzzers (own sanitizer builds) run with the san set only;
# ASan makes mlock a no-op; a JACK client under qemu-user cannot talk to this machine's
# jackd; two addresses equal in their low 32 bits need a 64-bit address space; a 64-bit
# build has no 32-bit file functions to look for; the page against the mock does not
# depend on the build and runs with the plain set; the Debian package is built with
# Debian's flags from the sources, once, with the plain set.
allowed_skips=("*san*/integration/test_valgrind.py" "*/integration/test_record_diskfull.py"
               "*/unit/test_record:test_count_clamps" "*/integration/test_fuzz.sh"
               "*san*/unit/test_capture_invariants:*" "build-arm*/unit/test_capture_jack:*"
               "build-armhf/unit/test_record_module_addr:test_ambiguous_low32_refused"
               "*san*/integration/test_browser_features.sh" "*san*/integration/test_deb_package.py"
               "build/integration/test_cross_lfs.sh" "build-san/integration/test_cross_lfs.sh"
               "build-arm64/integration/test_cross_lfs.sh")

skip_refused() { # build/test[:case] -> true when this skip must fail the run
  [[ "${PIREC_REQUIRE_ALL:-0}" == 1 ]] || return 1
  local a; for a in "${allowed_skips[@]}"; do [[ "$1" == $a ]] && return 1; done
  return 0
}

# "case: reason" for each case a cmocka binary skipped; the reason is the last line the
# case printed before cmocka's "[  SKIPPED ] case".
unit_skips() {
  awk '/^\[ RUN      \] /{name=$4; why="(no reason printed)"; next}
       /^\[  SKIPPED \] / && $4 == name {print name ": " why; name=""; next}
       name != "" {why=$0}' "$1"
}

run_one() { # build name cmd...
  local b=$1 name=$2; shift 2
  if ((${#only[@]})); then
    local pat hit=0
    for pat in "${only[@]}"; do [[ "$name" == *$pat* ]] && hit=1; done
    ((hit)) || return
  fi
  local tmp log start rc
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/pirec-test.XXXXXX")
  log="$tmp.log"
  start=$(date +%s%N)
  local san=0; [[ "$b" == *san* ]] && san=1
  PIREC_BIN="$bin" PIREC_BUILD="$bdir" PIREC_SRC="$src" PIREC_SAN=$san PIREC_EXEC="$wrap" \
    TEST_TMP="$tmp" timeout -k 10 "$limit" "$@" >"$log" 2>&1 </dev/null
  rc=$?
  local secs; secs=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN{printf "%.1f", (b-a)/1e9}')
  if ((rc == 77)) && skip_refused "$b/$name"; then
    echo "skipped, but PIREC_REQUIRE_ALL=1 (make check installs every tool)" >>"$log"
    rc=1
  fi
  local skip case_skips=""
  ((rc == 0)) && [[ "$name" == unit/* ]] && case_skips=$(unit_skips "$log")
  while IFS= read -r skip && [[ -n "$skip" ]]; do
    if skip_refused "$b/$name:${skip%%:*}"; then
      echo "case ${skip%%:*} skipped, but PIREC_REQUIRE_ALL=1 (make check installs every tool)" >>"$log"
      rc=1
    else
      skipped=$((skipped + 1)); printf 'SKIP %-12s %-40s %s\n' "$b" "$name:${skip%%:*}" "${skip#*: }"
    fi
  done <<<"$case_skips"
  if ((rc == 0)); then
    passed=$((passed + 1)); printf 'PASS %-12s %-40s %6ss\n' "$b" "$name" "$secs"
    rm -rf "$tmp" "$log"
  elif ((rc == 77)); then
    skipped=$((skipped + 1)); printf 'SKIP %-12s %-40s %s\n' "$b" "$name" "$(tail -n1 "$log")"
    rm -rf "$tmp" "$log"
  else
    failed=$((failed + 1)); failures+=("$b/$name")
    ((rc == 124)) && echo "(deadline of ${limit}s passed)" >>"$log"
    printf 'FAIL %-12s %-40s %6ss (exit %d)\n' "$b" "$name" "$secs" "$rc"
    sed 's/^/    | /' "$log" | tail -n 60
    cp "$log" "$art/$(echo "$b-$name" | tr '/' '_').log" 2>/dev/null
    rm -rf "$tmp"
  fi
}

export QEMU_LD_PREFIX=${QEMU_LD_PREFIX:-/}
for i in "${!builds[@]}"; do
  b=${builds[$i]} wrap=${wraps[$i]}
  bdir="$src/$b"; [[ "$b" == /* ]] && bdir="$b"
  bin="$bdir/pirec"
  if [[ -n "$wrap" ]]; then
    bin="$bdir/pirec-wrapped"
    printf '#!/bin/sh\nexec %s "%s" "$@"\n' "$wrap" "$bdir/pirec" >"$bin"
    chmod +x "$bin"
  fi
  for t in "$b"/tests/test_*; do
    [[ -x "$t" ]] || continue
    run_one "$b" "unit/$(basename "$t")" $wrap "$t"
  done
  for t in tests/integration/test_*.sh tests/integration/test_*.py; do
    [[ -f "$t" ]] || continue
    if [[ -n "$wrap" ]]; then
      hit=0
      for pat in "${cross_only[@]}"; do [[ "$t" == *$pat* ]] && hit=1; done
      ((hit)) || continue
    fi
    case "$t" in
      *.sh) run_one "$b" "${t#tests/}" bash "$t" ;;
      *.py) run_one "$b" "${t#tests/}" /usr/bin/python3 "$t" ;;
    esac
  done
done

if ((failed)); then
  echo "failed: ${failures[*]}"
fi
echo "check: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
