-- The policy sandbox's resource limits (mpic.policy over mpic.core.sandbox):
-- memory per call, bounded pattern matching, the strings' metatable path to
-- the capped functions, and loops in C of the table library. Each bomb must
-- fail closed quickly (well within a validation's 5 s deadline).
local T = require "mpic.testing"
local policy = require "mpic.policy"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function load_src(src, opts)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(src)
  f:close()
  local p, err = policy.load(path, opts)
  os.remove(path)
  return p, err
end

local function with_decide(body)
  return 'return { name = "t", select = function() return {} end, decide = function(state) ' .. body .. " end }"
end

local function state()
  return {
    remotes = { { id = "r1", rir = "ARIN", passed = true, completed = true, done = true } },
    count = 1,
    date = "2026-12-16",
    target = ("a"):rep(100000),
  }
end

-- decide fails closed within max_ms; returns the reason.
local function fails_fast(src, max_ms, opts, ...)
  local p = assert(load_src(src, opts))
  local t0 = mpic.now()
  local v, why, info = p:decide(state())
  local ms = mpic.now() - t0
  eq(v, "invalid")
  eq(info, { rule = "policy-error" })
  ok(ms < max_ms, "took " .. ms .. " ms")
  for _, pat in ipairs({ ... }) do
    contains(why, pat)
  end
  return why
end

case(
  "memory_bomb_by_concatenation_hits_the_memory_limit",
  function()
    fails_fast(
      with_decide('local s = "x" while true do s = s .. s end'),
      2000,
      nil,
      "memory limit (" .. policy.DEFAULT_MEMORY_LIMIT .. " bytes) exceeded"
    )
  end
)

case(
  "memory_bomb_survives_pcall",
  function()
    fails_fast(
      with_decide([[
    local keep = {}
    while true do
      pcall(function() local s = "x" while true do s = s .. s end end)
      keep[#keep + 1] = {}
    end]]),
      2000,
      nil,
      "memory limit"
    )
  end
)

case(
  "memory_bomb_in_a_table_hits_the_memory_limit",
  function()
    fails_fast(
      with_decide("local t = {} for i = 1, 1e9 do t[i] = i end"),
      2000,
      { instruction_limit = 1000000000, memory_limit = 4 << 20 },
      "memory limit (4194304 bytes)"
    )
  end
)

case("memory_bomb_at_load_fails", function()
  local p, why = load_src('local s = "x" while true do s = s .. s end return {}', { memory_limit = 1 << 20 })
  eq(p, nil)
  contains(why, "memory limit (1048576 bytes) exceeded")
end)

case("memory_limit_is_per_call", function()
  -- each call may allocate up to the limit again
  local p = assert(
    load_src(
      with_decide('local t = {} for i = 1, 1000 do t[i] = ("x"):rep(1000) .. i end return "valid", "ok"'),
      { memory_limit = 4 << 20 }
    )
  )
  for _ = 1, 5 do
    eq(p:decide(state()), "valid")
  end
end)

case("rep_through_the_string_metatable_is_capped", function()
  fails_fast(
    with_decide('local s = ("x"):rep(1 << 28) return "valid", "x"'),
    1000,
    nil,
    "string.rep: result larger than"
  )
  local target = "y"
  fails_fast(with_decide('local s = state.date:rep(1 << 26) return "valid", "x"'), 1000, nil, "string.rep")
  eq(target:rep(3), "yyy") -- outside the sandbox: the plain library
end)

case("rep_of_the_empty_string_a_huge_number_of_times_is_refused", function()
  -- zero bytes, but a loop of 2^50 in C
  fails_fast(with_decide('local s = (""):rep(1 << 50) return "valid", "x"'), 1000, nil, "string.rep")
  fails_fast(with_decide('local s = string.rep("", 1 << 50, "") return "valid", "x"'), 1000, nil, "string.rep")
end)

case("pattern_bomb_is_refused_before_it_runs", function()
  fails_fast(
    with_decide('local i = state.target:find(".-.-.-.-b") return "valid", "x"'),
    1000,
    nil,
    "string.find: pattern too costly for a subject of 100000 bytes"
  )
  fails_fast(
    with_decide('local i = string.match(state.target, "(.-)(.-)(.-)b") return "valid", "x"'),
    1000,
    nil,
    "string.match: pattern too costly"
  )
  fails_fast(
    with_decide('for x in state.target:gmatch(".-.-b") do end return "valid", "x"'),
    1000,
    nil,
    "string.gmatch: pattern too costly"
  )
  fails_fast(
    with_decide('local s = state.target:gsub("a*a*a*b", "") return "valid", "x"'),
    1000,
    nil,
    "string.gsub: pattern too costly"
  )
end)

case("plain_find_is_charged_too", function()
  -- memchr + memcmp at every position: n * m
  fails_fast(
    with_decide('local i = state.target:find(("a"):rep(50000) .. "b", 1, true) return "valid", "x"'),
    1000,
    nil,
    "pattern too costly"
  )
end)

case("many_cheap_patterns_add_up_to_the_instruction_limit", function()
  -- each find is allowed, their sum is not: the bound is charged
  fails_fast(with_decide('while true do state.target:find("a*b") end'), 3000, nil, "instruction limit")
end)

case("ordinary_patterns_still_work_in_the_sandbox", function()
  local p = assert(load_src(with_decide([[
    local d = state.date
    local y, m = d:match("^(%d+)%-(%d+)")
    local parts = {}
    for w in ("a,b,,c"):gmatch("[^,]*") do parts[#parts + 1] = w end
    local trimmed = ("  x y  "):match("^%s*(.-)%s*$")
    local n = select(2, state.target:gsub("a", "a"))
    local at = state.target:find("aaa", 99990, true)
    return "valid", table.concat({ y, m, #parts, trimmed, n, at, string.format("%d", 7) }, "|")
  ]])))
  local v, why = p:decide(state())
  eq(v, "valid")
  eq(why, "2026|12|4|x y|100000|99990|7")
end)

case("table_loops_in_c_are_bounded", function()
  fails_fast(
    with_decide('table.move({}, 1, math.maxinteger - 1, 2) return "valid", "x"'),
    1000,
    nil,
    "table.move: more than"
  )
  fails_fast(
    with_decide([[
    local t = setmetatable({}, { __len = function() return 1 << 60 end })
    table.insert(t, 1, "x") return "valid", "x"]]),
    1000,
    nil,
    "table.insert: list longer than"
  )
  fails_fast(
    with_decide([[
    local t = setmetatable({}, { __len = function() return 1 << 60 end })
    table.remove(t, 1) return "valid", "x"]]),
    1000,
    nil,
    "table.remove: list longer than"
  )
end)

case("string_methods_outside_policies_are_the_plain_library", function()
  assert(load_src(with_decide('return "valid", "x"')))
  local big = ("ab"):rep(1 << 20) -- 2 MiB: above the policies' cap
  eq(#big, 2 << 20)
  eq(("a.-b"):find(".-", 1), 1)
  eq(string.dump ~= nil and getmetatable("").__index ~= nil, true)
end)
