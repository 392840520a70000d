-- mpic.quorum: the BR 3.2.2.9 quorum table, the phase-in by date, the Open
-- MPIC quorum_count rule and the corroboration evaluation the policies share.
--
-- Uses only plain Lua. Dates are "YYYY-MM-DD" strings (UTC), compared as
-- strings once their shape is checked.
--
-- Quorum (remote perspectives n -> corroborations required):
--   n = 2..5: n - 1 (one non-corroboration allowed); n >= 6: n - 2.
-- Phase-in (minimum number of remote perspectives):
--   before 2026-03-15: 2 (mpic never runs fewer than 2; the BR "SHOULD" and
--   "issuance may proceed" stages are treated strictly: quorum always applies)
--   2026-03-15: 3, 2026-06-15: 4, 2026-12-15: 5.
-- RIR diversity: for a cohort of more than 2 remotes the corroborating
-- remotes must span at least 2 RIRs (SC-083; REFERENCE 7.1 product rule).
local type, pairs, ipairs, tostring, tonumber, error = type, pairs, ipairs, tostring, tonumber, error
local string_format, string_match, string_upper, string_gsub = string.format, string.match, string.upper, string.gsub
local table_sort, table_concat, math_max, math_type = table.sort, table.concat, math.max, math.type

local M = {}

-- Ordered newest first.
M.PHASE_IN = {
  { from = "2026-12-15", min_remotes = 5 },
  { from = "2026-06-15", min_remotes = 4 },
  { from = "2026-03-15", min_remotes = 3 },
}
M.BASE_MIN_REMOTES = 2

M.RIRS = { ARIN = true, RIPE = true, APNIC = true, LACNIC = true, AFRINIC = true }

-- Every evaluation normalizes each remote's RIR and checks the date: the
-- answers are remembered (bounded; a full memo starts over). A remembered
-- RIR name is used only while quorum.RIRS still holds it; failures are not
-- remembered.
local MEMO_MAX = 256

local function normalize_rir(rir)
  local s = string_upper(string_gsub(string_gsub(rir, "^%s+", ""), "%s+$", ""))
  s = string_gsub(s, "%s+", " ")
  if s == "RIPE NCC" then s = "RIPE" end
  if not M.RIRS[s] then return nil, string_format("unknown RIR %q", rir) end
  return s
end

local rir_memo, rir_n = {}, 0

-- Canonical RIR name ("ripe ncc" -> "RIPE"), or nil, reason.
function M.normalize_rir(rir)
  if type(rir) ~= "string" then return nil, "rir is not a string" end
  local hit = rir_memo[rir]
  if hit and M.RIRS[hit] then return hit end
  local s, why = normalize_rir(rir)
  if s and #rir <= 64 then
    if rir_n >= MEMO_MAX then
      rir_memo, rir_n = {}, 0
    end
    rir_memo[rir] = s
    rir_n = rir_n + 1
  end
  return s, why
end

