--[[
primary_first.lua: BR rules (as br.lua; see it for the policy contract), but
the orchestrator contacts the remotes only after the primary has passed
(primary_first = true), as Boulder does. The configuration must name a
primary perspective. A state where a remote answered while the primary had
not yet passed breaks that promise and is invalid.
]]
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"

local function check_config(registry, defaults, date)
  local has_primary = false
  for _, e in ipairs(registry) do
    if e.is_primary then has_primary = true end
  end
  if not has_primary then return nil, "primary_first needs a primary perspective in the configuration" end
  local min, why = quorum.min_remotes(date)
  if not min then return nil, why end
  return cohorts.check_registry(registry, defaults and defaults.perspective_count, { min_count = min, date = date })
end

local function decide(state)
  local p = type(state) == "table" and state.primary
  if type(p) ~= "table" then
    return "invalid", "primary_first: no primary result in the state", { rule = "primary-first" }
  end
  if p.done == false and type(state.remotes) == "table" then
    for _, r in ipairs(state.remotes) do
      if type(r) == "table" and r.done ~= false then
        return "invalid",
          "primary_first: remote " .. tostring(r.id) .. " answered before the primary passed",
          { rule = "primary-first" }
      end
    end
  end
  return quorum.evaluate(state)
end

return {
  name = "primary_first",
  description = "BR rules; remotes are contacted only after the primary passed",
  primary_first = true,
  check_config = check_config,
  select = function(registry, _, count, attempt, rng)
    local ids, why = cohorts.pick(registry, count, attempt, rng)
    if not ids then return nil, why end
    return ids
  end,
  decide = decide,
  min_perspectives = function(date) return quorum.min_remotes(date) end,
}
