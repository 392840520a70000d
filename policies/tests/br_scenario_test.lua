-- policies/br.lua through whole validations with scripted perspective
-- outcomes (mpic.testing scenarios: no network). The configuration is
-- T.PERSPECTIVES: a primary in Virginia and seven remotes in five RIRs.
local T = require "mpic.testing"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local DATE = "2026-12-16" -- BR minimum: 5 remotes

local function run(outcomes, opts)
  opts = opts or {}
  return T.scenario {
    config = T.config {
      defaults = {
        perspective_count = opts.count or 5,
        max_attempts = opts.attempts or 1,
        timeout_ms = opts.timeout_ms or 3000,
      },
    },
    policy = "policies/br.lua",
    date = opts.date or DATE,
    outcomes = outcomes,
    request = opts.request,
  }
end

-- The ids of the remotes the policy picked, in cohort order.
local function cohort(r)
  local ids = {}
  for i, p in ipairs(r.response.perspectives) do
    ids[i] = p.perspective_code
  end
  return ids
end

case("br_all_pass_is_valid", function()
  local r = run({ ["*"] = "pass" })
  eq(r.status, 200)
  eq(r.is_valid, true)
  eq(#r.response.perspectives, 5)
  eq(r.response.primary_perspective.perspective_code, "primary")
  eq(r.audit.quorum, "5/5")
  eq(r.unscripted, {})
end)

case("br_one_of_five_failing_is_valid", function()
  local first = cohort(run({ ["*"] = "pass" }))[1]
  local r = run({ ["*"] = "pass", [first] = { fail = "wrong TXT value" } })
  eq(r.is_valid, true)
  contains(r.reason, "quorum met: 4/5")
end)

case("br_two_of_five_failing_is_invalid", function()
  local ids = cohort(run({ ["*"] = "pass" }))
  local r = run({ ["*"] = "pass", [ids[1]] = "fail", [ids[2]] = { error = "servfail" } })
  eq(r.is_valid, false)
  contains(r.reason, "quorum cannot be met")
  eq(r.audit.is_valid, false)
end)

case("br_six_remotes_allow_two_failures_not_three", function()
  local ids = cohort(run({ ["*"] = "pass" }, { count = 6 }))
  eq(#ids, 6)
  local two = run({ ["*"] = "pass", [ids[1]] = "fail", [ids[2]] = "fail" }, { count = 6 })
  eq(two.is_valid, true)
  local three = run({ ["*"] = "pass", [ids[1]] = "fail", [ids[2]] = "fail", [ids[3]] = "fail" }, { count = 6 })
  eq(three.is_valid, false)
  contains(three.reason, "4 required")
end)

case("br_primary_failure_is_invalid_whatever_the_remotes", function()
  local r = run({ ["*"] = "pass", primary = { fail = "no TXT record" } })
  eq(r.is_valid, false)
  contains(r.reason, "primary perspective primary failed")
end)

case("br_passes_in_one_rir_are_not_enough", function()
  -- four RIPE remotes (pairwise > 500 km) and one APNIC: the APNIC one fails,
  -- four RIPE passes meet the count but not the two-RIR rule
  local cfg = T.config {
    defaults = { perspective_count = 5, max_attempts = 1 },
    perspectives = {
      { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
      { id = "fra", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
      { id = "mad", rir = "RIPE", location = { lat = 40.42, lon = -3.70 } },
      { id = "sto", rir = "RIPE", location = { lat = 59.33, lon = 18.07 } },
      { id = "ist", rir = "RIPE", location = { lat = 41.01, lon = 28.98 } },
      { id = "sgp", rir = "APNIC", location = { lat = 1.35, lon = 103.82 } },
    },
  }
  local r = T.scenario { config = cfg, date = DATE, outcomes = { ["*"] = "pass", sgp = "fail" } }
  eq(r.is_valid, false)
  contains(r.reason, "RIR")
  eq(r.audit.rule, "rir-diversity")
end)

case("br_decides_early_and_cancels_a_slow_remote", function()
  local first = cohort(run({ ["*"] = "pass" }))[1]
  local r = run({ ["*"] = "pass", [first] = { timeout_ms = 2000 } })
  eq(r.is_valid, true)
  ok(r.elapsed_ms < 1500, "decided in " .. r.elapsed_ms .. " ms, not after the slow remote")
  local slow = r.response.perspectives[1]
  eq(slow.perspective_code, first)
  contains(slow.check_response.errors[1].error_message, "cancelled after outcome decided")
end)

case("br_two_timeouts_make_it_invalid_once_they_time_out", function()
  local ids = cohort(run({ ["*"] = "pass" }))
  local r = run({ ["*"] = "pass", [ids[1]] = { timeout_ms = 300 }, [ids[2]] = { timeout_ms = 300 } })
  eq(r.is_valid, false)
  ok(r.elapsed_ms >= 290, "waited for the timeouts: " .. r.elapsed_ms .. " ms")
  eq(r.response.mpic_completed, false)
end)

case("br_deadline_with_undecided_outcome_is_invalid", function()
  local ids = cohort(run({ ["*"] = "pass" }))
  local function hang()
    mpic.sleep(60000)
    return "pass"
  end
  local r = run({ ["*"] = "pass", [ids[1]] = hang, [ids[2]] = hang }, { timeout_ms = 400 })
  eq(r.is_valid, false)
  ok(r.elapsed_ms >= 390 and r.elapsed_ms < 5000, "ended at the deadline: " .. r.elapsed_ms .. " ms")
  eq(require("mpic.cmd.explain").response_rule(r.response), "deadline")
  contains(require("mpic.cmd.explain").audit_line(r.audit), "decided by: deadline")
end)

case("br_too_few_perspectives_for_the_date_are_refused", function()
  local req = T.request { orchestration_parameters = { perspective_count = 4 } }
  local r = run({ ["*"] = "pass" }, { request = req })
  eq(r.status, 400)
  eq(r.issues[1].issue_type, "invalid-perspective-count")
  -- before the 2026-12-15 step four remotes were enough
  eq(run({ ["*"] = "pass" }, { request = req, date = "2026-07-01" }).is_valid, true)
end)

case("br_configuration_below_the_minimum_is_refused_with_the_reason", function()
  -- a default of 4 remotes cannot satisfy BR 3.2.2.9 on this date: every
  -- validation is refused with the policy's reason (HTTP 500), none decided
  local r = run({ ["*"] = "pass" }, { count = 4 })
  eq(r.status, 500)
  contains(r.response.error, "refuses the configuration")
  contains(r.response.error, "below the BR minimum of 5")
  eq(run({ ["*"] = "pass" }, { count = 4, date = "2026-07-01" }).is_valid, true)
end)

case("br_retry_uses_a_new_cohort_and_never_mixes_attempts", function()
  local attempt = 0
  local outcomes = {
    primary = function()
      attempt = attempt + 1
      return "pass"
    end,
    ["*"] = function() return attempt == 1 and "fail" or "pass" end,
  }
  local r = run(outcomes, { attempts = 2 })
  eq(r.is_valid, true)
  eq(r.response.actual_orchestration_parameters.attempt_count, 2)
  eq(#r.response.previous_attempt_results, 1)
  eq(r.audit.attempts[1].verdict, "invalid")
  eq(r.audit.attempts[2].verdict, "valid")
  eq(r.calls.primary, 2)
end)
