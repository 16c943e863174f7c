#!/usr/bin/env bash
# The libFuzzer harnesses of tests/fuzz/ (built into build-fuzz/ by `make fuzz-build`,
# which `make check` runs) each fuzz for PIREC_FUZZ_SECONDS (default 10) from their seed
# corpus, after replaying the crashes kept in tests/fuzz/crashes/. They are their own
# ASan+UBSan builds, so they run once: with the sanitizer build set.
# Run by tests/run.sh with PIREC_SRC and PIREC_SAN; exit 77 = skipped.
set -u
cd "$PIREC_SRC"
if [[ "${PIREC_SAN:-0}" != 1 ]]; then
  echo "the fuzzers are sanitizer builds: run once, with the sanitizer build set"
  exit 77
fi
if ! compgen -G "build-fuzz/fuzz/fuzz_*" >/dev/null; then
  echo "FAIL: build-fuzz/fuzz/ holds no harness: run make fuzz-build (needs clang)"
  exit 1
fi
exec tests/fuzz/run.sh --build build-fuzz --seconds "${PIREC_FUZZ_SECONDS:-10}"
