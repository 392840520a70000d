-- mpic.select: deterministic perspective selection (cohorts), the seeded
-- random stream it uses, and the registry checks policies run at start.
--
-- Uses mpic.geo for distances, mpic.quorum for RIR names and
-- mpic.core.util.sha256 (raw 32-byte digest, provided by the binary) for
-- the random stream.
--
-- The random stream (REFERENCE 6.2 product rule):
--   block(c) = SHA-256(seed .. uint32_be(c)) for c = 0, 1, 2, ...; the
--   stream is the concatenation of the blocks, read as unsigned 32-bit
--   big-endian words. rng:int(n) (1 <= n <= 2^32) reads words u until
--   u < 2^32 - (2^32 mod n) (rejection sampling, no modulo bias) and
--   returns u mod n + 1. rng:int(1) still consumes one word.
--   The orchestrator seeds it with SHA-256(secret .. lower(target)).
--
-- The cohort algorithm (M.cohorts), for a cohort size k >= 2:
--   1. Eligible candidates: remotes at least 500 km from the primary's
--      location (when there is a primary).
--   2. Sort by id (byte order), then Fisher-Yates shuffle:
--      for i = N down to 2: j = rng:int(i); swap(a[i], a[j]).
--   3. Bucket by normalized RIR ("RIPE NCC" = "RIPE", case-insensitive),
--      keeping the shuffled order; buckets ordered by first appearance.
--      A bucket pointer p walks the buckets round-robin through all phases.
--   4. C = floor(N / k) cohorts are opened. k > N, or k > 2 with a single
--      RIR, is an error ("could not construct a cohort of size k").
--   5. Phase 1, round 1: each open cohort in turn takes the front member of
--      the next non-empty bucket at or after p; p moves past that bucket.
--      Round 2: each cohort in turn scans the buckets from p (one full turn)
--      for a bucket of a different RIR from its first member holding a
--      member at least 500 km from it, and takes the first such member
--      (queue order); p moves past that bucket. For k = 2 a same-RIR bucket
--      is accepted when no other RIR offers one. A cohort that finds none is
--      dissolved; its member returns to the front of its bucket.
--   6. Phase 2: each remaining cohort in turn, while it has fewer than k
--      members, scans the buckets from p (one full turn) and takes, from the
--      first bucket that has one, the first member at least 500 km from
--      every member (too-close members stay queued, in place); p moves past
--      that bucket. A cohort that cannot reach k is dissolved; its members
--      go back to the end of their buckets.
--   7. The cohorts that reached k, in the order they were opened, are the
--      cohort list; each cohort lists its ids in the order they joined.
--   Attempt i uses cohort ((i - 1) mod C) + 1 (M.pick); when that cohort has
--   an unhealthy member the next cohort (cyclically) with none is used, so
--   health never changes which cohorts exist, only which one is used.
local type, ipairs, error, tostring, require = type, ipairs, error, tostring, require
local string_pack, string_unpack, string_lower, string_format = string.pack, string.unpack, string.lower, string.format
local table_sort, table_remove, table_insert, table_unpack, math_type, math_floor =
  table.sort, table.remove, table.insert, table.unpack, math.type, math.floor

local geo = require "mpic.geo"
local quorum = require "mpic.quorum"

local M = {}

M.MIN_DISTANCE_KM = geo.MIN_DISTANCE_KM
M.SEARCH_BUDGET = 200000

local TWO32 = 1 << 32

local function default_hash() return require("mpic.core.util").sha256 end

-- SHA-256(secret .. lower(target)), the selection seed.
function M.seed(secret, target, hash)
  if type(secret) ~= "string" or type(target) ~= "string" then
    error("select.seed: secret and target must be strings", 2)
  end
  hash = hash or default_hash()
  return hash(secret .. string_lower(target))
end

-- A deterministic stream object: rng:int(n) -> 1..n. The state lives in
-- upvalues, so the object has no shared metatable a script could alter.
function M.new_rng(seed, hash)
  if type(seed) ~= "string" or #seed == 0 then error("select.new_rng: seed must be a non-empty string", 2) end
  hash = hash or default_hash()
  local counter, block, pos = 0, nil, 33
  local function word()
    if pos > 29 then
      block = hash(seed .. string_pack(">I4", counter))
      if type(block) ~= "string" or #block ~= 32 then error("select: hash function must return 32 raw bytes", 3) end
      counter = counter + 1
      pos = 1
    end
    local u = string_unpack(">I4", block, pos)
    pos = pos + 4
    return u
  end
  local rng = {}
  function rng.int(_, n)
    if math_type(n) ~= "integer" or n < 1 or n > TWO32 then error("rng:int: n must be an integer in [1, 2^32]", 2) end
    local limit = TWO32 - (TWO32 % n)
    for _ = 1, 1000 do
      local u = word()
      if u < limit then return u % n + 1 end
    end
    error("rng:int: rejection sampling did not terminate", 2)
  end
  return rng
