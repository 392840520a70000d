-- netns_lab: what the namespace-lab tests share (tests/lab/netns.sh sets the
-- MPIC_NETNS_* variables): the environment, the perspectives' sites, shell
-- commands that must succeed, the configuration they load, and the
-- acme-http-01 validation of the owner's token.
local T = require "mpic.testing"
local mpic = require "mpic"
local orchestrator = require "mpic.orchestrator"
local os_getenv, os_execute, io_open, tostring, string_format, error =
  os.getenv, os.execute, io.open, tostring, string.format, error

local M = {}

M.DATE = "2026-12-16"

function M.env(name)
  local v = os_getenv(name)
  if not v then error(name .. " is not set: run through tests/lab/test_netns.sh", 3) end
  return v
end

-- pc0 (the primary, ARIN) first, then one site per remote
M.SITES = {
  { "ARIN", 39.04, -77.49 },
  { "ARIN", 45.52, -122.68 },
  { "RIPE", 50.11, 8.68 },
  { "RIPE", 59.33, 18.07 },
  { "APNIC", 1.35, 103.82 },
  { "LACNIC", -23.55, -46.63 },
  { "AFRINIC", -26.20, 28.05 },
}

function M.sh(cmd)
  local okx, _, code = os_execute(cmd .. " 2>/dev/null")
  if not okx then error(string_format("command failed (%s): %s", tostring(code), cmd), 2) end
end

--- Write NAME.yaml in the lab directory (policy br.lua, or br_wait_all.lua
--- when wait_all) with the perspective lines given, load it, and reset the
--- orchestrator.
function M.load(name, secret, wait_all, perspective_lines)
  local root = package.loaded["mpic.paths"] and package.loaded["mpic.paths"].root or "."
  local dir = M.env("MPIC_NETNS_DIR")
  local lines = {
    "issuer: {caa_domains: [ca.example]}",
    "policy: " .. (wait_all and (root .. "/tests/lua/scenarios/br_wait_all.lua") or (root .. "/policies/br.lua")),
    "selection_secret: " .. secret,
    "defaults: {perspective_count: 6, max_attempts: 1, timeout_ms: 9000, dns_timeout_ms: 1000, dns_tries: 3}",
    "network: {allow_reserved_ips: true, http_port: 80, tls_port: 443}",
    string_format("audit: {path: %s/%s-audit.jsonl, fsync: false}", dir, name),
    "primary: pc0",
    "perspectives:",
  }
  for _, l in ipairs(perspective_lines) do
    lines[#lines + 1] = l
  end
  local path = dir .. "/" .. name .. ".yaml"
  local f = assert(io_open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  local cfg, err = mpic.load_config(path)
  if not cfg then error(tostring(err), 2) end
  orchestrator.reset()
end

function M.http01()
  return {
    check_type = "dcv",
    domain_or_ip_target = "www.nsl.test",
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = M.env("MPIC_NETNS_OWNER_TOKEN"),
      key_authorization = M.env("MPIC_NETNS_OWNER_KA"),
    },
  }
end

--- A validation that must be answered (HTTP 200); returns the response.
function M.validate(req)
  local resp, status = orchestrator.validate(req or M.http01(), { date = M.DATE })
  T.eq(status, 200, mpic.json.encode(resp))
  return resp
end

return M
