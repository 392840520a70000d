-- policies/primary_first.lua through whole validations with scripted
-- outcomes: the remotes are contacted only after the primary passed.
local T = require "mpic.testing"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function run(outcomes, policy)
  return T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 3000 } },
    policy = policy or "policies/primary_first.lua",
    date = "2026-12-16",
    outcomes = outcomes,
  }
end

case("primary_first_failed_primary_contacts_no_remote", function()
  local r = run({ ["*"] = "pass", primary = { fail = "no TXT record" } })
  eq(r.is_valid, false)
  eq(r.contacted, { "primary" })
  contains(r.reason, "primary perspective primary failed")
  for _, p in ipairs(r.response.perspectives) do
    contains(p.check_response.errors[1].error_message, "not contacted")
  end
end)

case("primary_first_remotes_start_after_a_slow_primary", function()
  local r = run({ ["*"] = "pass", primary = { pass = true, delay_ms = 200 } })
  eq(r.is_valid, true)
  eq(r.contacted[1], "primary")
  eq(#r.contacted, 6)
  ok(r.elapsed_ms >= 190, "waited for the primary: " .. r.elapsed_ms .. " ms")
end)

case("br_without_primary_first_contacts_remotes_at_once", function()
  -- the contrast: br.lua starts every check together, so a failing primary
  -- still costs the remote checks (and is still invalid)
  local r = run({ ["*"] = "pass", primary = { fail = "no TXT record", delay_ms = 50 } }, "policies/br.lua")
  eq(r.is_valid, false)
  ok(#r.contacted > 1, "remotes were contacted")
end)

case("primary_first_one_remote_failure_still_valid", function()
  local r0 = run({ ["*"] = "pass" })
  local first = r0.response.perspectives[1].perspective_code
  local r = run({ ["*"] = "pass", [first] = { error = "refused" } })
  eq(r.is_valid, true)
end)