end

-- Work that does not depend on the target, remembered across calls (a
-- policy's private copy of this module lives as long as the policy, so a
-- configuration computes each distance and RIR name once): great-circle
-- distances by the coordinates of both ends, normalized RIR names by the
-- name given. Both are bounded; a full memo starts over.
local MEMO_MAX = 4096
local dist_memo, dist_n = {}, 0
local rir_memo, rir_n = {}, 0

-- geo.distance_km(a, b) for valid locations (a miss validates, as geo does).
local function distance(a, b)
  if type(a) ~= "table" or type(b) ~= "table" then
    return geo.distance_km(a, b) -- raises, as it should
  end
  local alat, alon, blat, blon = a.lat, a.lon, b.lat, b.lon
  local m1 = dist_memo[alat]
  local m2 = m1 and m1[alon]
  local m3 = m2 and m2[blat]
  local d = m3 and m3[blon]
  if d then return d end
  d = geo.distance_km(a, b)
  if dist_n >= MEMO_MAX then
    dist_memo, dist_n = {}, 0
  end
  m1 = dist_memo[alat] or {}
  dist_memo[alat] = m1
  m2 = m1[alon] or {}
  m1[alon] = m2
  m3 = m2[blat] or {}
  m2[blat] = m3
  m3[blon] = d
  dist_n = dist_n + 1
  return d
end

local function normalize_rir(rir)
  local r = rir_memo[rir]
  if r then return r end
  local why
  r, why = quorum.normalize_rir(rir)
  if r and type(rir) == "string" then
    if rir_n >= MEMO_MAX then
      rir_memo, rir_n = {}, 0
    end
    rir_memo[rir] = r
    rir_n = rir_n + 1
  end
  return r, why
end

