-- mpic.select remembers the cohorts of a shuffled pool: the same answers as
-- computing them, the stream read the same, health read from the current
-- records, and a bounded memo.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local case, eq, ok = T.case, T.eq, T.ok

local function fresh_select() return assert(loadfile(assert(package.searchpath("mpic.select", package.path))))() end

local function P(id, rir, lat, lon, extra)
  local e = { id = id, rir = rir, location = { lat = lat, lon = lon }, healthy = true, is_primary = false }
  for k, v in pairs(extra or {}) do
    e[k] = v
  end
  return e
end

local function registry(unhealthy)
  local reg = {
    P("iad", "ARIN", 39.0, -77.5, { is_primary = true }),
    P("fra", "RIPE", 50.1109, 8.6821),
    P("par", "RIPE NCC", 48.8566, 2.3522),
    P("lon", "ripe", 51.5074, -0.1278),
    P("sto", "RIPE", 59.3293, 18.0686),
    P("sgp", "APNIC", 1.3521, 103.8198),
    P("tyo", "APNIC", 35.6762, 139.6503),
    P("syd", "APNIC", -33.8688, 151.2093),
    P("gru", "LACNIC", -23.5505, -46.6333),
    P("jnb", "AFRINIC", -26.2041, 28.0473),
    P("sfo", "ARIN", 37.7749, -122.4194),
  }
  for _, e in ipairs(reg) do
    if unhealthy and unhealthy[e.id] then e.healthy = false end
  end
  return reg
end

-- pick with a module, then read one more word of the stream
local function pick(sel, target, k, attempt, reg)
  local rng = sel.new_rng(util.sha256("s" .. target))
  local ids, idx = sel.pick(reg or registry(), k, attempt, rng)
  return { ids = ids, idx = idx, next = rng:int(1000) }
end

case("remembered_cohorts_equal_computed_ones", function()
  local memo = fresh_select()
  for i = 1, 150 do
    local target = "t" .. i .. ".example"
    for _, k in ipairs({ 2, 3, 4, 5 }) do
      local attempt = i % 3 + 1
      local first = pick(memo, target, k, attempt)
      local again = pick(memo, target, k, attempt) -- from the memo
      local computed = pick(fresh_select(), target, k, attempt)
      eq(first, computed)
      eq(again, computed)
    end
  end
  ok(memo.cohort_memo_size() > 0, "the memo is used")
end)

case("a_remembered_cohort_reads_health_now", function()
  local sel = fresh_select()
  local a = pick(sel, "health.example", 4, 1)
  ok(a.ids, "a cohort")
  -- one of its members is now unhealthy: the same pool, another cohort
  local b = pick(sel, "health.example", 4, 1, registry({ [a.ids[1]] = true }))
  ok(b.ids and b.idx ~= a.idx, "another cohort")
  for _, id in ipairs(b.ids) do
    ok(id ~= a.ids[1], "the unhealthy member is not picked")
  end
  eq(b, pick(fresh_select(), "health.example", 4, 1, registry({ [a.ids[1]] = true })))
end)

case("a_remembered_failure_is_the_same_failure", function()
  local sel = fresh_select()
  local reg = {
    P("iad", "ARIN", 39.0, -77.5, { is_primary = true }),
    P("fra", "RIPE", 50.1, 8.7),
    P("par", "RIPE", 48.9, 2.4),
  }
  local r1 = { sel.pick(reg, 2, 1, sel.new_rng("x")) }
  local r2 = { sel.pick(reg, 2, 1, sel.new_rng("x")) }
  eq(r1[1], nil)
  eq(r2, r1)
  eq(r1, { fresh_select().pick(reg, 2, 1, fresh_select().new_rng("x")) })
end)

case("the_memo_is_bounded", function()
  local sel = fresh_select()
  sel.COHORT_MEMO_MAX = 8
  for i = 1, 100 do
    pick(sel, "b" .. i .. ".example", 3, 1)
  end
  ok(sel.cohort_memo_size() <= 8, "at most 8 entries, got " .. sel.cohort_memo_size())
end)

case("remembered_rir_names_and_dates_answer_as_before", function()
  local quorum = require "mpic.quorum"
  for _ = 1, 2 do -- the second round is answered from the memo
    eq({ quorum.normalize_rir(" ripe  ncc ") }, { "RIPE" })
    eq({ quorum.normalize_rir("Apnic") }, { "APNIC" })
    eq({ quorum.normalize_rir("MARS") }, { nil, 'unknown RIR "MARS"' })
    eq({ quorum.normalize_rir(42) }, { nil, "rir is not a string" })
    eq({ quorum.check_date("2026-12-15") }, { true })
    eq({ quorum.check_date("2026-13-01") }, { nil, 'malformed date "2026-13-01" (month or day out of range)' })
    eq({ quorum.check_date("tomorrow") }, { nil, 'malformed date "tomorrow" (want YYYY-MM-DD)' })
    eq(quorum.min_remotes("2026-12-15"), 5)
  end
  -- many distinct names: the answers stay right past the memo's bound
  for i = 1, 600 do
    eq({ quorum.normalize_rir("x" .. i) }, { nil, 'unknown RIR "x' .. i .. '"' })
  end
  eq({ quorum.normalize_rir("arin") }, { "ARIN" })
end)
