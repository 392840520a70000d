-- A geography rule: BR quorum, and no two corroborating remotes within
-- 2000 km of each other (reads each entry's public record in decide).
local geo = require "mpic.geo"
local quorum = require "mpic.quorum"
return {
  name = "far_apart",
  select = function(registry, _, count, attempt, rng) return require("mpic.select").pick(registry, count, attempt, rng) end,
  decide = function(state)
    local v, why, info = quorum.evaluate(state)
    if v ~= "valid" then return v, why, info end
    local passed = {}
    for _, r in ipairs(state.remotes) do
      if r.passed then passed[#passed + 1] = r end
    end
    for i = 1, #passed do
      for j = i + 1, #passed do
        local d = geo.distance_km(passed[i].public.location, passed[j].public.location)
        if d < 2000 then
          return "invalid", string.format("%s and %s are %.0f km apart", passed[i].id, passed[j].id, d), info
        end
      end
    end
    return v, why, info
  end,
}
