-- quorum.evaluate keeps the RIRs it sees as bits: the passed RIRs come out
-- sorted by name, the possible ones counted, aliases folded, and an RIR
-- name added to quorum.RIRS still counts.
local T = require "mpic.testing"
local quorum = require "mpic.quorum"
local case, eq = T.case, T.eq

local function state(rirs, passed, done)
  local st = { primary = { id = "p", passed = true, done = true }, remotes = {}, date = "2026-07-01" }
  for i, r in ipairs(rirs) do
    st.remotes[i] = { id = "r" .. i, rir = r, passed = passed[i], completed = true, done = done == nil or done[i] }
  end
  return st
end

case("passed_rirs_sorted_and_possible_counted", function()
  local _
  local v, why, info = quorum.evaluate(
    state({ "RIPE", "arin", "ripe ncc", "LACNIC", "APNIC", "AFRINIC" }, { true, true, true, true, true, false })
  )
  eq(v, "valid")
  eq(info.passed_rirs, { "APNIC", "ARIN", "LACNIC", "RIPE" })
  eq(info.possible_rirs, 4)
  eq(why, "quorum met: 5/6 corroborated (4 required) in 4 RIRs (APNIC, ARIN, LACNIC, RIPE)")
  -- pending remotes count as possible, failed ones do not
  v, _, info = quorum.evaluate(
    state(
      { "RIPE", "RIPE", "RIPE", "RIPE", "ARIN", "APNIC" },
      { true, true, true, true, false, false },
      { true, true, true, true, true, false }
    )
  )
  eq(v, "undecided")
  eq(info.passed_rirs, { "RIPE" })
  eq(info.possible_rirs, 2)
  -- one RIR only among those that can still corroborate
  v, _, info = quorum.evaluate(
    state({ "RIPE", "RIPE", "RIPE", "RIPE", "ARIN", "APNIC" }, { true, true, true, true, false, false })
  )
  eq(v, "invalid")
  eq(info.rule, "rir-diversity")
  eq(info.possible_rirs, 1)
end)

case("an_added_rir_name_counts_too", function()
  quorum.RIRS.ZZNIC = true
  local ok, err = pcall(function()
    local v, _, info = quorum.evaluate(
      state({ "ZZNIC", "RIPE", "RIPE", "RIPE", "RIPE", "RIPE" }, { true, true, true, true, true, false })
    )
    eq(v, "valid")
    eq(info.passed_rirs, { "RIPE", "ZZNIC" })
    eq(info.possible_rirs, 2)
    v, _, info = quorum.evaluate(
      state(
        { "ZZNIC", "RIPE", "RIPE", "RIPE", "RIPE", "AFRINIC" },
        { false, true, true, true, true, false },
        { false, true, true, true, true, true }
      )
    )
    eq(info.passed_rirs, { "RIPE" })
    eq(info.possible_rirs, 2)
    eq(v, "undecided")
  end)
  quorum.RIRS.ZZNIC = nil
  assert(ok, err)
  -- and once removed it is unknown again
  eq({ quorum.normalize_rir("ZZNIC") }, { nil, 'unknown RIR "ZZNIC"' })
end)
