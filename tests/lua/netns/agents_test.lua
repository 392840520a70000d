-- Remote perspectives as they are deployed: six `mpic agent` processes, each
-- in its own network namespace with its own route to the victim
-- (tests/lab/netns.sh with the mpic binary), reached over mutual TLS from
-- this process in the coordinator namespace; the primary is local (pc0).
-- A routing hijack is made inside an agent's namespace: only that agent's
-- path to 203.0.113.10 leads to the attacker.
local T = require "mpic.testing"
local mpic = require "mpic"
local orchestrator = require "mpic.orchestrator"
local case, eq, contains = T.case, T.eq, T.contains
local os_getenv, os_execute, io_open, ipairs, tostring, string_format, error =
  os.getenv, os.execute, io.open, ipairs, tostring, string.format, error

local DATE = "2026-12-16"
local AGENTS = tonumber(os_getenv("MPIC_NETNS_AGENTS") or "0")
if AGENTS < 6 then
  io.write("SKIPPED: agents_test.lua (the namespace lab was started without agents)\n")
  return
end

local function env(name)
  local v = os_getenv(name)
  if not v then error(name .. " is not set: run through tests/lab/test_netns.sh", 3) end
  return v
end

local SITES = { { "ARIN", 45.52, -122.68 }, { "RIPE", 50.11, 8.68 }, { "RIPE", 59.33, 18.07 },
                { "APNIC", 1.35, 103.82 }, { "LACNIC", -23.55, -46.63 }, { "AFRINIC", -26.20, 28.05 } }

local function sh(cmd)
  local okx, _, code = os_execute(cmd .. " 2>/dev/null")
  if not okx then error(string_format("command failed (%s): %s", tostring(code), cmd), 2) end
end

-- Route the victim's address for agent i through the attacker, or back.
local function hijack(i, on)
  local ns = env("MPIC_NETNS_PREFIX") .. "-ag" .. i
  if on then sh(string_format("ip netns exec %s ip route replace 203.0.113.10 via 203.0.113.66 dev eth0", ns))
  else os_execute(string_format("ip netns exec %s ip route del 203.0.113.10 2>/dev/null", ns)) end
end

local function reset() for i = 1, 6 do hijack(i, false) end end

local function load(wait_all)
  local root = package.loaded["mpic.paths"] and package.loaded["mpic.paths"].root or "."
  local dir, certs = env("MPIC_NETNS_DIR"), env("MPIC_NETNS_CERTS")
  local lines = {
    "issuer: {caa_domains: [ca.example]}",
    "policy: " .. (wait_all and (root .. "/tests/lua/scenarios/br_wait_all.lua") or (root .. "/policies/br.lua")),
    "selection_secret: netns-agents",
    "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 9000, dns_timeout_ms: 1000, dns_tries: 3}",
    "network: {allow_reserved_ips: true, http_port: 80, tls_port: 443}",
    string_format("audit: {path: %s/agents-coordinator-audit.jsonl, fsync: false}", dir),
    "primary: pc0",
    "perspectives:",
    string_format("  - {id: pc0, rir: ARIN, location: {lat: 39.04, lon: -77.49}, resolvers: [\"%s\"], "
      .. "source_ipv4: 203.0.113.20}", env("MPIC_NETNS_DNS")),
  }
  for i = 1, 6 do
    local s = SITES[i]
    lines[#lines + 1] = string_format("  - {id: ag%d, rir: %s, location: {lat: %s, lon: %s}, agent: {url: "
      .. "\"https://203.0.113.4%d:8443\", ca: %s/ca.pem, cert: %s/coordinator.pem, key: %s/coordinator.key, "
      .. "timeout_ms: 5000}}", i, s[1], s[2], s[3], i, certs, certs, certs)
  end
  local path = dir .. "/agents-coordinator.yaml"
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

local function validate()
  local resp, status = orchestrator.validate(http01(), { date = DATE })
  eq(status, 200, mpic.json.encode(resp))
  return resp
end

local function by_code(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do out[p.perspective_code] = p.check_response end
  return out
end

local function reason(resp) return tostring(resp.mpic_decision and resp.mpic_decision.reason) end

case("netns_agents_all_corroborate_from_their_own_namespaces", function()
  reset(); load(true)
  local resp = validate()
  eq(resp.is_valid, true, reason(resp))
  local by = by_code(resp)
  for i = 1, 6 do eq(by["ag" .. i].check_passed, true, "ag" .. i) end
end, { timeout_ms = 30000 })

case("netns_agents_two_hijacked_paths_are_outvoted", function()
  reset(); hijack(2, true); hijack(5, true); load(true)
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
  reset(); hijack(1, true); hijack(3, true); hijack(6, true); load(false)
  local resp = validate()
  reset()
  eq(resp.is_valid, false)
  contains(reason(resp), "quorum cannot be met")
end, { timeout_ms = 30000 })
