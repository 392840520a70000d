-- Remote perspectives as they are deployed: six `mpic agent` processes, each
-- in its own network namespace with its own route to the victim
-- (tests/lab/netns.sh with the mpic binary), reached over mutual TLS from
-- this process in the coordinator namespace; the primary is local (pc0).
-- A routing hijack is made inside an agent's namespace: only that agent's
-- path to 203.0.113.10 leads to the attacker.
local T = require "mpic.testing"
local L = require "netns_lab"
local case, eq, contains = T.case, T.eq, T.contains
local os_getenv, os_execute, ipairs, tostring, string_format = os.getenv, os.execute, ipairs, tostring, string.format

local AGENTS = tonumber(os_getenv("MPIC_NETNS_AGENTS") or "0")
if AGENTS < 6 then
  io.write("SKIPPED: agents_test.lua (the namespace lab was started without agents)\n")
  return
end
local env, sh, validate = L.env, L.sh, L.validate

-- Route the victim's address for agent i through the attacker, or back.
local function hijack(i, on)
  local ns = env("MPIC_NETNS_PREFIX") .. "-ag" .. i
  if on then
    sh(string_format("ip netns exec %s ip route replace 203.0.113.10 via 203.0.113.66 dev eth0", ns))
  else
    os_execute(string_format("ip netns exec %s ip route del 203.0.113.10 2>/dev/null", ns))
  end
end

local function reset()
  for i = 1, 6 do
    hijack(i, false)
  end
end

-- pc0 is the local primary; ag1..ag6 the agents, at the remote sites
local function load(wait_all)
  local certs = env("MPIC_NETNS_CERTS")
  local s0 = L.SITES[1]
  local lines = {
    string_format(
      '  - {id: pc0, rir: %s, location: {lat: %s, lon: %s}, resolvers: ["%s"], ' .. "source_ipv4: 203.0.113.20}",
      s0[1],
      s0[2],
      s0[3],
      env("MPIC_NETNS_DNS")
    ),
  }
  for i = 1, 6 do
    local s = L.SITES[i + 1]
    lines[#lines + 1] = string_format(
      "  - {id: ag%d, rir: %s, location: {lat: %s, lon: %s}, agent: {url: "
        .. '"https://203.0.113.4%d:8443", ca: %s/ca.pem, cert: %s/coordinator.pem, key: %s/coordinator.key, '
        .. "timeout_ms: 5000}}",
      i,
      s[1],
      s[2],
      s[3],
      i,
      certs,
      certs,
      certs
    )
  end
  L.load("agents-coordinator", "netns-agents", wait_all, lines)
end

local function by_code(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do
    out[p.perspective_code] = p.check_response
  end
  return out
end

local function reason(resp) return tostring(resp.mpic_decision and resp.mpic_decision.reason) end

case("netns_agents_all_corroborate_from_their_own_namespaces", function()
  reset()
  load(true)
  local resp = validate()
  eq(resp.is_valid, true, reason(resp))
  local by = by_code(resp)
  for i = 1, 6 do
    eq(by["ag" .. i].check_passed, true, "ag" .. i)
  end
end, { timeout_ms = 30000 })

case("netns_agents_two_hijacked_paths_are_outvoted", function()
  reset()
  hijack(2, true)
  hijack(5, true)
  load(true)
  local resp = validate()
  reset()
  eq(resp.is_valid, true, reason(resp))
  local by = by_code(resp)
  for _, id in ipairs({ "ag2", "ag5" }) do
    eq(by[id].check_passed, false, id)
    eq(by[id].check_completed, true, id) -- the attacker answered the agent: a real 404
    contains(by[id].errors[1].error_message, "404")
  end
  eq(by.ag1.check_passed, true)
end, { timeout_ms = 30000 })

case("netns_agents_three_hijacked_paths_are_not_valid", function()
  reset()
  hijack(1, true)
  hijack(3, true)
  hijack(6, true)
  load(false)
  local resp = validate()
  reset()
  eq(resp.is_valid, false)
  contains(reason(resp), "quorum cannot be met")
end, { timeout_ms = 30000 })
