#!/usr/bin/env bash
# Apply (default) or check (--check) the project's formatting:
#   C:   clang-format with .clang-format (Debian's clang-format)
#   Lua: stylua with .stylua.toml (pinned in tools/package.json; Debian has no
#        package for it, so it comes from the npm registry: `npm ci --prefix tools`)
# Exit status is non-zero in --check mode when any file would change.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=apply
[ "${1:-}" = --check ] && mode=check
stylua=tools/node_modules/.bin/stylua
command -v clang-format >/dev/null || { echo "format: clang-format is not installed (apt-get install clang-format)" >&2; exit 2; }
[ -x "$stylua" ] || { echo "format: $stylua is missing (npm ci --prefix tools)" >&2; exit 2; }
mapfile -t c_files < <(git ls-files 'core/*.c' 'core/*.h' 'tests/*.c' 'tests/*.h')
mapfile -t lua_files < <(git ls-files '*.lua')
if [ "$mode" = check ]; then
  rc=0
  clang-format --dry-run --Werror "${c_files[@]}" || rc=1
  out=$("$stylua" --check "${lua_files[@]}" 2>&1) || { printf '%s\n' "$out" | head -60; rc=1; }
  [ $rc = 0 ] && echo "format: ${#c_files[@]} C and ${#lua_files[@]} Lua files are formatted"
  exit $rc
fi
clang-format -i "${c_files[@]}"
"$stylua" "${lua_files[@]}"
