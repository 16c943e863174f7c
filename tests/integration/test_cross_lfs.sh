#!/usr/bin/env bash
# Large-file support in every 32-bit build (armhf): the binary, the record library and the
# example call only the 64-bit-offset forms of the file functions (open64, pread64,
# fstat64, readdir64, ...). Without -D_FILE_OFFSET_BITS=64 a 32-bit build calls the plain
# forms: fstat fails with EOVERFLOW on a > 2 GiB file, writes stop at 2 GiB and readdir
# fails on file systems with 64-bit inode numbers. 64-bit builds have only one form: skip.
set -u
fail() { echo "FAIL: $*"; exit 1; }
bins=("$PIREC_BUILD/pirec" "$PIREC_BUILD/libpirec-record.so" "$PIREC_BUILD/examples/wsrec")
class=$(readelf -h "${bins[0]}" 2>/dev/null | awk '/Class:/ {print $2}')
[[ -n "$class" ]] || fail "readelf cannot read ${bins[0]}"
if [[ "$class" != ELF32 ]]; then
  echo "$class build: off_t is 64-bit already, nothing to check"
  exit 77
fi
# The functions whose plain form takes or returns a 32-bit off_t, ino_t or rlim_t.
fns='open|openat|fopen|creat|pread|pwrite|lseek|ftruncate|truncate|stat|fstat|lstat|fstatat'
fns+='|statvfs|fstatvfs|readdir|scandir|mmap|sendfile|fallocate|posix_fallocate|fseeko|ftello'
fns+='|getrlimit|setrlimit|glob|statfs|fstatfs'
for b in "${bins[@]}"; do
  [[ -f "$b" ]] || fail "missing $b"
  plain=$(nm -D --undefined-only "$b" | awk '{print $2}' | sed 's/@.*//' | grep -xE "($fns)" || true)
  [[ -z "$plain" ]] || fail "$b calls the 32-bit-offset forms: $(echo $plain) (build without -D_FILE_OFFSET_BITS=64?)"
  wide=$(nm -D --undefined-only "$b" | awk '{print $2}' | sed 's/@.*//' | grep -cxE "($fns)64" || true)
  echo "$b: $wide large-file calls, no 32-bit-offset ones"
done
echo "ok"
