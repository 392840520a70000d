-- The group-commit audit writer (mpic.core.audit, reached as util.audit):
-- concurrent appends from many tasks, failures, misuse and cancellation.
local T = require "mpic.testing"
local mpic = require "mpic"
local util = require "mpic.core.util"
local case, eq, ok, raises = T.case, T.eq, T.ok, T.raises
local audit = util.audit

local function tmpfile()
  local path = os.tmpname()
  os.remove(path)
  return path
end

local function read_lines(path)
  local f = assert(io.open(path, "rb"))
  local data = f:read("a")
  f:close()
  local lines = {}
  for l in data:gmatch("([^\n]*)\n") do
    lines[#lines + 1] = l
  end
  return lines, data
end

-- A line is a JSON object (the writer chains it: prev, seq); V reads it back.
local function J(v) return util.json_encode({ v = v }) end
local function V(line) return (util.json_decode(line) or {}).v end

case("audit_concurrent_appends_each_line_once_and_whole", function()
  local path = tmpfile()
  local w = assert(audit.open(path, true))
  local N = 400
  local tasks = {}
  for i = 1, N do
    tasks[i] = mpic.spawn(function()
      local line = assert(util.json_encode({ i = i, pad = string.rep("x", i % 97) }))
      return w:append(line)
    end)
  end
  mpic.wait_all(tasks, 20000)
  for i = 1, N do
    eq(tasks[i]:status(), "done")
    eq(tasks[i]:result(), true)
  end
  local lines, data = read_lines(path)
  eq(#lines, N)
  eq(data:sub(-1), "\n")
  local seen = {}
  for _, l in ipairs(lines) do
    local v = assert(util.json_decode(l))
    ok(not seen[v.i], "line " .. tostring(v.i) .. " written once")
    seen[v.i] = true
    eq(#v.pad, v.i % 97)
  end
  for i = 1, N do
    ok(seen[i], "line " .. i .. " present")
  end
  os.remove(path)
end)

case("audit_same_path_same_writer_and_order_kept", function()
  local path = tmpfile()
  local a = assert(audit.open(path, false))
  local b = assert(audit.open(path, false))
  eq(a:path(), path)
  for i = 1, 20 do
    assert((i % 2 == 0 and a or b):append(J("line " .. i)))
  end
  local lines = read_lines(path)
  eq(#lines, 20)
  for i = 1, 20 do
    eq(V(lines[i]), "line " .. i)
  end
  os.remove(path)
end)

case("audit_unwritable_path_is_an_error_not_a_raise", function()
  local w, kind, detail = audit.open("/nonexistent-dir-for-audit/log.jsonl", true)
  eq(w, nil)
  eq(kind, "internal")
  T.contains(detail, "open /nonexistent-dir-for-audit/log.jsonl")
  -- a file that disappears with its directory: the worker cannot reopen it
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir " .. dir))
  local path = dir .. "/log.jsonl"
  local w2 = assert(audit.open(path, true))
  assert(w2:append(J("first")))
  assert(os.execute("rm -r " .. dir))
  local r, k2, d2 = w2:append(J("second"))
  eq(r, nil)
  eq(k2, "internal")
  T.contains(d2, "open " .. path)
end)

case("audit_full_disk_fails_the_append", function()
  local w = assert(audit.open("/dev/full", false))
  local r, kind, detail = w:append(J("x"))
  eq(r, nil)
  eq(kind, "internal")
  T.contains(detail, "write /dev/full")
end)

case("audit_reopens_a_rotated_file", function()
  for _, fsync in ipairs({ true, false }) do -- through the worker, and written on the loop
    local path = tmpfile()
    local w = assert(audit.open(path, fsync))
    assert(w:append(J("before")))
    assert(os.rename(path, path .. ".1"))
    assert(w:append(J("after")))
    eq(V(read_lines(path .. ".1")[1]), "before")
    eq(#read_lines(path), 1)
    eq(V(read_lines(path)[1]), "after")
    os.remove(path)
    os.remove(path .. ".1")
  end
end)

case("audit_fsync_once_asked_stays_on_for_the_path", function()
  local path = tmpfile()
  local a = assert(audit.open(path, false))
  assert(a:append(J("1")))
  local b = assert(audit.open(path, true))
  local tasks = {}
  for i = 2, 40 do
    tasks[#tasks + 1] = mpic.spawn(function() return (i % 2 == 0 and a or b):append(J(tostring(i))) end)
  end
  mpic.wait_all(tasks, 10000)
  for _, t in ipairs(tasks) do
    eq(t:result(), true)
  end
  local lines = read_lines(path)
  eq(#lines, 40)
  eq(V(lines[1]), "1")
  os.remove(path)
end)

case("audit_misuse_raises", function()
  local w = assert(audit.open(tmpfile(), false))
  raises(function() w:append("two\nlines") end, "newline")
  raises(function() w:append(nil) end)
  raises(function() audit.open(nil) end)
  raises(function() w:append("not an object") end, "JSON object")
  local co = coroutine.wrap(function() return w:append(J("x")) end)
  raises(co, "task")
end)

case("audit_cancelled_appends_are_safe", function()
  local path = tmpfile()
  local w = assert(audit.open(path, true))
  local tasks = {}
  for i = 1, 50 do
    tasks[i] = mpic.spawn(function() return w:append(J("c" .. i)) end)
  end
  mpic.sleep(0) -- let them queue
  for i = 1, 50, 2 do
    mpic.cancel(tasks[i])
  end
  mpic.wait_all(tasks, 10000)
  for i = 2, 50, 2 do
    eq(tasks[i]:result(), true)
  end
  assert(w:append(J("after")))
  local lines = read_lines(path)
  eq(V(lines[#lines]), "after")
  ok(#lines >= 26, "the lines that were not cancelled are there")
  os.remove(path)
end)
