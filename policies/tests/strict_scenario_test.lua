-- policies/strict.lua through whole validations with scripted outcomes:
-- every selected remote must corroborate.
local T = require "mpic.testing"
local case, eq, contains = T.case, T.eq, T.contains

local function run(outcomes, count)
  return T.scenario {
    config = T.config { defaults = { perspective_count = count or 5, max_attempts = 1, timeout_ms = 3000 } },
    policy = "policies/strict.lua",
    date = "2026-12-16",
    outcomes = outcomes,
  }
end

case("strict_all_pass_is_valid", function()
  local r = run({ ["*"] = "pass" })
  eq(r.is_valid, true)
  eq(r.audit.quorum, "5/5")
  eq(r.audit.policy:match("[^/]+$"), "strict.lua")
end)

case("strict_one_failure_is_invalid", function()
  local r0 = run({ ["*"] = "pass" })
  local first = r0.response.perspectives[1].perspective_code
  local r = run({ ["*"] = "pass", [first] = { fail = "stale record" } })
  eq(r.is_valid, false)
  contains(r.reason, "5 required")
end)

case("strict_one_timeout_is_invalid_and_not_completed", function()
  local r0 = run({ ["*"] = "pass" }, 6)
  local first = r0.response.perspectives[1].perspective_code
  local r = run({ ["*"] = "pass", [first] = { timeout_ms = 200 } }, 6)
  eq(r.is_valid, false)
  eq(r.response.perspectives[1].check_response.check_completed, false)
end)

case("strict_requested_quorum_cannot_lower_the_bar", function()
  local r0 = run({ ["*"] = "pass" })
  local first = r0.response.perspectives[1].perspective_code
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    policy = "policies/strict.lua",
    date = "2026-12-16",
    outcomes = { ["*"] = "pass", [first] = "fail" },
    request = T.request { orchestration_parameters = { quorum_count = 4 } },
  }
  eq(r.status, 200)
  eq(r.is_valid, false)
end)
