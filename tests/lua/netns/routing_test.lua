-- Routing-level hijacks in network namespaces (tests/lab/netns.sh, root):
-- this process runs in the coordinator namespace; every perspective sends
-- from its own address over its own veth, and its own routing table decides
-- whether the victim's address 203.0.113.10 is reached directly or through
-- the attacker, who answers on that address (a simulated BGP hijack). The
-- victim's DNS is not hijacked: every perspective resolves www.nsl.test to
-- the same address, and only the route differs.
local T = require "mpic.testing"
local L = require "netns_lab"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local io_write = io.write
local os_execute, ipairs, tostring, string_format = os.execute, ipairs, tostring, string.format

local VICTIM, ATTACKER = "203.0.113.10", "203.0.113.66"
local env, sh, validate, http01 = L.env, L.sh, L.validate, L.http01

-- Route the victim's address for perspective i through the attacker (true)
-- or directly (false). Also resets any netem on the link.
local function route(i, hijacked)
  sh(string_format("ip route replace %s %s dev pc%d table 10%d", VICTIM, hijacked and ("via " .. ATTACKER) or "", i, i))
end

local function netem(i, spec)
  if spec then
    sh(string_format("tc qdisc replace dev pc%d root netem %s", i, spec))
  else
    os_execute(string_format("tc qdisc del dev pc%d root 2>/dev/null", i))
  end
end

local function reset()
  for i = 0, 6 do
    route(i, false)
    netem(i, nil)
  end
end

-- pc0 is the primary; pc1..pc6 the remotes, each sending from its own address
local function load(wait_all)
  local lines = {}
  for i = 0, 6 do
    local s = L.SITES[i + 1]
    lines[#lines + 1] = string_format(
      '  - {id: pc%d, rir: %s, location: {lat: %s, lon: %s}, resolvers: ["%s"], source_ipv4: 203.0.113.2%d}',
      i,
      s[1],
      s[2],
      s[3],
      env("MPIC_NETNS_DNS"),
      i
    )
  end
  L.load("netns", "netns-lab", wait_all, lines)
end

local function by_code(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do
    out[p.perspective_code] = p
  end
  return out
end

local function reason(resp) return tostring(resp.mpic_decision and resp.mpic_decision.reason) end

case("netns_no_hijack_all_corroborate", function()
  reset()
  load(true)
  local resp = validate(http01())
  eq(resp.is_valid, true, reason(resp))
  for _, p in ipairs(resp.perspectives) do
    eq(p.check_response.check_passed, true, p.perspective_code)
  end
end)

case("netns_two_routing_hijacks_of_six_are_outvoted", function()
  reset()
  route(2, true)
  route(4, true)
  load(true)
  local resp = validate(http01())
  eq(resp.is_valid, true, reason(resp))
  local by = by_code(resp)
  for _, id in ipairs({ "pc2", "pc4" }) do
    local cr = by[id].check_response
    eq(cr.check_passed, false, id)
    eq(cr.check_completed, true, id) -- the attacker answered: a real 404, not a network error
    contains(cr.errors[1].error_message, "404")
  end
  eq(by.pc1.check_response.check_passed, true)
  reset()
end)

case("netns_three_routing_hijacks_of_six_not_valid", function()
  reset()
  route(1, true)
  route(3, true)
  route(5, true)
  load(false)
  local resp = validate(http01())
  eq(resp.is_valid, false)
  contains(reason(resp), "quorum cannot be met")
  reset()
end)

case("netns_hijacked_primary_fails_the_attempt", function()
  reset()
  route(0, true)
  load(false)
  local resp = validate(http01())
  eq(resp.is_valid, false)
  eq(resp.primary_perspective.check_response.check_passed, false)
  reset()
end)

-- tc netem needs the kernel's sch_netem; without it these cases are not
-- run (and not counted), and the runner's output says so.
local function netem_available()
  local okx = os_execute("tc qdisc replace dev pc6 root netem delay 1ms 2>/dev/null")
  os_execute("tc qdisc del dev pc6 root 2>/dev/null")
  return okx == true
end

if not netem_available() then
  io_write(
    "SKIPPED: netns_netem_delay_changes_time_not_verdict, netns_netem_loss_with_hijacks_keeps_the_verdict"
      .. " (tc netem is not available: kernel module sch_netem)\n"
  )
  return
end

case("netns_netem_delay_changes_time_not_verdict", function()
  reset()
  load(true)
  local before = validate(http01())
  local fast = by_code(before).pc3.elapsed_ms
  netem(3, "delay 300ms")
  load(true)
  local after = validate(http01())
  netem(3, nil)
  eq(after.is_valid, before.is_valid)
  eq(after.is_valid, true, reason(after))
  local slow = by_code(after).pc3.elapsed_ms
  eq(by_code(after).pc3.check_response.check_passed, true)
  -- DNS query + TCP handshake + request: at least three delayed round trips
  ok(slow >= 900, string_format("pc3 took %d ms with 300 ms delay (was %d ms)", slow, fast))
  ok(slow > fast + 600, string_format("pc3 %d ms vs %d ms", slow, fast))
end, { timeout_ms = 30000 })

case("netns_netem_loss_with_hijacks_keeps_the_verdict", function()
  reset()
  route(2, true)
  netem(5, "loss 20%")
  netem(6, "delay 100ms 50ms")
  load(true)
  local resp = validate(http01())
  eq(resp.is_valid, true, reason(resp))
  route(4, true)
  load(false)
  local resp2 = validate(http01())
  eq(resp2.is_valid, false, reason(resp2))
  reset()
end, { timeout_ms = 40000 })
