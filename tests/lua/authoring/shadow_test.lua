-- Shadow policies: judged on every validation beside the live one, written
-- to the audit log and counted, never part of the answer.
local T = require "mpic.testing"
local explain = require "mpic.cmd.explain"
local util = require "mpic.core.util"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

-- A new quorum rule, as a policy author would write it: br.lua's rules, but
-- the corroborating remotes must span three RIRs.
local THREE_RIRS = [[
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"
return {
  name = "three_rirs",
  select = function(registry, _, count, attempt, rng) return cohorts.pick(registry, count, attempt, rng) end,
  decide = function(state)
    return quorum.evaluate(state, { min_rirs = function() return 3 end })
  end,
}
]]

local write = T.write_file

local function read_lines(path)
  local out = {}
  for l in io.lines(path) do
    out[#out + 1] = assert(util.json_decode(l))
  end
  return out
end

local function setup()
  local pol = os.tmpname() .. ".lua"
  write(pol, THREE_RIRS)
  local audit = os.tmpname()
  os.remove(audit)
  local cfg = T.config {
    defaults = { perspective_count = 5, max_attempts = 1 },
    audit = { path = audit, fsync = true },
    shadow_policies = { "policies/strict.lua", pol },
    -- remotes: two ARIN, two RIPE, one APNIC
    perspectives = {
      { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
      { id = "pdx", rir = "ARIN", location = { lat = 45.52, lon = -122.68 } },
      { id = "yyc", rir = "ARIN", location = { lat = 51.05, lon = -114.07 } },
      { id = "fra", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
      { id = "mad", rir = "RIPE", location = { lat = 40.42, lon = -3.70 } },
      { id = "sgp", rir = "APNIC", location = { lat = 1.35, lon = 103.82 } },
    },
  }
  return cfg, audit, pol
end

case("shadow_verdicts_go_to_the_audit_log_not_the_answer", function()
  local cfg, audit, pol = setup()
  -- sgp (the only APNIC remote) fails: br says valid (4/5 in ARIN and RIPE),
  -- strict says invalid (5 required), three_rirs says invalid (2 RIRs)
  local r = T.scenario { config = cfg, date = "2026-12-16", outcomes = { ["*"] = "pass", sgp = "fail" } }
  local lines = read_lines(audit)
  os.remove(audit)
  os.remove(pol)
  eq(#lines, 1)
  local line = lines[1]
  eq(line.is_valid, true)
  eq(r.is_valid, true)
  eq(r.response.shadow, nil)
  eq(#line.shadow, 2)
  eq(line.shadow[1].policy:match("[^/]+$"), "strict.lua")
  eq(line.shadow[1].verdict, "invalid")
  contains(line.shadow[1].reason, "5 required")
  eq(line.shadow[2].policy, pol)
  eq(line.shadow[2].verdict, "invalid")
  contains(line.shadow[2].reason, "RIR")
  ok(
    type(line.shadow[2].policy_sha256) == "string" and #line.shadow[2].policy_sha256 == 64,
    "shadow policy hash logged"
  )
  local text = explain.audit_line(line)
  contains(text, "(DISAGREES with live)")
  contains(text, "rir-diversity")
end)

case("shadow_agrees_when_every_remote_passes", function()
  local cfg, audit, pol = setup()
  T.scenario { config = cfg, date = "2026-12-16", outcomes = { ["*"] = "pass" } }
  local r2 = T.scenario { config = cfg, date = "2026-12-16", outcomes = { ["*"] = "pass", fra = "fail" } }
  local lines = read_lines(audit)
  os.remove(audit)
  os.remove(pol)
  eq(#lines, 2)
  eq(lines[1].shadow[1].verdict, "valid")
  eq(lines[1].shadow[2].verdict, "valid")
  -- one RIPE failure: br valid, strict invalid, three RIRs still met (ARIN, RIPE, APNIC)
  eq(r2.is_valid, true)
  eq(lines[2].shadow[1].verdict, "invalid")
  eq(lines[2].shadow[2].verdict, "valid")
end)

case("shadow_counters_count_verdicts_and_disagreements", function()
  local metrics = require "mpic.service.metrics"
  metrics.reset()
  metrics.shadow({ { policy = "s.lua", verdict = "valid" } }, true)
  metrics.shadow({ { policy = "s.lua", verdict = "invalid" } }, true)
  metrics.shadow({ { policy = "s.lua", verdict = "invalid" } }, false)
  local text = metrics.render()
  contains(text, 'mpic_shadow_verdicts_total{policy="s.lua",verdict="invalid"} 2')
  contains(text, 'mpic_shadow_verdicts_total{policy="s.lua",verdict="valid"} 1')
  contains(text, 'mpic_shadow_disagreements_total{policy="s.lua"} 1')
  metrics.reset()
  eq(metrics.render():find("s.lua", 1, true), nil)
end)

case("shadow_verdicts_reach_the_metrics_through_validate", function()
  local metrics = require "mpic.service.metrics"
  metrics.reset()
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
    shadow = { "policies/strict.lua" },
  }
  eq(r.is_valid, true)
  -- the service hands validate's third value to the metrics (serve.lua)
  eq(r.extra.shadow, r.shadow)
  metrics.validation(r.response, r.status, T.request {}, r.extra.shadow)
  contains(metrics.render(), 'mpic_shadow_verdicts_total{policy="' .. r.shadow[1].policy .. '",verdict="valid"} 1')
  contains(metrics.render(), 'mpic_shadow_disagreements_total{policy="' .. r.shadow[1].policy .. '"} 0')
  metrics.reset()
end)
