-- Routing-level hijacks in network namespaces (tests/lab/netns.sh, root):
-- this process runs in the coordinator namespace; every perspective sends
-- from its own address over its own veth, and its own routing table decides
-- whether the victim's address 203.0.113.10 is reached directly or through
-- the attacker, who answers on that address (a simulated BGP hijack). The
-- victim's DNS is not hijacked: every perspective resolves www.nsl.test to
-- the same address, and only the route differs.
local T = require "mpic.testing"
local mpic = require "mpic"
local orchestrator = require "mpic.orchestrator"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local io_write = io.write
local os_getenv, os_execute, io_open, ipairs, tostring, string_format, error =
  os.getenv, os.execute, io.open, ipairs, tostring, string.format, error

local DATE = "2026-12-16"
local VICTIM, ATTACKER = "203.0.113.10", "203.0.113.66"

local function env(name)
  local v = os_getenv(name)
  if not v then error(name .. " is not set: run through tests/lab/test_netns.sh", 3) end
  return v
end

-- pc0 is the primary; pc1..pc6 the remotes
local SITES = {
  { "ARIN", 39.04, -77.49 }, { "ARIN", 45.52, -122.68 }, { "RIPE", 50.11, 8.68 }, { "RIPE", 59.33, 18.07 },
  { "APNIC", 1.35, 103.82 }, { "LACNIC", -23.55, -46.63 }, { "AFRINIC", -26.20, 28.05 },
}

local function sh(cmd)
  local okx, _, code = os_execute(cmd .. " 2>/dev/null")
  if not okx then error(string_format("command failed (%s): %s", tostring(code), cmd), 2) end
end

-- Route the victim's address for perspective i through the attacker (true)
-- or directly (false). Also resets any netem on the link.
local function route(i, hijacked)
  sh(string_format("ip route replace %s %s dev pc%d table 10%d", VICTIM,
    hijacked and ("via " .. ATTACKER) or "", i, i))
end

local function netem(i, spec)
  if spec then sh(string_format("tc qdisc replace dev pc%d root netem %s", i, spec))
  else os_execute(string_format("tc qdisc del dev pc%d root 2>/dev/null", i)) end
end

local function reset()
  for i = 0, 6 do route(i, false); netem(i, nil) end
end

local function load(wait_all)
  local root = package.loaded["mpic.paths"] and package.loaded["mpic.paths"].root or "."
  local dir = env("MPIC_NETNS_DIR")
  local lines = {
    "issuer: {caa_domains: [ca.example]}",
    "policy: " .. (wait_all and (root .. "/tests/lua/scenarios/br_wait_all.lua") or (root .. "/policies/br.lua")),
    "selection_secret: netns-lab",
    "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 9000, dns_timeout_ms: 1000, dns_tries: 3}",
    "network: {allow_reserved_ips: true, http_port: 80, tls_port: 443}",
    string_format("audit: {path: %s/audit.jsonl, fsync: false}", dir),
    "primary: pc0",
    "perspectives:",
  }
  for i = 0, 6 do
    local s = SITES[i + 1]
    lines[#lines + 1] = string_format(
      "  - {id: pc%d, rir: %s, location: {lat: %s, lon: %s}, resolvers: [\"%s\"], source_ipv4: 203.0.113.2%d}",
      i, s[1], s[2], s[3], env("MPIC_NETNS_DNS"), i)
  end
  local path = dir .. "/netns.yaml"
  local f = assert(io_open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local cfg, err = mpic.load_config(path)
  if not cfg then error(tostring(err), 2) end
  orchestrator.reset()
end

local function http01()
  return { check_type = "dcv", domain_or_ip_target = "www.nsl.test",
           dcv_check_parameters = { validation_method = "acme-http-01", token = env("MPIC_NETNS_OWNER_TOKEN"),
                                    key_authorization = env("MPIC_NETNS_OWNER_KA") } }
end

local function validate(req)
  local resp, status = orchestrator.validate(req, { date = DATE })
  eq(status, 200, mpic.json.encode(resp))
  return resp
end

local function by_code(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do out[p.perspective_code] = p end
  return out
end

local function reason(resp) return tostring(resp.mpic_decision and resp.mpic_decision.reason) end

case("netns_no_hijack_all_corroborate", function()
  reset(); load(true)
  local resp = validate(http01())
  eq(resp.is_valid, true, reason(resp))
  for _, p in ipairs(resp.perspectives) do eq(p.check_response.check_passed, true, p.perspective_code) end
end)

case("netns_two_routing_hijacks_of_six_are_outvoted", function()
  reset(); route(2, true); route(4, true); load(true)
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
  reset(); route(1, true); route(3, true); route(5, true); load(false)
  local resp = validate(http01())
  eq(resp.is_valid, false)
  contains(reason(resp), "quorum cannot be met")
  reset()
end)

case("netns_hijacked_primary_fails_the_attempt", function()
  reset(); route(0, true); load(false)
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
  io_write("SKIPPED: netns_netem_delay_changes_time_not_verdict, netns_netem_loss_with_hijacks_keeps_the_verdict"
    .. " (tc netem is not available: kernel module sch_netem)\n")
  return
end

case("netns_netem_delay_changes_time_not_verdict", function()
  reset(); load(true)
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
  reset(); route(2, true); netem(5, "loss 20%"); netem(6, "delay 100ms 50ms"); load(true)
  local resp = validate(http01())
  eq(resp.is_valid, true, reason(resp))
  route(4, true); load(false)
  local resp2 = validate(http01())
  eq(resp2.is_valid, false, reason(resp2))
  reset()
end, { timeout_ms = 40000 })
