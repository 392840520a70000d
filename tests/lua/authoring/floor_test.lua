-- The floor under every policy: the BR table (primary passed, the remote
-- quorum, two RIRs, the phase-in minimum) refuses a "valid" it does not
-- allow, whatever the policy answered; a lab lowers it only explicitly.
-- check-config refuses a policy that answers valid when everything failed,
-- and holds shadow policies to the same checks; a shadow policy that does
-- not load is reported and skipped, never blocking the live answer.
local T = require "mpic.testing"
local checks = require "mpic.checks"
local perspectives = require "mpic.perspectives"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function write(text)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(text)
  f:close()
  return path
end

-- A policy with no rule at all: every state is "valid".
local ALWAYS_VALID = [[
local cohorts = require "mpic.select"
return {
  name = "always_valid",
  select = function(registry, _, count, attempt, rng) return cohorts.pick(registry, count, attempt, rng) end,
  decide = function() return "valid", "looks fine to me", {} end,
}
]]

-- Valid as soon as one remote passed: looser than the BR table.
local ONE_IS_ENOUGH = [[
local cohorts = require "mpic.select"
return {
  name = "one_is_enough",
  select = function(registry, _, count, attempt, rng) return cohorts.pick(registry, count, attempt, rng) end,
  decide = function(state)
    for _, r in ipairs(state.remotes) do
      if r.passed then return "valid", "one remote passed", {} end
    end
    return "undecided", "", {}
  end,
}
]]

local function cfg(t)
  t = t or {}
  t.defaults = t.defaults or { perspective_count = 5, max_attempts = 1, timeout_ms = 2000 }
  return T.config(t)
end

case("floor_refuses_valid_when_every_perspective_failed", function()
  local pol = write(ALWAYS_VALID)
  local r = T.scenario { config = cfg(), policy = pol, date = "2026-12-16", outcomes = { ["*"] = "fail" } }
  os.remove(pol)
  eq(r.status, 200)
  eq(r.is_valid, false, r.reason)
  eq(r.verdict, "invalid")
  contains(r.reason, "policy floor:")
  contains(r.reason, "primary perspective primary failed")
  eq(r.audit.is_valid, false)
  eq(r.audit.rule, "policy-floor")
  eq(r.response.mpic_decision.rule, "policy-floor")
end)

case("floor_refuses_a_valid_below_the_remote_quorum", function()
  local pol = write(ALWAYS_VALID)
  -- primary passes, 3 of 5 remotes fail: the BR table needs 4 of 5
  local r = T.scenario {
    config = cfg(),
    policy = pol,
    date = "2026-12-16",
    outcomes = { primary = "pass", ["*"] = "fail", pdx = "pass", fra = "pass", sgp = "pass" },
  }
  os.remove(pol)
  eq(r.is_valid, false, r.reason)
  contains(r.reason, "policy floor:")
end)

