-- The process runs on the allocator it was built with: with MPIC_JEMALLOC
-- (the default outside sanitizer builds) every malloc is jemalloc's, and a
-- build without it does not pick jemalloc up by accident. `mpic --version`
-- says which one serves the process.
local T = require "mpic.testing"
local case, eq, contains = T.case, T.eq, T.contains

local paths = package.loaded["mpic.paths"]

case("allocator_is_the_one_the_build_chose", function()
  T.ok(paths.malloc_built == "jemalloc" or paths.malloc_built == "libc", tostring(paths.malloc_built))
  if paths.malloc_built == "jemalloc" then
    eq(paths.malloc, "jemalloc")
  else
    T.ok(paths.malloc ~= "jemalloc", "a build without MPIC_JEMALLOC runs on " .. tostring(paths.malloc))
  end
end)

case("allocator_named_by_mpic_version", function()
  local out = T.shell(string.format("%q --version", T.self_exe()))
  contains(out, "(malloc: " .. paths.malloc .. ")")
end)