local function check_date(date)
  local y, m, d = string_match(date, "^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return nil, string_format("malformed date %q (want YYYY-MM-DD)", date) end
  m, d = tonumber(m), tonumber(d)
  if m < 1 or m > 12 or d < 1 or d > 31 then
    return nil, string_format("malformed date %q (month or day out of range)", date)
  end
  return true
end
local date_memo, date_n = {}, 0
local function check_date_memo(date)
  local hit = date_memo[date]
  if hit then return hit[1], hit[2] end
  local ok, why = check_date(date)
  if date_n >= MEMO_MAX then
    date_memo, date_n = {}, 0
  end
  date_memo[date] = { ok, why }
  date_n = date_n + 1
  return ok, why
end

-- True for a well-formed "YYYY-MM-DD" date string.
function M.check_date(date)
  if type(date) ~= "string" then return nil, 'date must be a "YYYY-MM-DD" string' end
  if #date > 64 then return check_date(date) end
  return check_date_memo(date)
end

-- BR minimum number of remote perspectives on the given date, or nil, reason.
function M.min_remotes(date)
  local ok, why = M.check_date(date)
  if not ok then return nil, why end
  for _, step in ipairs(M.PHASE_IN) do
    if date >= step.from then return step.min_remotes end
  end
  return M.BASE_MIN_REMOTES
end

local function check_n(n)
  if math_type(n) ~= "integer" or n < 1 then error("quorum: n must be a positive integer, got " .. tostring(n), 3) end
end

-- Non-corroborations allowed among n remotes (BR table).
function M.allowed_failures(n)
  check_n(n)
  if n < 2 then
    return 0
  elseif n <= 5 then
    return 1
  end
  return 2
end

-- Corroborations required among n remotes (BR table).
function M.required(n) return n - M.allowed_failures(n) end

-- Open MPIC rule for a requested quorum_count q with n perspectives:
-- n-1 <= q <= n <= 5, or 4 <= n-2 <= q <= n. Returns true or nil, reason.
function M.check_requested(n, q)
  check_n(n)
  if math_type(q) ~= "integer" then return nil, "invalid-quorum-count: quorum_count must be an integer" end
  if (n <= 5 and n - 1 <= q and q <= n) or (n - 2 >= 4 and n - 2 <= q and q <= n) then return true end
  return nil, string_format("invalid-quorum-count: quorum_count %d is not allowed with %d perspectives", q, n)
end

-- Required corroborations: max(requested, table). Returns r or nil, reason.
function M.effective(n, q)
  local r = M.required(n)
  if q == nil then return r end
  local ok, why = M.check_requested(n, q)
  if not ok then return nil, why end
  return math_max(r, q)
end

-- The five RIRs as bits, in name order, so that the RIRs seen in an
-- evaluation are kept in two integers (a name outside these, added to
-- M.RIRS, goes to a set as before).
local RIR_ORDER = { "AFRINIC", "APNIC", "ARIN", "LACNIC", "RIPE" }
local RIR_BIT = {}
for i, r in ipairs(RIR_ORDER) do
  RIR_BIT[r] = 1 << (i - 1)
end

-- The sorted names of a mask and of an extra set (nil when none).
local function rir_names(mask, extra)
  local out = {}
  for i = 1, #RIR_ORDER do
    if mask & (1 << (i - 1)) ~= 0 then out[#out + 1] = RIR_ORDER[i] end
  end
  if extra then
    for k in pairs(extra) do
      if not RIR_BIT[k] then out[#out + 1] = k end
    end
    table_sort(out)
  end
  return out
end

-- How many names a mask and an extra set hold.
local function rir_count(mask, extra)
  local c = 0
  while mask ~= 0 do
    c = c + (mask & 1)
    mask = mask >> 1
  end
  if extra then
    for _ in pairs(extra) do
      c = c + 1
    end
  end
  return c
end

local function bad_state(why) return "invalid", "malformed corroboration state: " .. why, { rule = "malformed-state" } end

--[[
Evaluate a corroboration state (the policy contract's decide() argument):
  state = { primary = {id, passed, completed, done} or nil,
            remotes = { {id, rir, passed, completed, done}, ... },
            count = n, quorum = requested or nil, date = "YYYY-MM-DD" }
opts.required(n, requested) -> r or nil, reason   (default: M.effective)
opts.min_rirs(n) -> number                          (default: 2 when n > 2)
opts.check_minimum: reject n below the BR minimum for state.date (default on)
Returns verdict ("valid" | "invalid" | "undecided"), reason, info; info.rule
names the rule that decided (mpic.rules: quorum-met, waiting, quorum,
rir-diversity, primary, perspective-count, requested-quorum,
no-perspectives, malformed-state) with its data in info.
valid: the primary (if any) passed, at least r remotes passed and they span
the required RIRs. invalid: the primary failed, or even if every pending
remote passed one of those conditions would still be unmet. Else undecided.
]]
function M.evaluate(state, opts)
  opts = opts or {}
  if type(state) ~= "table" then return bad_state("state is not a table") end
  local remotes = state.remotes
  if type(remotes) ~= "table" then return bad_state("remotes is not a list") end
  local n = #remotes
  if n < 1 then return "invalid", "no remote perspectives selected", { quorum = "0/0", rule = "no-perspectives" } end
  if state.count ~= nil and state.count ~= n then
    return bad_state(string_format("count %s but %d remotes", tostring(state.count), n))
  end
  if opts.check_minimum ~= false then
    local min, why = M.min_remotes(state.date)
    if not min then return bad_state(why) end
    if n < min then
      return "invalid",
        string_format(
          "invalid-perspective-count: %d remote perspectives, the BR require at least %d on %s",
          n,
          min,
          state.date
        ),
        {
          quorum = "0/" .. n,
          rule = "perspective-count",
          total = n,
          min_remotes = min,
          date = state.date,
        }
    end
  end
  local required, rwhy
  if opts.required then
    required, rwhy = opts.required(n, state.quorum)
  else
    required, rwhy = M.effective(n, state.quorum)
  end
  if not required then
    return "invalid", rwhy, { quorum = "0/" .. n, rule = "requested-quorum", total = n, requested = state.quorum }
  end
  local min_rirs = opts.min_rirs and opts.min_rirs(n) or (n > 2 and 2 or 1)

  local passed, failed, pending, errors = 0, 0, 0, 0
  local passed_mask, possible_mask, passed_extra, possible_extra, seen = 0, 0, nil, nil, {}
  local first_failure
  for i = 1, n do
    local r = remotes[i]
    if type(r) ~= "table" then return bad_state(string_format("remotes[%d] is not a table", i)) end
    if type(r.id) ~= "string" or seen[r.id] then
      return bad_state(string_format("remotes[%d].id is missing or repeated", i))
    end
    seen[r.id] = true
    local rir, why = M.normalize_rir(r.rir)
    if not rir then return bad_state(string_format("remotes[%d].rir: %s", i, why)) end
    local done = r.done
    if done == nil then done = true end
    if type(done) ~= "boolean" then return bad_state(string_format("remotes[%d].done is not a boolean", i)) end
    if done then
      if type(r.passed) ~= "boolean" then return bad_state(string_format("remotes[%d].passed is not a boolean", i)) end
      if r.passed then
        passed = passed + 1
        local bit = RIR_BIT[rir]
        if bit then
          passed_mask, possible_mask = passed_mask | bit, possible_mask | bit
        else
          passed_extra, possible_extra = passed_extra or {}, possible_extra or {}
          passed_extra[rir], possible_extra[rir] = true, true
        end
      else
        failed = failed + 1
        first_failure = first_failure or r.id
        if r.completed == false then errors = errors + 1 end
      end
    else
      pending = pending + 1
      local bit = RIR_BIT[rir]
      if bit then
        possible_mask = possible_mask | bit
      else
        possible_extra = possible_extra or {}
        possible_extra[rir] = true
      end
    end
  end

  local rir_list = rir_names(passed_mask, passed_extra)
  local info = {
    quorum = string_format("%d/%d", passed, n),
    passed = passed,
    failed = failed,
    pending = pending,
    errors = errors,
    total = n,
    required = required,
    min_rirs = min_rirs,
    passed_rirs = rir_list,
    first_failure = first_failure,
  }

  local p = state.primary
  local primary_ok = true
  if p ~= nil then
    if type(p) ~= "table" then return bad_state("primary is not a table") end
    local pdone = p.done
    if pdone == nil then pdone = true end
    if pdone then
      if type(p.passed) ~= "boolean" then return bad_state("primary.passed is not a boolean") end
      if not p.passed then
        info.primary, info.rule, info.primary_id = "failed", "primary", p.id
        return "invalid", string_format("primary perspective %s failed", tostring(p.id)), info
      end
      info.primary = "passed"
    else
      info.primary = "pending"
      primary_ok = false
    end
  end

  if passed + pending < required then
    info.rule = "quorum"
    return "invalid",
      string_format("quorum cannot be met: %d of %d remotes did not corroborate, %d required", failed, n, required),
      info
  end
  local possible = rir_count(possible_mask, possible_extra)
  info.possible_rirs = possible
  if possible < min_rirs then
    info.rule = "rir-diversity"
    return "invalid",
      string_format("corroborating remotes can span at most %d RIR(s), %d required", possible, min_rirs),
      info
  end
  if primary_ok and passed >= required and #rir_list >= min_rirs then
    info.rule = "quorum-met"
    return "valid",
      string_format(
        "quorum met: %d/%d corroborated (%d required) in %d RIRs (%s)",
        passed,
        n,
        required,
        #rir_list,
        table_concat(rir_list, ", ")
      ),
      info
  end
  info.rule = "waiting"
  return "undecided",
    string_format("waiting: %d/%d corroborated, %d pending, %d required", passed, n, pending, required),
    info
end

return M
