-- Policy loading and the sandbox (mpic.policy), and the shipped policies
-- br.lua, strict.lua and primary_first.lua run through it.
local T = require "mpic.testing"
local policy = require "mpic.policy"
local sel = require "mpic.select"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local POLICIES = here .. "/.."

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

local function P(id, rir, lat, lon, primary)
  return { id = id, rir = rir, location = { lat = lat, lon = lon }, healthy = true, is_primary = primary == true }
end

local function registry()
  return {
    P("iad", "ARIN", 39.0, -77.5, true),
    P("fra", "RIPE", 50.11, 8.68),
    P("par", "RIPE", 48.86, 2.35),
    P("sto", "RIPE", 59.33, 18.07),
    P("sgp", "APNIC", 1.35, 103.82),
    P("tyo", "APNIC", 35.68, 139.69),
    P("syd", "APNIC", -33.87, 151.21),
    P("gru", "LACNIC", -23.55, -46.63),
    P("jnb", "AFRINIC", -26.2, 28.05),
    P("sfo", "ARIN", 37.77, -122.42),
    P("sea", "ARIN", 47.61, -122.33),
  }
end

local function good_state(passes, opts)
  opts = opts or {}
  local rirs = { "ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC" }
  local remotes = {}
  for i = 1, 5 do
    remotes[i] = { id = "r" .. i, rir = rirs[i], passed = i <= passes, completed = true, done = true }
  end
  return { primary = opts.primary, remotes = remotes, count = 5, date = "2026-12-16" }
end

-- Decide fails closed: verdict "invalid" and a reason matching every pattern.
local function decide_fails_closed(src, ...)
  local p = assert(load_src(src))
  local v, why, info = p:decide(good_state(5))
  eq(v, "invalid")
  eq(info, { rule = "policy-error" })
  for _, pat in ipairs({ ... }) do
    contains(why, pat)
  end
  return why
end

-- Sandbox ---------------------------------------------------------------

case(
  "sandbox_io_open_fails_closed",
  function() decide_fails_closed(with_decide('io.open("/etc/passwd") return "valid", "x"'), "global 'io'", 'policy "t"') end
)

case(
  "sandbox_os_execute_fails_closed",
  function() decide_fails_closed(with_decide('os.execute("true") return "valid", "x"'), "global 'os'") end
)

case("sandbox_load_fails_closed", function()
  decide_fails_closed(with_decide('load("return 1")() return "valid", "x"'), "global 'load'")
  decide_fails_closed(with_decide('dofile("/etc/passwd") return "valid", "x"'), "global 'dofile'")
end)

case("sandbox_require_of_other_modules_fails_closed", function()
  decide_fails_closed(with_decide('require("os") return "valid", "x"'), "only mpic.select")
  decide_fails_closed(with_decide('require("mpic.core.util") return "valid", "x"'), "only mpic.select")
  decide_fails_closed(with_decide('require("policies.br") return "valid", "x"'), "only mpic.select")
end)

case("sandbox_string_dump_fails_closed", function()
  decide_fails_closed(with_decide('string.dump(function() end) return "valid", "x"'), "dump")
  decide_fails_closed(with_decide('local s = ("x").dump(function() end) return "valid", "x"'), "dump")
end)

case(
  "sandbox_debug_getinfo_fails_closed",
  function() decide_fails_closed(with_decide('debug.getinfo(1) return "valid", "x"'), "global 'debug'") end
)

case("sandbox_has_no_collectgarbage_coroutine_or_random", function()
  decide_fails_closed(with_decide('collectgarbage() return "valid", "x"'), "collectgarbage")
  decide_fails_closed(with_decide('coroutine.yield() return "valid", "x"'), "coroutine")
  decide_fails_closed(with_decide('math.random() return "valid", "x"'), "random")
  decide_fails_closed(with_decide('local m = getmetatable("") m.__index = {} return "valid", "x"'), "index a nil")
end)

case(
  "sandbox_infinite_loop_in_decide_hits_instruction_limit",
  function() decide_fails_closed(with_decide("while true do end"), "instruction limit") end
)

case(
  "sandbox_instruction_limit_survives_pcall",
  function()
    decide_fails_closed(with_decide("while true do pcall(function() while true do end end) end"), "instruction limit")
  end
)

case("sandbox_infinite_loop_at_load_fails", function()
  local p, why = load_src("while true do end", { instruction_limit = 100000 })
  eq(p, nil)
  contains(why, "instruction limit (100000) exceeded")
end)

