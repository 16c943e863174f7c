#!/usr/bin/env bash
# Runs the libFuzzer harnesses built by `make fuzz-build` (build-fuzz/fuzz/fuzz_NAME).
#
#   tests/fuzz/run.sh [--build DIR] [--seconds N] [NAME...]
#
# For each harness: first every input kept in tests/fuzz/crashes/NAME/ (crashes found
# before: regression tests), then N seconds (default 10) of fuzzing from the seed corpus
# tests/fuzz/corpus/NAME/, which is only read: what the fuzzer finds goes to
# DIR/corpus/NAME/. A crash leaves its input in DIR/artifacts/ and fails the run.
# Prints one closing line "fuzz: N harnesses clean, N failed".
set -u
cd "$(dirname "$0")/../.."
build=build-fuzz
secs=10
names=()
while (($#)); do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --seconds) secs=$2; shift 2 ;;
    *) names+=("$1"); shift ;;
  esac
done
if ((${#names[@]} == 0)); then
  for f in tests/fuzz/fuzz_*.c; do n=${f##*/fuzz_}; names+=("${n%.c}"); done
fi
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:${ASAN_OPTIONS:-}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:${UBSAN_OPTIONS:-}"
clean=0 bad=0
for n in "${names[@]}"; do
  bin="$build/fuzz/fuzz_$n"
  if [[ ! -x "$bin" ]]; then
    echo "FAIL fuzz_$n: $bin is not built (make fuzz-build)"; bad=$((bad + 1)); continue
  fi
  mkdir -p "$build/corpus/$n" "$build/artifacts"
  log="$build/artifacts/fuzz_$n.log"
  ok=1
  if compgen -G "tests/fuzz/crashes/$n/*" >/dev/null; then
    "$bin" -runs=1 tests/fuzz/crashes/"$n"/* >"$log" 2>&1 || ok=0
  fi
  if ((ok)); then
    "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
      -print_final_stats=1 -artifact_prefix="$build/artifacts/fuzz_$n-" \
      "$build/corpus/$n" "tests/fuzz/corpus/$n" >"$log" 2>&1 || ok=0
  fi
  if ((ok)); then
    clean=$((clean + 1))
    printf 'PASS fuzz_%-14s %s\n' "$n" "$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$') runs in ${secs}s"
  else
    bad=$((bad + 1))
    printf 'FAIL fuzz_%-14s see %s\n' "$n" "$log"
    grep -E 'ERROR|runtime error|SUMMARY|Test unit written|^#0|^ *#[1-6] ' "$log" | head -20 | sed 's/^/    | /'
  fi
done
echo "fuzz: $clean harnesses clean, $bad failed"
((bad == 0))
