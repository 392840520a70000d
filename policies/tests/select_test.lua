-- The seeded random stream and the deterministic cohort algorithm
-- (mpic.select), and the registry checks policies run at start.
local T = require "mpic.testing"
local sel = require "mpic.select"
local geo = require "mpic.geo"
local util = require "mpic.core.util"
local case, eq, ok = T.case, T.eq, T.ok

local sha256 = util.sha256

local function P(id, rir, lat, lon, extra)
  local e = { id = id, rir = rir, location = { lat = lat, lon = lon }, healthy = true, is_primary = false }
  for k, v in pairs(extra or {}) do
    e[k] = v
  end
  return e
end

-- A primary in Ashburn and 14 remotes over 5 RIRs (city-centre coordinates).
local function registry()
  return {
    P("iad", "ARIN", 39.0, -77.5, { is_primary = true }),
    P("fra", "RIPE", 50.1109, 8.6821),
    P("par", "RIPE NCC", 48.8566, 2.3522),
    P("lon", "ripe", 51.5074, -0.1278),
    P("dub", "RIPE", 53.3498, -6.2603),
    P("sto", "RIPE", 59.3293, 18.0686),
    P("sgp", "APNIC", 1.3521, 103.8198),
    P("tyo", "APNIC", 35.6762, 139.6503),
    P("syd", "APNIC", -33.8688, 151.2093),
    P("bom", "APNIC", 19.0760, 72.8777),
    P("gru", "LACNIC", -23.5505, -46.6333),
    P("scl", "LACNIC", -33.4489, -70.6693),
    P("jnb", "AFRINIC", -26.2041, 28.0473),
    P("sfo", "ARIN", 37.7749, -122.4194),
    P("sea", "ARIN", 47.6062, -122.3321),
  }
end

local function by_id(reg)
  local m = {}
  for _, e in ipairs(reg) do
    m[e.id] = e
  end
  return m
end

local function rng_for(secret, target) return sel.new_rng(sel.seed(secret, target)) end

