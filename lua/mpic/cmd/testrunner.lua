-- mpic.cmd.testrunner: runs Lua test files (`mpic test FILE|DIR ...`).
-- Each file matching *_test.lua is loaded with its directory on package.path;
-- each case runs as its own task with a time limit. Prints one line per case
-- and ends with "N passed, N failed". Exit status 0 only if something ran and
-- nothing failed.
local mpic = require "mpic"
local T = require "mpic.testing"
local util = require "mpic.core.util"

local M = {}
local io_write, string_format, table_sort = io.write, string.format, table.sort

-- The *_test.lua files below dir (recursively, at most 16 levels), sorted.
local function list_dir(dir)
  local files = {}
  local function walk(d, depth)
    local names = util.listdir(d)
    if not names or depth > 16 then return end
    for _, n in ipairs(names) do
      local path = d:gsub("/$", "") .. "/" .. n
      local kind = util.filetype(path)
      if kind == "directory" then
        walk(path, depth + 1)
      elseif kind == "file" and n:match("_test%.lua$") then
        files[#files + 1] = path
      end
    end
  end
  walk(dir, 1)
  table_sort(files)
  return files
end

local function is_dir(path) return util.filetype(path) == "directory" end

local function run_file(file, filter, counts)
  local dir = file:match("^(.*)/[^/]*$") or "."
  local saved_path = package.path
  package.path = dir .. "/?.lua;" .. saved_path
  T._take()
  local chunk, err = loadfile(file)
  local ok
  if chunk then
    ok, err = pcall(chunk)
  end
  package.path = saved_path
  if not chunk or not ok then
    counts.failed = counts.failed + 1
    io_write(string_format("FAIL %s (load): %s\n", file, tostring(err)))
    return
  end
  for _, c in ipairs(T._take()) do
    if not filter or c.name:find(filter, 1, true) then
      local t0 = mpic.now()
      local task = mpic.spawn(c.fn)
      local res = table.pack(mpic.wait(task, c.opts.timeout_ms or 20000))
      local ms = mpic.now() - t0
      if task:status() == "done" then
        counts.passed = counts.passed + 1
        io_write(string_format("ok   %s (%d ms)\n", c.name, ms))
      else
        mpic.cancel(task)
        counts.failed = counts.failed + 1
        local why = task:status() == "error" and (task:traceback() or res[3])
          or (res[2] == "timeout" and "timed out")
          or tostring(res[3])
        io_write(string_format("FAIL %s: %s\n", c.name, why))
      end
      io.stdout:flush()
    end
  end
end

function M.run(args)
  local paths, filter = {}, nil
  local i = 1
  while i <= #args do
    if args[i] == "--filter" then
      filter = args[i + 1]
      i = i + 1
    else
      paths[#paths + 1] = args[i]
    end
    i = i + 1
  end
  if #paths == 0 then
    io.stderr:write("usage: mpic test FILE|DIR ... [--filter TEXT]\n")
    return 2
  end
  local counts = { passed = 0, failed = 0 }
  for _, p in ipairs(paths) do
    local files = is_dir(p) and list_dir(p) or { p }
    for _, f in ipairs(files) do
      run_file(f, filter, counts)
    end
  end
  io_write(string_format("%d passed, %d failed\n", counts.passed, counts.failed))
  if counts.failed > 0 or counts.passed == 0 then return 1 end
  return 0
end

return M
