-- mpic.testing's scenario API itself: scripted outcomes, fail-closed
-- handling of unscripted or malformed outcomes, configuration building and
-- restoring.
local T = require "mpic.testing"
local perspectives = require "mpic.perspectives"
local case, eq, ok, raises, contains = T.case, T.eq, T.ok, T.raises, T.contains

local function cfg(extra)
  local t = { defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 2000 } }
  for k, v in pairs(extra or {}) do
    t[k] = v
  end
  return T.config(t)
end

case("scenario_unscripted_perspective_fails_closed", function()
  local r = T.scenario { config = cfg(), date = "2026-12-16", outcomes = { primary = "pass" } }
  eq(r.is_valid, false)
  ok(#r.unscripted >= 1, "unscripted perspectives are listed")
  contains(r.response.perspectives[1].check_response.errors[1].error_message, "no outcome scripted")
end)

case("scenario_malformed_outcome_fails_the_test_with_the_reason", function()
  -- a mistake in the script is the test's failure, not a check error that a
  -- "not valid" expectation would silently accept (scenario_strict_test.lua)
  local err = raises(
    function() T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = { passs = true } } } end
  )
  contains(err, 'unknown key "passs"')
end)

case("scenario_outcome_lists_are_used_one_per_call", function()
  -- attempt 1: every remote fails; attempt 2: every remote passes
  local r = T.scenario {
    config = cfg({ defaults = { perspective_count = 5, max_attempts = 2 } }),
    date = "2026-12-16",
    outcomes = { primary = "pass", ["*"] = { "fail", "pass" } },
  }
  eq(r.response.actual_orchestration_parameters.attempt_count, 2)
  -- a remote in both cohorts passed in attempt 2 only because its second call says so
  local twice = 0
  for _, n in pairs(r.calls) do
    if n == 2 then twice = twice + 1 end
  end
  ok(twice >= 2, "the primary and at least one remote were called twice")
  eq(r.audit.attempts[1].quorum, "0/5")
end)

case("scenario_check_result_tables_pass_through", function()
  local r = T.scenario {
    config = cfg(),
    date = "2026-12-16",
    outcomes = {
      ["*"] = { passed = true, completed = true, details = { found_at = "example.com" } },
    },
  }
  eq(r.is_valid, true)
  eq(r.response.perspectives[1].check_response.details.found_at, "example.com")
end)

case("scenario_restores_the_previous_configuration", function()
  local before =
    cfg({ perspectives = {
      { id = "a", rir = "ARIN", location = { lat = 0, lon = 0 } },
    }, primary = false })
  perspectives.configure(before)
  T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass" } }
  eq(perspectives.config(), before)
  eq(perspectives.list()[1].id, "a")
end)

case("scenario_reads_a_yaml_config", function()
  local dir = os.tmpname()
  local f = assert(io.open(dir, "w"))
  f:write([[
issuer: {caa_domains: [ca.example]}
audit: {path: ]] .. dir .. [[.audit, fsync: false}
defaults: {perspective_count: 2, max_attempts: 1}
perspectives:
  - {id: fra, rir: RIPE, location: {lat: 50.11, lon: 8.68}, resolvers: ["127.0.0.1:9"]}
  - {id: sgp, rir: APNIC, location: {lat: 1.35, lon: 103.82}, resolvers: ["127.0.0.1:9"]}
]])
  f:close()
  local r = T.scenario { config = dir, date = "2026-01-10", outcomes = { ["*"] = "pass" } }
  os.remove(dir)
  os.remove(dir .. ".audit")
  eq(r.is_valid, true)
  eq(r.response.primary_perspective, nil)
  eq(r.audit.quorum, "2/2")
end)

case("config_reports_every_problem", function()
  local err = raises(function() T.config { defaults = { perspective_count = "five" }, primary = "nowhere" } end)
  contains(err, "defaults.perspective_count")
end)

case("request_defaults_and_overrides", function()
  local r = T.request { domain_or_ip_target = "shop.test" }
  eq(r.domain_or_ip_target, "shop.test")
  eq(r.dcv_check_parameters.validation_method, "acme-dns-01")
end)
