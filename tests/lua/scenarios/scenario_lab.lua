-- scenario_lab: helpers for the scenario tests (tests/lab/test_scenarios.sh
-- starts the lab and exports its addresses; see tests/lab/lab.sh).
--
--   local L = require "scenario_lab"
--   L.load{ primary = "legit", remotes = { pdx = "legit", fra = "evil", ... } }
--   local resp, status = L.validate(request)
--
-- A view names the resolver a perspective uses: legit (the owner's DNS),
-- evil (the attacker's: a hijacked path), broken (SERVFAIL: a zone that is
-- Bogus behind unbound), blackhole (no answer: timeout), validating (unbound
-- validating the lab's signed zone).
local mpic = require "mpic"
local orchestrator = require "mpic.orchestrator"

local M = {}
local os_getenv, io_open, error, pairs, ipairs, tostring, type =
  os.getenv, io.open, error, pairs, ipairs, tostring, type
local debug_getinfo, assert, package = debug.getinfo, assert, package
local string_format, table_concat, table_sort = string.format, table.concat, table.sort

M.DATE = "2026-12-16" -- 5 remote perspectives required from 2026-12-15

local function env(name)
  local v = os_getenv(name)
  if not v or v == "" then
    error(string_format("%s is not set: run this suite through tests/lab/test_scenarios.sh", name), 3)
  end
  return v
end
M.env = env

-- Perspective sites: city-centre coordinates, pairwise >= 500 km apart and
-- >= 500 km from the primary (Ashburn).
M.SITES = {
  primary = { rir = "ARIN", lat = 39.04, lon = -77.49 },
  pdx = { rir = "ARIN", lat = 45.52, lon = -122.68 },
  ord = { rir = "ARIN", lat = 41.88, lon = -87.63 },
  dfw = { rir = "ARIN", lat = 32.78, lon = -96.80 },
  mia = { rir = "ARIN", lat = 25.76, lon = -80.19 },
  fra = { rir = "RIPE", lat = 50.11, lon = 8.68 },
  sto = { rir = "RIPE", lat = 59.33, lon = 18.07 },
  sgp = { rir = "APNIC", lat = 1.35, lon = 103.82 },
  syd = { rir = "APNIC", lat = -33.87, lon = 151.21 },
  gru = { rir = "LACNIC", lat = -23.55, lon = -46.63 },
  jnb = { rir = "AFRINIC", lat = -26.20, lon = 28.05 },
}

local VIEW_ENV = {
  legit = "MPIC_LAB_DNS_LEGIT",
  evil = "MPIC_LAB_DNS_EVIL",
  broken = "MPIC_LAB_DNS_BROKEN",
  blackhole = "MPIC_LAB_DNS_BLACKHOLE",
  validating = "MPIC_LAB_DNS_VALIDATING",
}

function M.resolver(view)
  local var = VIEW_ENV[view]
  if not var then error("unknown view " .. tostring(view), 2) end
  return env(var)
end

local function root()
  local paths = package.loaded["mpic.paths"]
  return paths and paths.root or "."
end

local function here()
  local src = debug_getinfo(1, "S").source
  return (src:match("^@(.*)/[^/]*$")) or "."
end

local counter = 0

--[[ Write a configuration and make it the current one.
spec.primary: view of the primary perspective (nil: no primary, Open MPIC model)
spec.remotes: { site_id = view, ... } (the remote perspectives)
spec.count: perspective_count (default: every remote)
spec.wait_all: use the lab policy that waits for every perspective
spec.network: extra network keys (YAML flow text), e.g. "http_port: 15580"
Returns the path of the file. ]]
function M.config_text(spec)
  local ids = {}
  for id in pairs(spec.remotes) do
    ids[#ids + 1] = id
  end
  table_sort(ids)
  local lines = {
    'issuer: {caa_domains: [ca.example], account_uri_prefixes: ["https://ca.example/acme/acct/"]}',
    "policy: " .. (spec.wait_all and (here() .. "/br_wait_all.lua") or (root() .. "/policies/br.lua")),
    "selection_secret: scenario-lab",
    string_format(
      "defaults: {perspective_count: %d, max_attempts: 1, timeout_ms: %d, dns_timeout_ms: %d, dns_tries: 2}",
      spec.count or #ids,
      spec.timeout_ms or 5000,
      spec.dns_timeout_ms or 400
    ),
    string_format(
      "network: {allow_reserved_ips: true, http_port: %s, tls_port: %s}",
      spec.http_port or env("MPIC_LAB_HTTP_PORT"),
      spec.tls_port or env("MPIC_LAB_TLS_PORT")
    ),
    string_format("audit: {path: %s/audit.jsonl, fsync: false}", env("MPIC_LAB_DIR")),
  }
  if spec.primary then lines[#lines + 1] = "primary: primary" end
  lines[#lines + 1] = "perspectives:"
  local function add(id, view)
    local s = M.SITES[id]
    if not s then error("unknown site " .. tostring(id), 3) end
    local resolver = spec.resolvers and spec.resolvers[view] or M.resolver(view)
    lines[#lines + 1] = string_format(
      '  - {id: %s, rir: %s, location: {lat: %s, lon: %s}, resolvers: ["%s"]}',
      id,
      s.rir,
      s.lat,
      s.lon,
      resolver
    )
  end
  if spec.primary then add("primary", spec.primary) end
  for _, id in ipairs(ids) do
    add(id, spec.remotes[id])
  end
  return table_concat(lines, "\n") .. "\n"
end

function M.write_config(spec)
  counter = counter + 1
  local path = string_format("%s/scenario-%d.yaml", env("MPIC_LAB_DIR"), counter)
  local f = assert(io_open(path, "w"))
  f:write(M.config_text(spec))
  f:close()
  return path
end

function M.load(spec)
  local path = M.write_config(spec)
  local cfg, err = mpic.load_config(path)
  if not cfg then error("config " .. path .. ": " .. tostring(err), 2) end
  orchestrator.reset()
  return path
end

--- Run one validation in-process on the lab date. Raises unless status 200.
function M.validate(req)
  local resp, status = orchestrator.validate(req, { date = M.DATE })
  if status ~= 200 then
    error(string_format("validation returned %s: %s", tostring(status), mpic.json.encode(resp)), 2)
  end
  return resp
end

--- perspective_code -> check_response of the final attempt.
function M.by_code(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do
    out[p.perspective_code] = p.check_response
  end
  return out
end

--- Number of remotes whose check passed.
function M.passes(resp)
  local n = 0
  for _, p in ipairs(resp.perspectives) do
    if p.check_response.check_passed then n = n + 1 end
  end
  return n
end

--- All error messages of one check_response, joined.
function M.errors_text(cr)
  local out = {}
  if type(cr.errors) == "table" then
    for _, e in ipairs(cr.errors) do
      out[#out + 1] = tostring(e.error_type) .. ": " .. tostring(e.error_message)
    end
  end
  return table_concat(out, " | ")
end

-- Requests --------------------------------------------------------------------
local function b64url_sha256(s) return mpic.base64url(mpic.sha256(s)) end
M.b64url_sha256 = b64url_sha256

function M.dns01(who)
  local ka = who == "evil" and env("MPIC_LAB_EVIL_KA") or env("MPIC_LAB_OWNER_KA")
  return {
    check_type = "dcv",
    domain_or_ip_target = "www.scen.test",
    trace_identifier = "scenario-dns01-" .. who,
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = b64url_sha256(ka) },
  }
end

function M.http01(who)
  local token = who == "evil" and env("MPIC_LAB_EVIL_TOKEN")
    or who == "redirect" and env("MPIC_LAB_REDIR_TOKEN")
    or env("MPIC_LAB_OWNER_TOKEN")
  local ka = who == "evil" and env("MPIC_LAB_EVIL_KA")
    or who == "redirect" and env("MPIC_LAB_REDIR_KA")
    or env("MPIC_LAB_OWNER_KA")
  return {
    check_type = "dcv",
    domain_or_ip_target = "www.scen.test",
    trace_identifier = "scenario-http01-" .. who,
    dcv_check_parameters = { validation_method = "acme-http-01", token = token, key_authorization = ka },
  }
end

function M.website(who)
  local value = who == "evil" and env("MPIC_LAB_EVIL_WEB_VALUE") or env("MPIC_LAB_OWNER_WEB_VALUE")
  return {
    check_type = "dcv",
    domain_or_ip_target = "www.scen.test",
    trace_identifier = "scenario-web-" .. who,
    dcv_check_parameters = {
      validation_method = "website-change",
      challenge_value = value,
      http_token_path = "mpic.txt",
    },
  }
end

function M.tlsalpn(who)
  local ka = who == "evil" and env("MPIC_LAB_EVIL_KA") or env("MPIC_LAB_OWNER_KA")
  return {
    check_type = "dcv",
    domain_or_ip_target = "tls.scen.test",
    trace_identifier = "scenario-alpn-" .. who,
    dcv_check_parameters = { validation_method = "acme-tls-alpn-01", key_authorization_hash = b64url_sha256(ka) },
  }
end

function M.caa(name)
  return { check_type = "caa", domain_or_ip_target = name, trace_identifier = "scenario-caa-" .. name }
end

return M