local function assert_compliant(ids, reg, k)
  local m = by_id(reg)
  local primary
  for _, e in ipairs(reg) do
    if e.is_primary then primary = e end
  end
  eq(#ids, k, "cohort size")
  local rirs, seen = {}, {}
  for i, a in ipairs(ids) do
    ok(m[a] and not m[a].is_primary, "member " .. tostring(a) .. " is a remote")
    ok(not seen[a], "member " .. a .. " appears once")
    seen[a] = true
    rirs[require("mpic.quorum").normalize_rir(m[a].rir)] = true
    ok(geo.distance_km(m[a].location, primary.location) >= 500, a .. " is >= 500 km from the primary")
    for j = i + 1, #ids do
      local d = geo.distance_km(m[a].location, m[ids[j]].location)
      ok(d >= 500, string.format("%s-%s are %.0f km apart", a, ids[j], d))
    end
  end
  local n = 0
  for _ in pairs(rirs) do
    n = n + 1
  end
  ok(n >= 2, "cohort spans >= 2 RIRs")
end

case("rng_stream_is_sha256_of_seed_and_big_endian_counter", function()
  local seed = sha256("secret" .. "example.com")
  local rng = sel.new_rng(seed)
  local b0 = sha256(seed .. "\0\0\0\0")
  local b1 = sha256(seed .. "\0\0\0\1")
  local want = {}
  for i = 0, 7 do
    want[#want + 1] = string.unpack(">I4", b0, 1 + 4 * i) + 1
  end
  want[#want + 1] = string.unpack(">I4", b1, 1) + 1
  local got = {}
  for _ = 1, 9 do
    got[#got + 1] = rng:int(1 << 32)
  end
  eq(got, want)
end)

case("rng_rejection_sampling_discards_biased_words", function()
  -- n = 2^31 + 1: words >= 2^31 + 1 are rejected.
  local n = (1 << 31) + 1
  local tried = 0
  for s = 1, 200 do
    local seed = sha256("rej" .. s)
    local blk = sha256(seed .. "\0\0\0\0")
    local w1, w2 = string.unpack(">I4", blk, 1), string.unpack(">I4", blk, 5)
    if w1 >= n and w2 < n then
      eq(sel.new_rng(seed):int(n), w2 % n + 1, "second word used after a rejection")
      tried = tried + 1
    elseif w1 < n then
      eq(sel.new_rng(seed):int(n), w1 % n + 1, "first word used")
    end
  end
  ok(tried > 0, "some seed exercised a rejection")
end)

case("rng_int_stays_in_range_and_is_roughly_uniform", function()
  local rng = sel.new_rng(sha256("uniform"))
  local counts = { 0, 0, 0, 0, 0, 0 }
  for _ = 1, 6000 do
    local v = rng:int(6)
    ok(v >= 1 and v <= 6, "in range")
    counts[v] = counts[v] + 1
  end
  local chi = 0
  for i = 1, 6 do
    chi = chi + (counts[i] - 1000) ^ 2 / 1000
  end
  ok(chi < 20.5, "chi-square " .. chi .. " (df 5, p=0.001 bound 20.5)")
  eq(rng:int(1), 1)
  T.raises(function() rng:int(0) end, "integer")
  T.raises(function() rng:int(2.5) end, "integer")
end)

case("rng_same_seed_same_sequence", function()
  local a, b = rng_for("s3cret", "Example.COM"), rng_for("s3cret", "example.com")
  for _ = 1, 50 do
    eq(a:int(1000), b:int(1000))
  end
end)

case("cohorts_are_compliant_for_many_targets", function()
  local reg = registry()
  for i = 1, 40 do
    local target = "host" .. i .. ".example.com"
    for k = 3, 6 do
      local ids = sel.pick(reg, k, 1, rng_for("secret", target))
      ok(ids, "a cohort of " .. k .. " for " .. target)
      assert_compliant(ids, reg, k)
    end
  end
end)

case("cohorts_never_hold_frankfurt_and_paris_together", function()
  local reg = registry()
  for i = 1, 60 do
    local cohorts =
      sel.cohorts(select(2, sel.split_registry(reg)), 5, rng_for("k", "t" .. i), { primary_location = reg[1].location })
    for _, co in ipairs(cohorts) do
      local has = {}
      for _, m in ipairs(co) do
        has[m.id] = true
      end
      ok(not (has.fra and has.par), "fra and par in one cohort")
      ok(not (has.lon and has.dub), "lon and dub in one cohort")
    end
  end
end)

case("cohort_excludes_remotes_within_500_km_of_primary", function()
  local reg = registry()
  reg[#reg + 1] = P("phl", "ARIN", 39.95, -75.17) -- ~220 km from iad
  for i = 1, 30 do
    for a = 1, 2 do
      local ids = sel.pick(reg, 5, a, rng_for("s", "p" .. i))
      assert_compliant(ids, reg, 5)
    end
  end
end)

case("cohort_phase1_pairs_distinct_rirs_and_dissolves_the_rest", function()
  -- Five ARIN remotes far apart and a single RIPE one: with k = 3 two cohorts
  -- are opened, but only the one seeded with the RIPE member can span 2 RIRs.
  local reg = {
    P("nyc", "ARIN", 40.7128, -74.0060),
    P("lax", "ARIN", 34.0522, -118.2437),
    P("chi", "ARIN", 41.8781, -87.6298),
    P("mia", "ARIN", 25.7617, -80.1918),
    P("sea", "ARIN", 47.6062, -122.3321),
    P("fra", "RIPE", 50.1109, 8.6821),
  }
  local _, remotes = sel.split_registry(reg)
  for i = 1, 20 do
    local cohorts = assert(sel.cohorts(remotes, 3, rng_for("s", "d" .. i)))
    eq(#cohorts, 1, "one cohort survives")
    local a1 = sel.pick(reg, 3, 1, rng_for("s", "d" .. i))
    local a2 = sel.pick(reg, 3, 2, rng_for("s", "d" .. i))
    eq(a2, a1, "the single cohort is reused on every attempt")
    local has_fra = false
    for _, id in ipairs(a1) do
      has_fra = has_fra or id == "fra"
    end
    ok(has_fra, "the cohort holds the RIPE member")
  end
end)

case("cohort_same_secret_and_target_gives_same_cohort", function()
  local reg = registry()
  for i = 1, 10 do
    local t = "*.site" .. i .. ".example"
    eq(sel.pick(reg, 5, 1, rng_for("secret-a", t)), sel.pick(reg, 5, 1, rng_for("secret-a", t)))
    eq(sel.pick(reg, 5, 2, rng_for("secret-a", t)), sel.pick(reg, 5, 2, rng_for("secret-a", t)))
  end
end)

case("cohort_different_secret_usually_differs", function()
  local reg = registry()
  local differ = 0
  for i = 1, 20 do
    local t = "site" .. i .. ".example"
    local a = table.concat(sel.pick(reg, 5, 1, rng_for("secret-a", t)), ",")
    local b = table.concat(sel.pick(reg, 5, 1, rng_for("secret-b", t)), ",")
    if a ~= b then differ = differ + 1 end
  end
  ok(differ >= 15, "cohorts differed for " .. differ .. " of 20 targets")
end)

case("cohort_target_case_does_not_matter", function()
  local reg = registry()
  eq(sel.pick(reg, 5, 1, rng_for("s", "WWW.Example.ORG")), sel.pick(reg, 5, 1, rng_for("s", "www.example.org")))
end)

case("cohort_rotates_across_attempts", function()
  local reg = registry()
  for i = 1, 10 do
    local t = "rot" .. i .. ".example"
    local c1, n1 = sel.pick(reg, 5, 1, rng_for("s", t))
    local c2, n2 = sel.pick(reg, 5, 2, rng_for("s", t))
    local c3, n3 = sel.pick(reg, 5, 3, rng_for("s", t))
    eq({ n1, n2, n3 }, { 1, 2, 1 }, "14 remotes, k=5: two cohorts")
    ok(table.concat(c1, ",") ~= table.concat(c2, ","), "attempt 1 and 2 differ")
    eq(c3, c1, "attempt 3 wraps to cohort 1")
    local in1 = {}
    for _, id in ipairs(c1) do
      in1[id] = true
    end
    for _, id in ipairs(c2) do
      ok(not in1[id], "cohorts are disjoint")
    end
  end
end)

case("cohort_with_unhealthy_member_is_skipped", function()
  local reg = registry()
  local c1 = sel.pick(reg, 5, 1, rng_for("s", "health.example"))
  local c2 = sel.pick(reg, 5, 2, rng_for("s", "health.example"))
  by_id(reg)[c1[1]].healthy = false
  local got, idx = sel.pick(reg, 5, 1, rng_for("s", "health.example"))
  eq(got, c2)
  eq(idx, 2)
  by_id(reg)[c2[3]].healthy = false
  local none, why = sel.pick(reg, 5, 1, rng_for("s", "health.example"))
  eq(none, nil)
  T.contains(why, "healthy")
end)

case("cohort_size_errors_fail_closed", function()
  local reg = registry()
  local ids, why = sel.pick(reg, 1, 1, rng_for("s", "t"))
  eq(ids, nil)
  T.contains(why, "perspective-count")
  ids, why = sel.pick(reg, 15, 1, rng_for("s", "t"))
  eq(ids, nil)
  T.contains(why, "could not construct a cohort of size 15")
  local one_rir = { P("a", "ARIN", 40.7, -74.0), P("b", "ARIN", 34.05, -118.24), P("c", "ARIN", 41.88, -87.63) }
  ids, why = sel.pick(one_rir, 3, 1, rng_for("s", "t"))
  eq(ids, nil)
  T.contains(why, "one RIR")
  -- k = 2 is allowed inside one RIR (Open MPIC).
  ids = sel.pick(one_rir, 2, 1, rng_for("s", "t"))
  eq(#ids, 2)
end)

case("check_registry_accepts_a_compliant_registry", function()
  ok(sel.check_registry(registry(), 5, { min_count = 5 }))
  ok(sel.check_registry(registry(), 8, { min_count = 5 }))
end)

case("check_registry_refuses_too_few_remotes", function()
  local reg = {
    P("iad", "ARIN", 39.0, -77.5, { is_primary = true }),
    P("fra", "RIPE", 50.11, 8.68),
    P("sgp", "APNIC", 1.35, 103.82),
    P("gru", "LACNIC", -23.55, -46.63),
    P("jnb", "AFRINIC", -26.2, 28.05),
  }
  local okv, why = sel.check_registry(reg, 5)
  eq(okv, nil)
  T.contains(why, "too few remote perspectives: 4 configured, 5 needed")
end)

case("check_registry_refuses_one_rir_only", function()
  local reg = {
    P("nyc", "ARIN", 40.71, -74.0),
    P("lax", "ARIN", 34.05, -118.24),
    P("chi", "ARIN", 41.88, -87.63),
    P("mia", "ARIN", 25.76, -80.19),
    P("sea", "ARIN", 47.61, -122.33),
  }
  local okv, why = sel.check_registry(reg, 5)
  eq(okv, nil)
  T.contains(why, "one RIR")
end)

case("check_registry_refuses_remote_too_close_to_primary", function()
  local reg = registry()
  reg[#reg + 1] = P("phl", "ARIN", 39.95, -75.17)
  local okv, why = sel.check_registry(reg, 5)
  eq(okv, nil)
  T.contains(why, '"phl"')
  T.contains(why, "primary")
end)

case("check_registry_refuses_cohorts_that_cannot_be_spread_500_km", function()
  -- Five remotes within 500 km-ish of each other in Europe and one in New York: the largest
  -- set pairwise 500 km apart has 3 members (nyc, dub and fra or par).
  local reg = {
    P("fra", "RIPE", 50.1109, 8.6821),
    P("par", "RIPE", 48.8566, 2.3522),
    P("lon", "RIPE", 51.5074, -0.1278),
    P("dub", "RIPE", 53.3498, -6.2603),
    P("ams", "RIPE", 52.3676, 4.9041),
    P("nyc", "ARIN", 40.71, -74.0),
  }
  local okv, why = sel.check_registry(reg, 5)
  eq(okv, nil)
  T.contains(why, "pairwise at least 500 km")
  -- ... while 3 are possible (nyc + two distant European cities).
  ok(sel.check_registry(reg, 3))
end)

case("check_registry_refuses_count_below_br_minimum", function()
  local okv, why = sel.check_registry(registry(), 4, { min_count = 5, date = "2026-12-15" })
  eq(okv, nil)
  T.contains(why, "invalid-perspective-count")
end)

case("check_registry_refuses_malformed_entries", function()
  local reg = registry()
  reg[3].location = { lat = 100, lon = 0 }
  eq((sel.check_registry(reg, 5)), nil)
  reg = registry()
  reg[4].rir = "EU"
  eq((sel.check_registry(reg, 5)), nil)
  reg = registry()
  reg[5].id = "fra"
  eq((sel.check_registry(reg, 5)), nil)
  reg = registry()
  reg[6].is_primary = true
  local okv, why = sel.check_registry(reg, 5)
  eq(okv, nil)
  T.contains(why, "two primary")
end)
