-- A test policy that tries to change a perspective's public record.
return {
  name = "writer",
  select = function(registry, _, count, attempt, rng) return require("mpic.select").pick(registry, count, attempt, rng) end,
  decide = function(state)
    state.remotes[1].public.provider = "mine"
    return "valid", "wrote"
  end,
}
