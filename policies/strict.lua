--[[
strict.lua: full quorum. Every selected remote must corroborate, and the
corroborating remotes must span >= 2 RIRs (cohorts of more than 2); the
primary must pass. Selection, phase-in and configuration checks are those of
br.lua (see br.lua for the policy contract). A requested quorum_count must
still be one the Open MPIC rule allows; it cannot lower the requirement.
]]
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"

local function required_all(n, requested)
  if requested ~= nil then
    local ok, why = quorum.check_requested(n, requested)
    if not ok then return nil, why end
  end
  return n
end

return {
  name = "strict",
  description = "every selected remote must corroborate, in >= 2 RIRs",
  check_config = function(registry, defaults, date)
    local min, why = quorum.min_remotes(date)
    if not min then return nil, why end
    return cohorts.check_registry(registry, defaults and defaults.perspective_count, { min_count = min, date = date })
  end,
  select = function(registry, _, count, attempt, rng)
    local ids, why = cohorts.pick(registry, count, attempt, rng)
    if not ids then return nil, why end
    return ids
  end,
  decide = function(state) return quorum.evaluate(state, { required = required_all }) end,
  min_perspectives = function(date) return quorum.min_remotes(date) end,
}