-- Validate registry entries; returns primary (or nil), remotes (list of
-- {id, rir, location, healthy, entry}) or nil, reason.
function M.split_registry(registry)
  if type(registry) ~= "table" then return nil, "registry is not a list" end
  local seen, primary, remotes = {}, nil, {}
  for i, e in ipairs(registry) do
    if type(e) ~= "table" then return nil, string_format("registry[%d] is not a table", i) end
    if type(e.id) ~= "string" or e.id == "" then
      return nil, string_format("registry[%d].id must be a non-empty string", i)
    end
    if seen[e.id] then return nil, string_format("perspective id %q appears twice", e.id) end
    seen[e.id] = true
    local rir, why = normalize_rir(e.rir)
    if not rir then return nil, string_format("perspective %q: %s", e.id, why) end
    local ok, lwhy = geo.check_location(e.location)
    if not ok then return nil, string_format("perspective %q: %s", e.id, lwhy) end
    local rec = { id = e.id, rir = rir, location = e.location, healthy = e.healthy ~= false, entry = e }
    if e.is_primary then
      if primary then return nil, string_format("two primary perspectives: %q and %q", primary.id, e.id) end
      primary = rec
    else
      remotes[#remotes + 1] = rec
    end
  end
  return primary or false, remotes
end

local function far_from_all(cand, members, min_km)
  for _, m in ipairs(members) do
    if distance(cand.location, m.location) < min_km then return false end
  end
  return true
end

-- Steps 3 to 7 depend only on the shuffled pool (each candidate's id, RIR
-- and location, in order), k and min_km: their outcome is remembered by
-- those, as positions in the pool (so a remembered cohort list is rebuilt
-- from the current candidate records, with their current health). The
-- stream is read exactly as without the memo (the shuffle always runs).
-- Bounded: a full memo starts over.
M.COHORT_MEMO_MAX = 1024
local cohort_memo, cohort_n = {}, 0
local KEY_FMT = {}

local function cohort_key(pool, k, min_km)
  local n = #pool
  if n > 64 or type(min_km) ~= "number" then return nil end
  local args = { k, min_km }
  for i = 1, n do
    local c = pool[i]
    local loc = c.location
    if
      type(c.id) ~= "string"
      or type(c.rir) ~= "string"
      or type(loc) ~= "table"
      or type(loc.lat) ~= "number"
      or type(loc.lon) ~= "number"
    then
      return nil
    end
    args[4 * i - 1], args[4 * i], args[4 * i + 1], args[4 * i + 2] = c.id, c.rir, loc.lat, loc.lon
  end
  local fmt = KEY_FMT[n]
  if not fmt then
    fmt = "<i8d" .. string.rep("s4s4dd", n)
    KEY_FMT[n] = fmt
  end
  return string_pack(fmt, table_unpack(args, 1, 4 * n + 2))
end

local function remember(key, value)
  if not key then return end
  if cohort_n >= M.COHORT_MEMO_MAX then
    cohort_memo, cohort_n = {}, 0
  end
  cohort_memo[key] = value
  cohort_n = cohort_n + 1
end

-- Entries in the memo (for tests).
function M.cohort_memo_size() return cohort_n end

local cohorts_of_pool -- steps 3 to 7 (below)
local COHORT_FAIL = "could not construct a cohort of size %d from %d eligible remote perspectives"

-- The cohort list for the candidates (see the algorithm above).
-- cands: list of {id, rir (normalized), location}; opts.primary_location,
-- opts.min_km. Returns a list of cohorts (lists of candidate records) or
-- nil, reason.
function M.cohorts(cands, k, rng, opts)
  opts = opts or {}
  local min_km = opts.min_km or M.MIN_DISTANCE_KM
  if math_type(k) ~= "integer" or k < 2 then return nil, "cohort size must be an integer >= 2" end
  local pool = {}
  for _, c in ipairs(cands) do
    if not opts.primary_location or distance(c.location, opts.primary_location) >= min_km then pool[#pool + 1] = c end
  end
  local n = #pool
  if k > n then return nil, string_format(COHORT_FAIL, k, n) end
  table_sort(pool, function(a, b) return a.id < b.id end)
  for i = n, 2, -1 do
    local j = rng:int(i)
    pool[i], pool[j] = pool[j], pool[i]
  end
  local key = cohort_key(pool, k, min_km)
  local known = key and cohort_memo[key]
  if known then
    if type(known) == "string" then return nil, known end
    local out = {}
    for ci, idx in ipairs(known) do
      local co = {}
      for mi, pi in ipairs(idx) do
        co[mi] = pool[pi]
      end
      out[ci] = co
    end
    return out
  end
  local done, why = cohorts_of_pool(pool, n, k, min_km)
  if done then
    local pos, idx = {}, {}
    for i, c in ipairs(pool) do
      pos[c] = i
    end
    for ci, co in ipairs(done) do
      local l = {}
      for mi, m in ipairs(co) do
        l[mi] = pos[m]
      end
      idx[ci] = l
    end
    remember(key, idx)
    return done
  end
  remember(key, why)
  return nil, why
end

cohorts_of_pool = function(pool, n, k, min_km)
  local buckets, by_rir = {}, {}
  for _, c in ipairs(pool) do
    local b = by_rir[c.rir]
    if not b then
      b = { rir = c.rir, q = {} }
      by_rir[c.rir] = b
      buckets[#buckets + 1] = b
    end
    b.q[#b.q + 1] = c
  end
  local nb = #buckets
  if k > 2 and nb < 2 then return nil, string_format(COHORT_FAIL, k, n) .. " (all in one RIR)" end
  local p = 1
  local function advance(bi) p = bi % nb + 1 end

  -- Phase 1, round 1.
  local open = {}
  for _ = 1, math_floor(n / k) do
    for t = 0, nb - 1 do
      local bi = (p - 1 + t) % nb + 1
      local b = buckets[bi]
      if #b.q > 0 then
        open[#open + 1] = { table_remove(b.q, 1) }
        advance(bi)
        break
      end
    end
  end
  -- Phase 1, round 2.
  local paired = {}
  for _, co in ipairs(open) do
    local first = co[1]
    local took = false
    for pass = 1, (k == 2) and 2 or 1 do
      for t = 0, nb - 1 do
        local bi = (p - 1 + t) % nb + 1
        local b = buckets[bi]
        if pass == 2 or b.rir ~= first.rir then
          for qi, cand in ipairs(b.q) do
            if distance(cand.location, first.location) >= min_km then
              co[2] = table_remove(b.q, qi)
              advance(bi)
              took = true
              break
            end
          end
        end
        if took then break end
      end
      if took then break end
    end
    if took then
      paired[#paired + 1] = co
    else
      table_insert(by_rir[first.rir].q, 1, first)
    end
  end
  -- Phase 2.
  local done = {}
  for _, co in ipairs(paired) do
    while #co < k do
      local took = false
      for t = 0, nb - 1 do
        local bi = (p - 1 + t) % nb + 1
        local b = buckets[bi]
        for qi, cand in ipairs(b.q) do
          if far_from_all(cand, co, min_km) then
            co[#co + 1] = table_remove(b.q, qi)
            advance(bi)
            took = true
            break
          end
        end
        if took then break end
      end
      if not took then break end
    end
    if #co == k then
      done[#done + 1] = co
    else
      for _, m in ipairs(co) do
        local q = by_rir[m.rir].q
        q[#q + 1] = m
      end
    end
  end
  if #done == 0 then return nil, string_format(COHORT_FAIL, k, n) end
  return done
end

local function ids_of(co)
  local out = {}
  for i, m in ipairs(co) do
    out[i] = m.id
  end
  return out
end

--[[
The remotes for one attempt: the policy contract's select() built on
M.cohorts. registry entries: {id, rir, location, healthy, is_primary}.
Returns a list of ids and the cohort number, or nil, reason.
]]
function M.pick(registry, count, attempt, rng, opts)
  opts = opts or {}
  if math_type(count) ~= "integer" or count < 2 then
    return nil, "invalid-perspective-count: perspective_count must be an integer >= 2"
  end
  if math_type(attempt) ~= "integer" or attempt < 1 then return nil, "attempt must be an integer >= 1" end
  if type(rng) ~= "table" or type(rng.int) ~= "function" then return nil, "rng is missing" end
  local primary, remotes = M.split_registry(registry)
  if primary == nil then return nil, remotes end
  local cohorts, why = M.cohorts(remotes, count, rng, {
    primary_location = primary and primary.location or nil,
    min_km = opts.min_km,
  })
  if not cohorts then return nil, why end
  local c = #cohorts
  local start = (attempt - 1) % c
  for off = 0, c - 1 do
    local idx = (start + off) % c + 1
    local healthy = true
    for _, m in ipairs(cohorts[idx]) do
      if not m.healthy then
        healthy = false
        break
      end
    end
    if healthy then return ids_of(cohorts[idx]), idx end
  end
  return nil, string_format("no cohort of size %d has only healthy members (%d cohorts)", count, c)
end

-- Exhaustive search for one compliant set of k remotes (pairwise >= min_km,
-- >= 2 RIRs when k > 2). Returns true, false, or nil when the search budget
-- ran out before an answer.
local function exists_compliant(rs, k, min_km, budget)
  local n = #rs
  local far = {}
  for i = 1, n do
    far[i] = {}
    for j = 1, n do
      far[i][j] = i ~= j and distance(rs[i].location, rs[j].location) >= min_km
    end
  end
  local chosen, nodes = {}, 0
  local function rirs_ok()
    if k <= 2 then return true end
    local r1 = rs[chosen[1]].rir
    for i = 2, #chosen do
      if rs[chosen[i]].rir ~= r1 then return true end
    end
    return false
  end
  local function extend(start)
    nodes = nodes + 1
    if nodes > budget then return nil end
    if #chosen == k then return rirs_ok() end
    for i = start, n - (k - #chosen) + 1 do
      local ok = true
      for _, c in ipairs(chosen) do
        if not far[c][i] then
          ok = false
          break
        end
      end
      if ok then
        chosen[#chosen + 1] = i
        local r = extend(i + 1)
        chosen[#chosen] = nil
        if r ~= false then return r end
      end
    end
    return false
  end
  return extend(1)
end

--[[
Refuse a registry that can never form a compliant cohort of `count`
remotes: bad entries, more than one primary, a remote within 500 km of the
primary, fewer than `count` remotes, a single RIR (count > 2), or no set of
`count` remotes pairwise 500 km apart spanning 2 RIRs. opts.min_count: the
smallest allowed count (BR phase-in). Returns true or nil, reason.
]]
function M.check_registry(registry, count, opts)
  opts = opts or {}
  local min_km = opts.min_km or M.MIN_DISTANCE_KM
  local primary, remotes = M.split_registry(registry)
  if primary == nil then return nil, remotes end
  if math_type(count) ~= "integer" or count < 2 then
    return nil, "invalid-perspective-count: perspective_count must be an integer >= 2, got " .. tostring(count)
  end
  if opts.min_count and count < opts.min_count then
    return nil,
      string_format(
        "invalid-perspective-count: perspective_count %d is below the BR minimum of %d%s",
        count,
        opts.min_count,
        opts.date and (" on " .. opts.date) or ""
      )
  end
  if primary then
    for _, r in ipairs(remotes) do
      local d = distance(r.location, primary.location)
      if d < min_km then
        return nil,
          string_format(
            "remote perspective %q is %.0f km from the primary %q (minimum %d km)",
            r.id,
            d,
            primary.id,
            min_km
          )
      end
    end
  end
  if #remotes < count then
    return nil, string_format("too few remote perspectives: %d configured, %d needed", #remotes, count)
  end
  local rirs, nrirs = {}, 0
  for _, r in ipairs(remotes) do
    if not rirs[r.rir] then
      rirs[r.rir] = true
      nrirs = nrirs + 1
    end
  end
  if count > 2 and nrirs < 2 then
    return nil, "all remote perspectives are in one RIR; a cohort needs at least 2 RIRs"
  end
  local found = exists_compliant(remotes, count, min_km, opts.budget or M.SEARCH_BUDGET)
  if found == false then
    return nil,
      string_format(
        "no %d remote perspectives are pairwise at least %d km apart%s",
        count,
        min_km,
        count > 2 and " across 2 RIRs" or ""
      )
  end
  return true
end

return M