case("sandbox_garbage_from_decide_fails_closed", function()
  decide_fails_closed(with_decide("return 42"), "malformed verdict")
  decide_fails_closed(with_decide('return "maybe", "x"'), "malformed verdict", '"maybe"')
  decide_fails_closed(with_decide('return "valid", {}'), "reason")
  decide_fails_closed(with_decide('return "valid", "ok", { f = print or tostring }'), "malformed info")
  decide_fails_closed(with_decide("return"), "malformed verdict")
end)

case("sandbox_error_in_decide_fails_closed_with_location", function()
  local why = decide_fails_closed(with_decide('error("boom")'), "boom")
  ok(why:find(":1: boom", 1, true), "reason names the line: " .. why)
  -- An error object whose __tostring never returns is not stringified.
  decide_fails_closed(
    with_decide("error(setmetatable({}, { __tostring = function() while true do end end }))"),
    "error object of type table"
  )
end)

case(
  "sandbox_refuses_gc_metamethods",
  function() decide_fails_closed(with_decide('setmetatable({}, { __gc = function() end }) return "valid", "x"'), "__gc") end
)

case("sandbox_metamethods_in_results_never_run_outside_limit", function()
  -- A reason table with __index that loops: rejected without calling it.
  decide_fails_closed(
    with_decide('return "valid", setmetatable({}, { __index = function() while true do end end })'),
    "reason"
  )
  local p = assert(load_src([[return { name = "t", decide = function() return "undecided" end,
    select = function(reg, t, n) return setmetatable({}, { __len = function() while true do end end }) end }]]))
  local ids, why = p:select({}, "x", 5, 1, sel.new_rng("seed"))
  eq(ids, nil)
  contains(why, "returned 0 ids, 5 requested")
end)

case("sandbox_policy_cannot_alter_shared_libraries", function()
  local p = assert(load_src([[local q = require "mpic.quorum"
    q.required = function() return 0 end
    q.evaluate = function() return "valid", "forged", {} end
    return { name = "evil", select = function() return {} end, decide = function() return "invalid", "x" end }]]))
  ok(p)
  local br = assert(policy.load(POLICIES .. "/br.lua"))
  eq((br:decide(good_state(3))), "invalid")
  eq(require("mpic.quorum").required(5), 4)
end)

case("sandbox_policy_cannot_alter_caller_state", function()
  local p = assert(load_src(with_decide('state.remotes[1].passed = "mutated" return "undecided"')))
  local s = good_state(5)
  eq((p:decide(s)), "undecided")
  eq(s.remotes[1].passed, true)
end)

-- Loading -----------------------------------------------------------------

case("load_refuses_missing_and_unknown_fields", function()
  local p, why = load_src('return { name = "t", select = function() end }')
  eq(p, nil)
  contains(why, 'missing required field "decide"')
  p, why = load_src('return { name = "t", select = function() end, decide = function() end, wait_for_al = true }')
  eq(p, nil)
  contains(why, 'unknown field "wait_for_al"')
  p, why = load_src("return { name = 5, select = function() end, decide = function() end }")
  eq(p, nil)
  contains(why, 'field "name" must be a string')
  p, why = load_src("return 42")
  eq(p, nil)
  contains(why, "must return a table")
end)

case("load_refuses_syntax_errors_and_bytecode", function()
  local p, why = load_src("return {")
  eq(p, nil)
  contains(why, "expected")
  p, why = load_src(string.dump(function() return {} end))
  eq(p, nil)
  contains(why, "binary")
  p, why = policy.load("/nonexistent/policy.lua")
  eq(p, nil)
  contains(why, "cannot read")
end)

case("load_error_at_top_level_fails", function()
  local p, why = load_src('error("broken policy")')
  eq(p, nil)
  contains(why, "broken policy")
end)

case("check_config_garbage_and_errors_refuse", function()
  local p = assert(load_src([[return { name = "t", select = function() end, decide = function() end,
    check_config = function() return "yes" end }]]))
  local okv, why = p:check_config({}, {}, "2026-12-16")
  eq(okv, nil)
  contains(why, "instead of true")
  p = assert(load_src([[return { name = "t", select = function() end, decide = function() end,
    check_config = function() return nil end }]]))
  okv, why = p:check_config({}, {}, "2026-12-16")
  eq(okv, nil)
  contains(why, "without a reason")
end)

