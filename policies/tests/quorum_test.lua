-- Quorum table, phase-in, the requested quorum_count rule and early decision
-- (mpic.quorum, the evaluation every shipped policy uses).
local T = require "mpic.testing"
local quorum = require "mpic.quorum"
local case, eq, ok = T.case, T.eq, T.ok

local RIRS = { "ARIN", "RIPE", "APNIC", "LACNIC", "AFRINIC" }

-- n remotes in rotating RIRs; the last `failed` fail, `pending` before them
-- are not done yet.
local function state(n, failed, opts)
  opts = opts or {}
  local remotes = {}
  local pending = opts.pending or 0
  for i = 1, n do
    local r = {
      id = "r" .. i,
      rir = (opts.rirs and opts.rirs[i]) or RIRS[(i - 1) % #RIRS + 1],
      passed = true,
      completed = true,
      done = true,
    }
    if i > n - failed then
      r.passed, r.completed = false, opts.completed_failures ~= false
    elseif i > n - failed - pending then
      r.passed, r.completed, r.done = false, false, false
    end
    remotes[i] = r
  end
  return {
    primary = opts.primary,
    remotes = remotes,
    count = n,
    quorum = opts.quorum,
    date = opts.date or "2025-10-01",
  }
end

-- Expected verdicts, written out from the BR 3.2.2.9 table (REFERENCE 1.3):
-- index f+1 = verdict with f non-corroborating remotes.
local EXPECTED = {
  [2] = { "valid", "valid", "invalid" },
  [3] = { "valid", "valid", "invalid", "invalid" },
  [4] = { "valid", "valid", "invalid", "invalid" },
  [5] = { "valid", "valid", "invalid", "invalid" },
  [6] = { "valid", "valid", "valid", "invalid" },
  [7] = { "valid", "valid", "valid", "invalid" },
  [8] = { "valid", "valid", "valid", "invalid" },
}

case("quorum_table_2_to_8_remotes_with_0_to_3_failures", function()
  for n = 2, 8 do
    for f = 0, math.min(3, n) do
      local want = EXPECTED[n][f + 1]
      local got, why = quorum.evaluate(state(n, f))
      eq(got, want, string.format("n=%d failures=%d (%s)", n, f, why))
    end
  end
end)

case(
  "quorum_required_corroborations_per_size",
  function()
    eq({
      quorum.required(2),
      quorum.required(3),
      quorum.required(4),
      quorum.required(5),
      quorum.required(6),
      quorum.required(7),
      quorum.required(8),
    }, { 1, 2, 3, 4, 4, 5, 6 })
  end
)

case("quorum_errors_count_as_non_corroboration", function()
  -- Timeouts (completed=false) count like failures.
  eq((quorum.evaluate(state(5, 2, { completed_failures = false }))), "invalid")
  local v, _, info = quorum.evaluate(state(6, 2, { completed_failures = false }))
  eq(v, "valid")
  eq(info.errors, 2)
end)

case("quorum_info_reports_k_of_n_and_passed_rirs", function()
  local v, why, info = quorum.evaluate(state(5, 1, { date = "2026-12-16" }))
  eq(v, "valid")
  eq(info.quorum, "4/5")
  eq(info.passed_rirs, { "APNIC", "ARIN", "LACNIC", "RIPE" })
  eq(info.first_failure, "r5")
  T.contains(why, "4/5")
end)

case("rir_rule_single_rir_passes_are_invalid", function()
  local s = state(5, 0, { rirs = { "ARIN", "ARIN", "ARIN", "ARIN", "RIPE" }, date = "2026-12-16" })
  s.remotes[5].passed = false -- quorum 4/5 met, but all passes in ARIN
  local v, why = quorum.evaluate(s)
  eq(v, "invalid")
  T.contains(why, "RIR")
end)

case("rir_rule_ripe_ncc_and_ripe_are_one_rir", function()
  local s = state(3, 1, { rirs = { "RIPE", "ripe ncc", "ARIN" } })
  local v = quorum.evaluate(s)
  eq(v, "invalid")
  eq(quorum.normalize_rir(" Ripe  NCC "), "RIPE")
  eq(quorum.normalize_rir("afrinic"), "AFRINIC")
  eq(quorum.normalize_rir("EU"), nil)
end)

case("rir_rule_two_rirs_among_passes_is_valid", function()
  local s = state(5, 1, { rirs = { "ARIN", "ARIN", "ARIN", "RIPE", "APNIC" }, date = "2026-12-16" })
  eq((quorum.evaluate(s)), "valid") -- passes: ARIN x3, RIPE
end)

case("rir_rule_not_applied_to_two_remote_cohorts", function()
  local s = state(2, 1, { rirs = { "ARIN", "ARIN" } })
  eq((quorum.evaluate(s)), "valid")
end)

case("primary_failure_is_invalid_immediately", function()
  local s = state(5, 0, { pending = 5, primary = { id = "p", passed = false, completed = true }, date = "2026-12-16" })
  local v, why, info = quorum.evaluate(s)
  eq(v, "invalid")
  T.contains(why, "primary")
  eq(info.primary, "failed")
end)

case("primary_pending_keeps_full_quorum_undecided", function()
  local s = state(5, 0, { primary = { id = "p", done = false }, date = "2026-12-16" })
  eq((quorum.evaluate(s)), "undecided")
  s.primary = { id = "p", passed = true, completed = true }
  eq((quorum.evaluate(s)), "valid")
end)

case("early_decision_valid_as_soon_as_certain", function()
  -- 4 of 5 passed in 2 RIRs, one still running: already valid.
  local v = quorum.evaluate(state(5, 0, { pending = 1, date = "2026-12-16" }))
  eq(v, "valid")
end)

case("early_decision_invalid_as_soon_as_impossible", function()
  -- 2 of 5 failed, 3 running: at most 3 can pass, 4 required.
  local v, why = quorum.evaluate(state(5, 2, { pending = 3, date = "2026-12-16" }))
  eq(v, "invalid")
  T.contains(why, "cannot be met")
  -- 3 of 6 failed, 3 running.
  eq((quorum.evaluate(state(6, 3, { pending = 3 }))), "invalid")
end)

case("early_decision_invalid_when_rir_diversity_impossible", function()
  -- Passes so far all ARIN; the only other RIR has failed; the one pending is ARIN.
  local s = state(5, 1, { pending = 1, rirs = { "ARIN", "ARIN", "ARIN", "ARIN", "RIPE" }, date = "2026-12-16" })
  local v, why = quorum.evaluate(s)
  eq(v, "invalid")
  T.contains(why, "RIR")
end)

case("early_decision_undecided_otherwise", function()
  eq((quorum.evaluate(state(5, 1, { pending = 2, date = "2026-12-16" }))), "undecided")
  eq((quorum.evaluate(state(5, 0, { pending = 5, date = "2026-12-16" }))), "undecided")
  -- Quorum met but all in ARIN, a RIPE still pending: undecided, then valid.
  local s = state(5, 0, { pending = 1, rirs = { "ARIN", "ARIN", "ARIN", "ARIN", "RIPE" }, date = "2026-12-16" })
  s.remotes[4].done, s.remotes[4].passed = true, true
  s.remotes[5].done = false
  eq((quorum.evaluate(s)), "undecided")
  s.remotes[5].done, s.remotes[5].passed = true, true
  eq((quorum.evaluate(s)), "valid")
end)

case("phase_in_minimum_by_date", function()
  eq(quorum.min_remotes("2026-12-14"), 4)
  eq(quorum.min_remotes("2026-12-15"), 5)
  eq(quorum.min_remotes("2026-06-14"), 3)
  eq(quorum.min_remotes("2026-06-15"), 4)
  eq(quorum.min_remotes("2026-03-14"), 2)
  eq(quorum.min_remotes("2026-03-15"), 3)
  eq(quorum.min_remotes("2025-09-15"), 2)
  eq(quorum.min_remotes("2030-01-01"), 5)
  eq(quorum.min_remotes("2026-13-01"), nil)
  eq(quorum.min_remotes("20261215"), nil)
  eq(quorum.min_remotes(nil), nil)
end)

case("phase_in_four_remotes_invalid_from_2026_12_15", function()
  eq((quorum.evaluate(state(4, 0, { date = "2026-12-14" }))), "valid")
  local v, why = quorum.evaluate(state(4, 0, { date = "2026-12-15" }))
  eq(v, "invalid")
  T.contains(why, "invalid-perspective-count")
  eq((quorum.evaluate(state(5, 0, { date = "2026-12-15" }))), "valid")
end)

case("requested_quorum_count_open_mpic_rule", function()
  ok(quorum.check_requested(5, 4))
  ok(quorum.check_requested(5, 5))
  eq(quorum.check_requested(5, 3), nil)
  eq(quorum.check_requested(5, 0), nil)
  ok(quorum.check_requested(2, 1))
  ok(quorum.check_requested(6, 4))
  eq(quorum.check_requested(6, 3), nil)
  ok(quorum.check_requested(8, 6))
  eq(quorum.check_requested(8, 5), nil)
  eq(quorum.check_requested(8, 9), nil)
  eq(quorum.check_requested(5, 4.5), nil)
end)

case("requested_quorum_uses_max_of_requested_and_table", function()
  eq(quorum.effective(6, 5), 5)
  eq(quorum.effective(6, nil), 4)
  -- n=6, q=5: 4 passes are no longer enough.
  local v = quorum.evaluate(state(6, 2, { quorum = 5 }))
  eq(v, "invalid")
  eq((quorum.evaluate(state(6, 1, { quorum = 5 }))), "valid")
  local v2, why2 = quorum.evaluate(state(5, 0, { quorum = 3 }))
  eq(v2, "invalid")
  T.contains(why2, "invalid-quorum-count")
end)

case("malformed_state_fails_closed", function()
  eq((quorum.evaluate(nil)), "invalid")
  eq((quorum.evaluate({ remotes = "x", date = "2026-12-16" })), "invalid")
  local s = state(5, 0, { date = "2026-12-16" })
  s.remotes[2].passed = "yes"
  local v, why = quorum.evaluate(s)
  eq(v, "invalid")
  T.contains(why, "malformed")
  s = state(5, 0, { date = "2026-12-16" })
  s.remotes[3].rir = "MARS"
  eq((quorum.evaluate(s)), "invalid")
  s = state(5, 0, { date = "2026-12-16" })
  s.remotes[2].id = "r1"
  eq((quorum.evaluate(s)), "invalid")
  s = state(5, 0, { date = "2026-12-16" })
  s.count = 6
  eq((quorum.evaluate(s)), "invalid")
  eq((quorum.evaluate({ remotes = {}, date = "2026-12-16" })), "invalid")
  s = state(5, 0)
  s.date = nil
  eq((quorum.evaluate(s)), "invalid")
end)
