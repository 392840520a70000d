--[[
default.lua: the adversary and outage model `mpic simulate` uses when no
--model is given. A model file runs in the policy sandbox (see
lua/mpic/policy.lua: no io, os, load, debug, random; require gives only
mpic.select, mpic.geo and mpic.quorum; every call has an instruction limit)
and returns a table; the contract is in docs/POLICIES.md:

  return {
    name = "default",                        -- required string
    description = "...",                     -- optional string
    attacks = function(perspectives) end,    -- required: list of attack scenarios
    outages = function(perspectives) end,    -- required: list of outage scenarios
  }

perspectives: the configuration's perspectives, primary included, each
{id, rir, location = {lat, lon}, provider (string or nil), remote, is_primary}.
An attack scenario is {kind, sees = {ids} | random = k, weight}: the
perspectives in `sees` (or k drawn at random per trial) see the attacker's
answer, the others the legitimate one. An outage scenario is {kind,
down = {ids}, p, weight}: the perspectives in `down` are down, and so is
every other one independently with probability p. Scenarios of one kind are
drawn in proportion to their weight (default 1).

THIS MODEL
- regional: an attacker at each point of a 10-degree grid (latitude -50 to
  70) captures every perspective within RADIUS_KM of it (a route hijack seen
  regionally); points that capture nothing are left out.
- rir: every perspective of one RIR (one scenario per RIR present).
- provider: every perspective sharing a `provider` (a perspective without a
  provider is a provider of its own).
- random-k: k perspectives drawn uniformly per trial, for k = n//2 .. n - 1
  (n counts the primary).
- Outages: independent (each perspective down with probability P_DOWN), and
  provider (one whole provider down, each provider equally likely).
]]
local geo = require "mpic.geo"

local RADIUS_KM = 2000
local P_DOWN = 0.05

local function provider_groups(perspectives)
  local groups, order = {}, {}
  for _, p in ipairs(perspectives) do
    local key = p.provider and ("provider " .. p.provider) or ("perspective " .. p.id)
    if not groups[key] then
      groups[key] = {}
      order[#order + 1] = key
    end
    local g = groups[key]
    g[#g + 1] = p.id
  end
  local out = {}
  for i, key in ipairs(order) do
    out[i] = groups[key]
  end
  return out
end

local function attacks(perspectives)
  local out = {}
  for lat = -50, 70, 10 do
    for lon = -180, 170, 10 do
      local here = { lat = lat, lon = lon }
      local sees = {}
      for _, p in ipairs(perspectives) do
        if geo.distance_km(here, p.location) <= RADIUS_KM then sees[#sees + 1] = p.id end
      end
      if #sees > 0 then out[#out + 1] = { kind = "regional", sees = sees } end
    end
  end
  local by_rir, rirs = {}, {}
  for _, p in ipairs(perspectives) do
    if not by_rir[p.rir] then
      by_rir[p.rir] = {}
      rirs[#rirs + 1] = p.rir
    end
    local l = by_rir[p.rir]
    l[#l + 1] = p.id
  end
  for _, r in ipairs(rirs) do
    out[#out + 1] = { kind = "rir", sees = by_rir[r] }
  end
  for _, g in ipairs(provider_groups(perspectives)) do
    out[#out + 1] = { kind = "provider", sees = g }
  end
  for k = #perspectives // 2, #perspectives - 1 do
    out[#out + 1] = { kind = "random-" .. k, random = k }
  end
  return out
end

local function outages(perspectives)
  local out = { { kind = "independent", p = P_DOWN } }
  for _, g in ipairs(provider_groups(perspectives)) do
    out[#out + 1] = { kind = "provider", down = g }
  end
  return out
end

return {
  name = "default",
  description = "regional ("
    .. RADIUS_KM
    .. " km), RIR-wide, provider-wide and k-random hijacks; "
    .. "independent (p = "
    .. P_DOWN
    .. ") and whole-provider outages",
  attacks = attacks,
  outages = outages,
}
