-- The same lab through the command line: `mpic validate --json` prints the
-- Open MPIC response and exits 0 (valid), 1 (not valid) or 2 (usage,
-- configuration or request error).
local T = require "mpic.testing"
local L = require "scenario_lab"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok
local io_open, io_popen, tostring = io.open, io.popen, tostring

local SIX = { pdx = "legit", fra = "evil", sto = "legit", sgp = "evil", gru = "legit", jnb = "legit" }

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs the binary (blocking: nothing else runs in this process meanwhile).
local function validate_cli(config, request_text, extra)
  local dir = L.env("MPIC_LAB_DIR")
  local req = dir .. "/cli-request.json"
  local f = assert(io_open(req, "w"))
  f:write(request_text)
  f:close()
  local cmd = string.format(
    '%s validate --config %s --request %s --json --date %s %s 2>%s/cli.err; echo "exit=$?"',
    q(L.env("MPIC_LAB_MPIC")),
    q(config),
    q(req),
    L.DATE,
    extra or "",
    dir
  )
  local p = assert(io_popen(cmd))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)exit=(%d+)%s*$")
  return body, tonumber(code)
end

case("cli_validate_json_valid_exits_0", function()
  local config = L.write_config { primary = "legit", remotes = SIX }
  local body, code = validate_cli(config, mpic.json.encode(L.dns01("owner")))
  eq(code, 0, body)
  local resp = mpic.json.decode(body)
  ok(resp, "JSON on stdout")
  eq(resp.is_valid, true)
  eq(#resp.perspectives, 6)
end)

case("cli_validate_json_hijacked_majority_exits_1", function()
  local config = L.write_config {
    primary = "legit",
    remotes = { pdx = "evil", fra = "evil", sto = "legit", sgp = "evil", gru = "legit", jnb = "legit" },
  }
  local body, code = validate_cli(config, mpic.json.encode(L.http01("owner")))
  eq(code, 1, body)
  eq(mpic.json.decode(body).is_valid, false)
end)

case("cli_validate_bad_request_exits_2", function()
  local config = L.write_config { primary = "legit", remotes = SIX }
  local body, code = validate_cli(config, '{"check_type": "dcv", "domain_or_ip_target": "www.scen.test"}')
  eq(code, 2, body)
  local resp = mpic.json.decode(body)
  eq(resp.error, "request-validation-failed")
end)

-- RFC 8657: the request's caa_check_parameters.validation_method reaches the
-- CAA checker (as its label) and decides a record with validationmethods
case("cli_validate_caa_validationmethods_follows_the_request_method", function()
  local config = L.write_config {
    primary = "legit",
    remotes = { pdx = "legit", fra = "legit", sto = "legit", sgp = "legit", gru = "legit", jnb = "legit" },
  }
  local req = L.caa("caa-methods.scen.test")
  for _, m in ipairs({ "acme-dns-01", "dns-01" }) do
    req.caa_check_parameters = { validation_method = m }
    local body, code = validate_cli(config, mpic.json.encode(req))
    eq(code, 0, m .. ": " .. body)
    eq(mpic.json.decode(body).caa_check_parameters.validation_method, m, "echoed as sent")
  end
  req.caa_check_parameters = { validation_method = "acme-http-01" }
  local body, code = validate_cli(config, mpic.json.encode(req))
  eq(code, 1, body)
  ok(body:find("validation method not permitted by validationmethods", 1, true), body)
  req.caa_check_parameters = nil
  body, code = validate_cli(config, mpic.json.encode(req))
  eq(code, 1, body)
  ok(body:find("request names no method", 1, true), body)
end)

case("cli_validate_bad_config_exits_2", function()
  local dir = L.env("MPIC_LAB_DIR")
  local f = assert(io_open(dir .. "/bad.yaml", "w"))
  f:write("issuer: {caa_domains: [ca.example]}\nperspectives: []\nsurprise: 1\n")
  f:close()
  local body, code = validate_cli(dir .. "/bad.yaml", mpic.json.encode(L.dns01("owner")))
  eq(code, 2, tostring(body))
end)