case("floor_waits_when_the_policy_says_valid_too_early", function()
  local pol = write(ONE_IS_ENOUGH)
  -- every check passes, the later ones 50 ms later: the policy says valid
  -- on the first, the floor waits for the BR quorum, then it is valid
  local r = T.scenario {
    config = cfg(),
    policy = pol,
    date = "2026-12-16",
    outcomes = { primary = "pass", pdx = "pass", ["*"] = { pass = true, delay_ms = 50 } },
  }
  os.remove(pol)
  eq(r.is_valid, true, r.reason)
  eq(r.reason, "one remote passed")
  ok(#r.contacted >= 5, "the floor waited for the quorum")
end)

case("floor_holds_when_the_policy_is_stricter", function()
  local r = T.scenario {
    config = cfg(),
    policy = "policies/strict.lua",
    date = "2026-12-16",
    outcomes = { ["*"] = "pass", sgp = "fail" },
  }
  eq(r.is_valid, false)
  contains(r.reason, "quorum cannot be met")
end)

case("lab_setting_lowers_the_floor_explicitly", function()
  local pol = write(ALWAYS_VALID)
  local r = T.scenario {
    config = cfg { lab = { policy_floor = false } },
    policy = pol,
    date = "2026-12-16",
    outcomes = { ["*"] = "fail" },
  }
  os.remove(pol)
  eq(r.is_valid, true, r.reason)
  eq(r.reason, "looks fine to me")
end)

case("lab_setting_is_checked_by_the_schema", function()
  T.raises(function() cfg { lab = { policy_floor = "no" } } end, "lab.policy_floor: expected boolean")
  T.raises(function() cfg { lab = { floor = false } } end, "lab.floor: unknown key")
end)

case("shadow_verdicts_stand_on_the_floor_too", function()
  local pol = write(ALWAYS_VALID)
  local r = T.scenario { config = cfg(), shadow = { pol }, date = "2026-12-16", outcomes = { ["*"] = "fail" } }
  os.remove(pol)
  eq(r.is_valid, false)
  eq(#r.shadow, 1)
  eq(r.shadow[1].verdict, "invalid")
  contains(r.shadow[1].reason, "policy floor:")
end)

-- checks.all for a configuration, as `mpic check-config` runs it
-- (the test resolvers are on loopback: the lab switch stands in for the
-- primary's DNSSEC proof, which is not what these cases are about)
local function check(c)
  c.network.allow_reserved_ips = true
  local prev = perspectives.config()
  perspectives.configure(c)
  local okc, text = checks.all(c)
  if prev then perspectives.configure(prev) end
  require("mpic.orchestrator").reset()
  return okc, text
end

case("check_config_refuses_a_policy_valid_on_all_fail", function()
  local pol = write(ALWAYS_VALID)
  local okc, why = check(cfg { policy = pol })
  eq(okc, nil)
  contains(why, 'answers "valid" when the primary and all 5 remotes failed')
  -- a lab that lowered the floor is warned, not refused
  local okl, text = check(cfg { policy = pol, lab = { policy_floor = false } })
  os.remove(pol)
  eq(okl, true, text)
  contains(text, "lab.policy_floor is false")
  -- the shipped policies pass
  for _, p in ipairs({ "policies/br.lua", "policies/strict.lua", "policies/three_rir.lua" }) do
    local okp, ptext = check(cfg { policy = p })
    eq(okp, true, ptext)
  end
end)

case("check_config_runs_the_shadow_policies_checks", function()
  local refusing = write([[
local cohorts = require "mpic.select"
return {
  name = "refusing",
  check_config = function() return nil, "needs a perspective in Antarctica" end,
  select = function(registry, _, count, attempt, rng) return cohorts.pick(registry, count, attempt, rng) end,
  decide = function() return "invalid", "never" end,
}
]])
  local okc, why = check(cfg { shadow_policies = { refusing } })
  os.remove(refusing)
  eq(okc, nil)
  contains(why, "shadow policy " .. refusing .. " refuses this configuration")
  contains(why, "needs a perspective in Antarctica")
  local valid = write(ALWAYS_VALID)
  okc, why = check(cfg { shadow_policies = { valid } })
  os.remove(valid)
  eq(okc, nil)
  contains(why, "shadow policy " .. valid .. ' answers "valid"')
  local good, text = check(cfg { shadow_policies = { "policies/strict.lua" } })
  eq(good, true, text)
  contains(text, "shadow policy strict")
end)

case("a_shadow_that_does_not_load_is_reported_and_skipped", function()
  local broken = write("return {")
  local audit = os.tmpname()
  local r = T.scenario {
    config = cfg { audit = { path = audit, fsync = false }, shadow_policies = { broken, "policies/strict.lua" } },
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
  }
  eq(r.status, 200, r.reason)
  eq(r.is_valid, true)
  -- the one that loads still judges; the broken one is named in the audit line
  eq(#r.shadow, 1)
  eq(r.shadow[1].policy:match("[^/]+$"), "strict.lua")
  eq(#r.audit.shadow_errors, 1)
  eq(r.audit.shadow_errors[1].policy, broken)
  contains(r.audit.shadow_errors[1].error, broken)
  contains(require("mpic.cmd.explain").audit_line(r.audit), "not loaded")
  local okc, why = check(cfg { shadow_policies = { broken } })
  os.remove(broken)
  os.remove(audit)
  eq(okc, nil)
  contains(why, "shadow policy " .. broken)
end)