case("select_malformed_results_fail_closed", function()
  local reg = registry()
  local function try(ret)
    local p =
      assert(load_src('return { name = "t", decide = function() end, select = function() return ' .. ret .. " end }"))
    return p:select(reg, "x", 3, 1, sel.new_rng("seed"))
  end
  local ids, why = try('{ "fra", "sgp" }')
  eq(ids, nil)
  contains(why, "returned 2 ids, 3 requested")
  ids, why = try('{ "fra", "sgp", "fra" }')
  eq(ids, nil)
  contains(why, "selected twice")
  ids, why = try('{ "fra", "sgp", "iad" }')
  eq(ids, nil)
  contains(why, '"iad" is not a remote')
  ids, why = try('{ "fra", "sgp", "nowhere" }')
  eq(ids, nil)
  contains(why, '"nowhere" is not a remote')
  ids, why = try('nil, "no cohort today"')
  eq(ids, nil)
  contains(why, "no cohort today")
  eq(try('{ "fra", "sgp", "sfo" }'), { "fra", "sgp", "sfo" })
end)

-- Shipped policies ------------------------------------------------------------

case("br_policy_loads_checks_selects_and_decides", function()
  local br = assert(policy.load(POLICIES .. "/br.lua"))
  eq(br.name, "br")
  eq(br.wait_for_all, false)
  eq(br.primary_first, false)
  ok(br:check_config(registry(), { perspective_count = 5 }, "2026-12-16"))
  local rng = sel.new_rng(sel.seed("secret", "example.com"))
  local ids = assert(br:select(registry(), "example.com", 5, 1, rng))
  eq(#ids, 5)
  -- Same cohort as the library computes directly.
  eq(ids, (sel.pick(registry(), 5, 1, sel.new_rng(sel.seed("secret", "example.com")))))
  eq((br:decide(good_state(4))), "valid")
  eq((br:decide(good_state(3))), "invalid")
  eq((br:decide(good_state(5, { primary = { id = "iad", passed = false, completed = true } }))), "invalid")
  eq(br:min_perspectives("2026-12-14"), 4)
  eq(br:min_perspectives("2026-12-15"), 5)
  local _, _, info = br:decide(good_state(4))
  eq(info.quorum, "4/5")
end)

case("br_policy_check_config_refusals", function()
  local br = assert(policy.load(POLICIES .. "/br.lua"))
  local okv, why = br:check_config(registry(), { perspective_count = 4 }, "2026-12-15")
  eq(okv, nil)
  contains(why, "invalid-perspective-count")
  ok(br:check_config(registry(), { perspective_count = 4 }, "2026-12-14"))
  local reg = registry()
  reg[#reg + 1] = P("cdg", "RIPE", 49.0, 2.55)
  reg[#reg + 1] = P("phl", "ARIN", 39.95, -75.17)
  okv, why = br:check_config(reg, { perspective_count = 5 }, "2026-12-16")
  eq(okv, nil)
  contains(why, '"phl"')
  okv, why = br:check_config(
    { P("a", "RIPE", 50.11, 8.68), P("b", "RIPE", 59.33, 18.07) },
    { perspective_count = 5 },
    "2026-12-16"
  )
  eq(okv, nil)
  contains(why, "too few")
end)

case("strict_policy_requires_every_remote", function()
  local strict = assert(policy.load(POLICIES .. "/strict.lua"))
  eq(strict.name, "strict")
  eq((strict:decide(good_state(5))), "valid")
  local v, why = strict:decide(good_state(4))
  eq(v, "invalid")
  contains(why, "5 required")
  local s = good_state(5)
  s.quorum = 2
  eq((strict:decide(s)), "invalid")
  -- Two RIRs still needed with full agreement.
  s = good_state(5)
  for _, r in ipairs(s.remotes) do
    r.rir = "APNIC"
  end
  eq((strict:decide(s)), "invalid")
end)

case("primary_first_policy_declares_itself_and_needs_a_primary", function()
  local pf = assert(policy.load(POLICIES .. "/primary_first.lua"))
  eq(pf.primary_first, true)
  local reg = registry()
  ok(pf:check_config(reg, { perspective_count = 5 }, "2026-12-16"))
  reg[1].is_primary = false
  local okv, why = pf:check_config(reg, { perspective_count = 5 }, "2026-12-16")
  eq(okv, nil)
  contains(why, "primary")
  eq((pf:decide(good_state(5, { primary = { id = "iad", passed = true, completed = true } }))), "valid")
  eq((pf:decide(good_state(5))), "invalid")
  local s = good_state(4, { primary = { id = "iad", done = false } })
  local v, why2 = pf:decide(s)
  eq(v, "invalid")
  contains(why2, "before the primary passed")
  for _, r in ipairs(s.remotes) do
    r.done = false
  end
  eq((pf:decide(s)), "undecided")
  eq((pf:decide(good_state(5, { primary = { id = "iad", passed = false, completed = true } }))), "invalid")
end)

case("policy_file_hash_is_recorded", function()
  local br = assert(policy.load(POLICIES .. "/br.lua"))
  ok(type(br.sha256) == "string" and #br.sha256 == 64, "hex sha256")
end)
