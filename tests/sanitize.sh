#!/bin/bash
# Build mpic with AddressSanitizer + UndefinedBehaviorSanitizer
# (cmake -DMPIC_SANITIZE=ON) in BUILD_DIR and run the whole ctest suite
# (cmocka units, Lua suites, loopback lab suites) with leak detection on.
# Any sanitizer report fails the test that produced it (abort_on_error,
# halt_on_error), so the exit status is ctest's.
#   tests/sanitize.sh [BUILD_DIR] [-- extra ctest arguments]
# Env: CC (default clang; gcc works too), JOBS (build jobs, default nproc).
# Leak reports that are not ours are silenced by tests/lsan.supp (narrow
# entries, each with its reason); the report lists every suppression used.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
build=$root/build-asan
if [ $# -gt 0 ] && [ "$1" != -- ]; then build=$1; shift; fi
[ "${1:-}" = -- ] && shift
cc=${CC:-clang}
jobs=${JOBS:-$(nproc)}

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DMPIC_SANITIZE=ON -DMPIC_TESTS=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null || { echo "sanitize.sh: configure failed" >&2; exit 2; }
cmake --build "$build" -j"$jobs" || { echo "sanitize.sh: build failed" >&2; exit 2; }

log_dir="$build/sanitizer-logs"
rm -rf "$log_dir"
mkdir -p "$log_dir"
# log_path keeps every report (also from processes the lab scripts start in
# the background) in one place; abort_on_error makes the process fail.
# the load test at a size that fits its time limit in a sanitizer build
export MPIC_LOAD_TOTAL=${MPIC_LOAD_TOTAL:-2000}
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$log_dir/asan"
export LSAN_OPTIONS="suppressions=$here/lsan.supp:print_suppressions=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$log_dir/ubsan"

ctest --test-dir "$build" --output-on-failure "$@"
rc=$?

reports=$(find "$log_dir" -type f -size +0 | sort)
if [ -n "$reports" ]; then
  echo "sanitize.sh: sanitizer output:"
  for f in $reports; do echo "--- $f"; head -60 "$f"; done
  # a report is a failure even if the process that wrote it did not fail its test
  if grep -lqE "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" $reports; then
    echo "sanitize.sh: sanitizer errors found" >&2
    [ $rc -eq 0 ] && rc=1
  fi
fi
[ $rc -eq 0 ] && echo "sanitize.sh: all tests passed with ASan+UBSan and leak detection"
exit $rc
