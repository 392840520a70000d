-- br_wait_all.lua: a lab policy for the scenario tests. The verdict is the
-- default policy's (BR 3.2.2.9 quorum, 2 RIRs, primary must pass, same
-- cohorts), but every perspective is waited for, so a test can see the
-- failure of a broken perspective instead of "cancelled after outcome
-- decided".
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"

return {
  name = "br-wait-all",
  description = "BR 3.2.2.9, waiting for every perspective (lab)",
  check_config = function(registry, defaults, date)
    local min, why = quorum.min_remotes(date)
    if not min then return nil, why end
    return cohorts.check_registry(registry, defaults and defaults.perspective_count, { min_count = min, date = date })
  end,
  select = function(registry, _, count, attempt, rng) return cohorts.pick(registry, count, attempt, rng) end,
  decide = function(state) return quorum.evaluate(state) end,
  wait_for_all = true,
  min_perspectives = function(date) return quorum.min_remotes(date) end,
}
