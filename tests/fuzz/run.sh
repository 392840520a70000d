#!/bin/bash
# Run every libFuzzer target for a bounded time, then replay the saved
# regression inputs; exit 1 when any target crashes, leaks, times out or
# fails a check, 2 on a setup problem.
#   tests/fuzz/run.sh SECONDS [TARGET...]
# Env: BUILD_DIR (default <repo>/build-fuzz, built by tests/fuzz/build.sh),
#      FUZZ_JOBS (targets run at once, default 2), FUZZ_NO_BUILD=1 (skip build).
# The working corpus (seeds from tests/fuzz/corpus/<name> plus what the run
# finds) lives in BUILD_DIR/corpus/<name>; crash inputs go to
# BUILD_DIR/artifacts/<name>/ and logs to BUILD_DIR/logs/<name>.log.
# A crash input worth keeping goes to tests/fuzz/regressions/<name>/.
set -uo pipefail

secs=${1:?usage: run.sh SECONDS [TARGET...]}
shift
case $secs in '' | *[!0-9]*) echo "run.sh: SECONDS must be a number" >&2; exit 2 ;; esac
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${BUILD_DIR:-$root/build-fuzz}
jobs=${FUZZ_JOBS:-2}

if [ "${FUZZ_NO_BUILD:-0}" != 1 ]; then
  "$here/build.sh" "$build" >"$build.build.log" 2>&1 || {
    echo "run.sh: build failed (see $build.build.log)" >&2; tail -20 "$build.build.log" >&2; exit 2; }
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in "$here"/fuzz_*.c; do n=$(basename "$src" .c); targets+=("${n#fuzz_}"); done
fi
for t in "${targets[@]}"; do
  [ -x "$build/fuzz/fuzz_$t" ] || { echo "run.sh: no target $build/fuzz/fuzz_$t" >&2; exit 2; }
done

mkdir -p "$build/logs"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:symbolize=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# fuzz one target; its status goes to logs/<name>.rc
fuzz_one() {
  local t=$1 bin="$build/fuzz/fuzz_$1" corpus="$build/corpus/$1" art="$build/artifacts/$1/"
  local log="$build/logs/$t.log" opts=()
  mkdir -p "$corpus" "$art"
  [ -d "$here/corpus/$t" ] && cp -n "$here/corpus/$t"/* "$corpus"/ 2>/dev/null
  [ -f "$here/dict/$t.dict" ] && opts+=("-dict=$here/dict/$t.dict")
  # the outer timeout is a safety net well past libFuzzer's own limit
  timeout -k 10 $((secs + 120)) "$bin" "${opts[@]}" -max_total_time="$secs" -timeout=20 \
    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 -artifact_prefix="$art" \
    "$corpus" >"$log" 2>&1
  echo $? >"$build/logs/$t.rc"
}

running=0
for t in "${targets[@]}"; do
  fuzz_one "$t" &
  running=$((running + 1))
  if [ "$running" -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi
done
wait

fail=0
printf '%-15s %12s %10s %8s %s\n' target executions exec/s cov result
for t in "${targets[@]}"; do
  log="$build/logs/$t.log"
  rc=$(cat "$build/logs/$t.rc" 2>/dev/null || echo 99)
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -1 | cut -d' ' -f2)
  res=ok
  if [ "$rc" != 0 ]; then
    res="FAILED (exit $rc, see $log; inputs in $build/artifacts/$t/)"
    fail=1
  fi
  printf '%-15s %12s %10s %8s %s\n' "$t" "${runs:-?}" "${speed:-?}" "${cov:-?}" "$res"
done

# replay the regression inputs (each must run clean)
for t in "${targets[@]}"; do
  dir="$here/regressions/$t"
  [ -d "$dir" ] || continue
  files=("$dir"/*)
  [ -e "${files[0]}" ] || continue
  if "$build/fuzz/fuzz_$t" "${files[@]}" >"$build/logs/$t.regress.log" 2>&1; then
    echo "regressions $t: ${#files[@]} inputs ok"
  else
    echo "regressions $t: FAILED (see $build/logs/$t.regress.log)"
    fail=1
  fi
done
exit $fail
