-- mpic.testing: the test vocabulary for Lua test files run by `mpic test`.
--
--   local T = require "mpic.testing"
--   T.case("caa_unknown_critical_tag_forbids", function() T.eq(got, want) end)
--
-- Cases are collected while a file loads and run afterwards, each as its own
-- task (so probes and mpic.sleep work inside), with a time limit.
local M = {}

local type, pairs, tostring, string_format, error = type, pairs, tostring, string.format, error
local table_concat, table_sort = table.concat, table.sort

local registry = {}

--- Register a named case. opts: {timeout_ms = 10000}
function M.case(name, fn, opts)
  if type(name) ~= "string" or type(fn) ~= "function" then
    error("T.case(name, fn): name must be a string and fn a function", 2)
  end
  registry[#registry + 1] = { name = name, fn = fn, opts = opts or {} }
end

--- Take the cases registered so far (used by the runner).
function M._take()
  local cases = registry
  registry = {}
  return cases
end

local function repr(v, depth, seen)
  depth = depth or 0
  local t = type(v)
  if t == "string" then return string_format("%q", v) end
  if t ~= "table" then return tostring(v) end
  seen = seen or {}
  if seen[v] or depth > 4 then return "{...}" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table_sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in pairs(keys) do
    parts[#parts + 1] = "[" .. repr(k) .. "]=" .. repr(v[k], depth + 1, seen)
  end
  seen[v] = nil
  return "{" .. table_concat(parts, ", ") .. "}"
end
M.repr = repr

local function deep_eq(a, b, path)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    if type(a) == "number" and type(b) == "number" and a ~= a and b ~= b then return true end
    return false, path
  end
  for k, v in pairs(a) do
    local ok, where = deep_eq(v, b[k], path .. "[" .. repr(k) .. "]")
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "[" .. repr(k) .. "]" end
  end
  return true
end

--- Deep equality.
function M.eq(got, want, msg)
  local ok, where = deep_eq(got, want, "")
  if not ok then
    error(string_format("%sexpected %s, got %s%s", msg and (msg .. ": ") or "", repr(want), repr(got),
      (where and where ~= "") and (" (differs at " .. where .. ")") or ""), 2)
  end
end

function M.ok(v, msg)
  if not v then error(msg or "expected a true value", 2) end
  return v
end

--- fn must raise an error whose message matches the Lua pattern.
function M.raises(fn, pattern, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error" .. (pattern and (" matching " .. pattern) or ""), 2) end
  if pattern and not tostring(err):find(pattern) then
    error(string_format("error %q does not match %q", tostring(err), pattern), 2)
  end
  return err
end

--- String contains (plain).
function M.contains(s, sub, msg)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    error(string_format("%sexpected %s to contain %q", msg and (msg .. ": ") or "", repr(s), sub), 2)
  end
end

return M
