-- policies/three_rir.lua: BR quorum with corroborations from >= 3 RIRs, and
-- its measured resilience (T.simulate over the default model).
local T = require "mpic.testing"
local policy = require "mpic.policy"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local DATE = "2026-12-16"

local function remote(id, rir, passed) return { id = id, rir = rir, passed = passed, completed = true, done = true } end

-- six remotes, four corroborate: fra, sto (RIPE) and sgp, syd (APNIC)
local TWO_RIRS = {
  primary = { id = "primary", passed = true, completed = true, done = true },
  remotes = {
    remote("fra", "RIPE", true),
    remote("sto", "RIPE", true),
    remote("sgp", "APNIC", true),
    remote("syd", "APNIC", true),
    remote("pdx", "ARIN", false),
    remote("gru", "LACNIC", false),
  },
  count = 6,
  date = DATE,
}

case("three_rir_refuses_corroboration_from_two_rirs", function()
  local three = assert(policy.load("policies/three_rir.lua"))
  local br = assert(policy.load("policies/br.lua"))
  eq((br:decide(TWO_RIRS)), "valid")
  local v, why = three:decide(TWO_RIRS)
  eq(v, "invalid")
  contains(why, "3 required")
  TWO_RIRS.remotes[5].passed = true
  eq((three:decide(TWO_RIRS)), "valid")
end)

case("three_rir_all_pass_is_valid", function()
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    policy = "policies/three_rir.lua",
    date = DATE,
    outcomes = { ["*"] = "pass" },
  }
  eq(r.is_valid, true, r.reason)
  ok(#r.audit.passed_rirs >= 3)
end)

case("three_rir_refuses_a_registry_of_two_rirs", function()
  local r = T.scenario {
    config = T.config {
      perspectives = {
        { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
        { id = "pdx", rir = "ARIN", location = { lat = 45.52, lon = -122.68 } },
        { id = "fra", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
        { id = "sto", rir = "RIPE", location = { lat = 59.33, lon = 18.07 } },
        { id = "mad", rir = "RIPE", location = { lat = 40.42, lon = -3.70 } },
        { id = "lax", rir = "ARIN", location = { lat = 34.05, lon = -118.24 } },
      },
      defaults = { perspective_count = 5, max_attempts = 1 },
    },
    policy = "policies/three_rir.lua",
    date = DATE,
    outcomes = { ["*"] = "pass" },
  }
  eq(r.status, 500)
  contains(r.reason, "span 2 RIR(s); three_rir needs 3")
end)

case("three_rir_resilience_against_the_default_model", function()
  local r = T.simulate {
    config = "perspectives.yaml",
    policy = "policies/three_rir.lua",
    trials = 2000,
    seed = "policy-test",
    date = DATE,
  }
  -- accepts under 1% of the regional, RIR-wide and provider-wide hijacks
  for _, kind in ipairs({ "regional", "rir", "provider" }) do
    ok(r.attack[kind].ci95[2] < 0.01, kind .. ": " .. r.attack[kind].share)
  end
  -- and refuses under 10% of legitimate validations with 5% of perspectives down
  ok(r.outage.independent.ci95[2] < 0.10, "independent: " .. r.outage.independent.share)
end)
