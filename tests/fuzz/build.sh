#!/bin/bash
# Build every libFuzzer target (tests/fuzz/fuzz_*.c) with clang, ASan and
# UBSan into BUILD_DIR (default: <repo>/build-fuzz). The core library is
# built by CMake in the same directory with -fsanitize=fuzzer-no-link so the
# parsers carry coverage instrumentation; each target links it with
# -fsanitize=fuzzer.
#   tests/fuzz/build.sh [BUILD_DIR]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${1:-$root/build-fuzz}
cc=${CC_FUZZ:-clang}
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"

command -v "$cc" >/dev/null || { echo "build.sh: $cc not found" >&2; exit 2; }

cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER="$cc" -DMPIC_TESTS=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_C_FLAGS="-fsanitize=fuzzer-no-link $san" >/dev/null
cmake --build "$build" --target mpiccore -j"$(nproc)"

# the same dependencies as the core library: read them from CMake's cache
cache_get() { sed -n "s/^$1:INTERNAL=//p" "$build/CMakeCache.txt" | tr ';' ' '; }
cflags=$(cache_get DEPS_CFLAGS)
libs=$(cache_get DEPS_LDFLAGS)
[ -n "$libs" ] || { echo "build.sh: DEPS_LDFLAGS missing from $build/CMakeCache.txt" >&2; exit 2; }
mkdir -p "$build/fuzz"
for src in "$here"/fuzz_*.c; do
  name=$(basename "$src" .c)
  echo "build.sh: $name"
  # shellcheck disable=SC2086
  "$cc" -std=c11 -g -O1 -Wall -Wextra -Wno-unused-parameter -D_GNU_SOURCE \
    -fsanitize=fuzzer $san $cflags \
    -I"$root/core" -DMPIC_SOURCE_DIR="\"$root\"" \
    -o "$build/fuzz/$name" "$src" "$build/libmpiccore.a" $libs -lm
done
echo "build.sh: targets in $build/fuzz"
