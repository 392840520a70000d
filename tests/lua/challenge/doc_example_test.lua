-- docs/CHALLENGES.md is enough to write a challenge type: its example
-- method and its unit test, taken from the page as they are, load (schema
-- checked, sandboxed) and pass with the fake probe shipped in mpic.testing.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local challenges = require "mpic.challenges"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local self_exe = T.self_exe

-- The ```lua blocks of the page that start with "-- file: NAME".
local function doc_files()
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  local f = assert(io.open(here .. "/../../../docs/CHALLENGES.md"))
  local text = f:read("a")
  f:close()
  local files = {}
  for block in text:gmatch("```lua\n(.-)```") do
    local name = block:match("^%-%- file: (%S+)\n")
    if name then files[name] = block end
  end
  return files
end

case("doc_example_loads_and_its_unit_test_passes", function()
  local files = doc_files()
  ok(files["x-token-01.lua"], "the page holds the method")
  ok(files["x_token_test.lua"], "the page holds its test")
  local dir = os.tmpname()
  os.remove(dir)
  assert(util.mkdir(dir))
  for name, body in pairs(files) do
    local out = assert(io.open(dir .. "/" .. name, "w"))
    out:write(body)
    out:close()
  end
  local reg = challenges.load({ dir })
  local p = assert(io.popen(self_exe() .. " test " .. dir .. " 2>&1"))
  local out = p:read("a")
  p:close()
  for name in pairs(files) do
    os.remove(dir .. "/" .. name)
  end
  os.remove(dir)
  eq(reg.errors, {})
  ok(reg.by_name["x-token-01"], "loaded by the registry")
  contains(out, "3 passed, 0 failed")
end)
