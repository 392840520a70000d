-- mpic.core.util's file-system functions (listdir, filetype, mkdir): the
-- Lua code lists folders and creates them without a shell.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function tempdir()
  local base = os.tmpname()
  os.remove(base)
  return base
end

case("fs_mkdir_creates_parents_and_listdir_sorts", function()
  local base = tempdir()
  eq(util.mkdir(base .. "/a/b"), true)
  eq(util.mkdir(base .. "/a/b"), true) -- existing: fine
  eq(util.filetype(base .. "/a/b"), "directory")
  for _, n in ipairs({ "c.lua", "a.lua", "b.txt" }) do
    local f = assert(io.open(base .. "/a/" .. n, "w"))
    f:close()
  end
  eq(util.listdir(base .. "/a"), { "a.lua", "b", "b.txt", "c.lua" })
  eq(util.filetype(base .. "/a/a.lua"), "file")
  for _, n in ipairs({ "c.lua", "a.lua", "b.txt" }) do
    os.remove(base .. "/a/" .. n)
  end
  os.remove(base .. "/a/b")
  os.remove(base .. "/a")
  os.remove(base)
end)

case("fs_errors_are_values", function()
  local names, err = util.listdir("/nonexistent/mpic-dir")
  eq(names, nil)
  contains(err, "cannot list /nonexistent/mpic-dir")
  local t, terr = util.filetype("/nonexistent/mpic-dir")
  eq(t, nil)
  contains(terr, "No such file")
  local made, merr = util.mkdir("/dev/null/x")
  eq(made, nil)
  contains(merr, "cannot create")
  ok(not pcall(util.mkdir, ""))
end)

case("fs_listdir_limit_is_an_error_not_a_truncation", function()
  local base = tempdir()
  assert(util.mkdir(base))
  for i = 1, 5 do
    local f = assert(io.open(base .. "/f" .. i, "w"))
    f:close()
  end
  eq(#util.listdir(base, 5), 5)
  local names, err = util.listdir(base, 4)
  eq(names, nil)
  contains(err, "more than 4 entries")
  ok(not pcall(util.listdir, base, 100001))
  for i = 1, 5 do
    os.remove(base .. "/f" .. i)
  end
  os.remove(base)
end)
