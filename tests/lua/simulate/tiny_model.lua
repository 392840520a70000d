-- A test model: k random perspectives for every k, and outages that take
-- nothing or everything down.
return {
  name = "tiny",
  attacks = function(perspectives)
    local out = {}
    for k = 0, #perspectives do
      out[#out + 1] = { kind = "random-" .. k, random = k }
    end
    out[#out + 1] = { kind = "primary-only", sees = { "primary" } }
    return out
  end,
  outages = function()
    return { { kind = "none", p = 0 }, { kind = "all", p = 1 }, { kind = "remote-a", down = { "a" } } }
  end,
}
