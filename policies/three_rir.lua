--[[
three_rir.lua: BR rules (as br.lua; see it for the policy contract), but the
corroborating remotes must span at least 3 RIRs instead of 2 (for cohorts of
more than 2 remotes), so that an attacker has to fool networks on three
continents' registries at once. Selection prefers the first cohort (from the
attempt's own, cyclically) whose members span 3 RIRs; check_config refuses a
registry whose remotes span fewer than 3.
]]
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"

local MIN_RIRS = 3
local MAX_COHORTS_TRIED = 64

local function rirs_of(registry, ids)
  local want, seen, n = {}, {}, 0
  for _, id in ipairs(ids) do
    want[id] = true
  end
  for _, e in ipairs(registry) do
    if want[e.id] then
      local r = quorum.normalize_rir(e.rir)
      if r and not seen[r] then
        seen[r] = true
        n = n + 1
      end
    end
  end
  return n
end

local function check_config(registry, defaults, date)
  local min, why = quorum.min_remotes(date)
  if not min then return nil, why end
  local ok, cwhy =
    cohorts.check_registry(registry, defaults and defaults.perspective_count, { min_count = min, date = date })
  if not ok then return nil, cwhy end
  local remotes = {}
  for _, e in ipairs(registry) do
    if not e.is_primary then remotes[#remotes + 1] = e.id end
  end
  local n = rirs_of(registry, remotes)
  if n < MIN_RIRS then
    return nil, string.format("the remote perspectives span %d RIR(s); three_rir needs %d", n, MIN_RIRS)
  end
  return true
end

local function select_remotes(registry, _, count, attempt, rng)
  -- every try replays the same draws from the start, so all tries see the
  -- same cohort list (a function of the seed) and differ only in the pick
  local first_ids, first_why
  local used = {}
  for off = 0, MAX_COHORTS_TRIED - 1 do
    local replay = 0
    local stream = {
      int = function(_, n)
        replay = replay + 1
        if used[replay] == nil then used[replay] = rng:int(n) end
        return used[replay]
      end,
    }
    local ids, why = cohorts.pick(registry, count, attempt + off, stream)
    if not ids then return nil, why end
    if off == 0 then
      first_ids, first_why = ids, why
    end
    if count <= 2 or rirs_of(registry, ids) >= MIN_RIRS then return ids end
  end
  return first_ids, first_why
end

return {
  name = "three_rir",
  description = "BR quorum table; corroborating remotes in >= 3 RIRs; primary must pass",
  check_config = check_config,
  select = select_remotes,
  decide = function(state)
    return quorum.evaluate(state, { min_rirs = function(n) return n > 2 and MIN_RIRS or 1 end })
  end,
  min_perspectives = function(date) return quorum.min_remotes(date) end,
}
