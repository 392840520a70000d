-- A test policy: every remote is selected; valid when more than half of all
-- perspectives (primary included) passed.
return {
  name = "majority",
  select = function(registry, _, count)
    local ids = {}
    for _, e in ipairs(registry) do
      if not e.is_primary and #ids < count then ids[#ids + 1] = e.id end
    end
    return ids
  end,
  decide = function(state)
    local passed, total = 0, #state.remotes
    for _, r in ipairs(state.remotes) do
      if r.passed then passed = passed + 1 end
    end
    if state.primary then
      total = total + 1
      if state.primary.passed then passed = passed + 1 end
    end
    if 2 * passed > total then return "valid", "majority" end
    return "invalid", "no majority"
  end,
}
