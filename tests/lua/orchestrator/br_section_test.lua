-- The BR section recorded for a validation comes from the declaration:
-- br_section_ip for an IP address target, br_section otherwise (audit line
-- and the response's mpic_decision).
local T = require "mpic.testing"
local mpic = require "mpic"
local config = require "mpic.config"
local perspectives = require "mpic.perspectives"
local orchestrator = require "mpic.orchestrator"
local case, eq = T.case, T.eq

local function setup()
  local audit = os.tmpname()
  local yaml = [[
issuer: {caa_domains: [ca.example]}
policy: policies/br.lua
selection_secret: test-secret
defaults: {perspective_count: 5, max_attempts: 1, timeout_ms: 2000}
audit: {path: ]] .. audit .. [[}
network: {allow_reserved_ips: true}
perspectives:
  - {id: pdx,     rir: ARIN,   location: {lat: 45.52, lon: -122.68}, resolvers: ["127.0.0.1:9"]}
  - {id: fra,     rir: RIPE,   location: {lat: 50.11, lon: 8.68},    resolvers: ["127.0.0.1:9"]}
  - {id: sto,     rir: RIPE,   location: {lat: 59.33, lon: 18.07},   resolvers: ["127.0.0.1:9"]}
  - {id: sgp,     rir: APNIC,  location: {lat: 1.35,  lon: 103.82},  resolvers: ["127.0.0.1:9"]}
  - {id: syd,     rir: APNIC,  location: {lat: -33.87, lon: 151.21}, resolvers: ["127.0.0.1:9"]}
  - {id: gru,     rir: LACNIC, location: {lat: -23.55, lon: -46.63}, resolvers: ["127.0.0.1:9"]}
]]
  local cfg = assert(config.parse(yaml, "test.yaml", package.loaded["mpic.paths"].root))
  perspectives.configure(cfg)
  mpic.config = cfg
  orchestrator.reset()
  return audit
end

local function pass() return { passed = true, completed = true, details = {} } end

local function last_line(path)
  local last
  for line in io.lines(path) do
    last = line
  end
  return mpic.json.decode(last)
end

case("br_section_ip_for_ip_targets_in_audit_and_response", function()
  local audit = setup()
  local function http01(target)
    return {
      check_type = "dcv",
      domain_or_ip_target = target,
      dcv_check_parameters = { validation_method = "acme-http-01", token = "tok", key_authorization = "ka" },
    }
  end
  local resp, status = orchestrator.validate(http01("192.0.2.1"), { date = "2026-12-16", run_check = pass })
  eq(status, 200)
  eq(resp.mpic_decision.br_section, "3.2.2.5.6")
  eq(last_line(audit).br_section, "3.2.2.5.6")
  resp = orchestrator.validate(http01("example.com"), { date = "2026-12-16", run_check = pass })
  eq(resp.mpic_decision.br_section, "3.2.2.4.19")
  eq(last_line(audit).br_section, "3.2.2.4.19")
  os.remove(audit)
end)
