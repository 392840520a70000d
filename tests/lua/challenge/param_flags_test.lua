-- `mpic validate --param k=v`: each value is typed by the method's declared
-- parameter schema (not guessed from its text), and a parameter the method
-- does not declare is refused with the ones it takes.
local T = require "mpic.testing"
local challenges = require "mpic.challenges"
local validate_cmd = require "mpic.cmd.validate"
local case, eq, contains = T.case, T.eq, T.contains

local REG = challenges.load()

local function flags(method, params)
  return {
    check = method == "caa" and "caa" or "dcv",
    method = method ~= "caa" and method or nil,
    target = "example.com",
    param = params,
  }
end

case("param_all_digit_string_stays_a_string", function()
  local req =
    assert(validate_cmd.request_from_flags(flags("acme-http-01", { "token=12345", "key_authorization=007" }), REG))
  eq(req.dcv_check_parameters.token, "12345")
  eq(req.dcv_check_parameters.key_authorization, "007")
  eq(challenges.validate_params(REG.by_name["acme-http-01"], req.dcv_check_parameters), {})
end)

case("param_unknown_name_refused_with_the_known_ones", function()
  local req, err = validate_cmd.request_from_flags(flags("acme-http-01", { "tokn=x" }), REG)
  eq(req, nil)
  contains(err, "--param tokn: acme-http-01 takes no parameter tokn (it takes: http_headers, key_authorization, token)")
end)

case("param_lists_and_booleans_by_schema", function()
  local req =
    assert(validate_cmd.request_from_flags(flags("dns-persistent", { 'issuer_domain_names=["ca.example"]' }), REG))
  eq(req.dcv_check_parameters.issuer_domain_names, { "ca.example" })
  local _, err = validate_cmd.request_from_flags(flags("dns-persistent", { "issuer_domain_names=ca.example" }), REG)
  contains(err, "--param issuer_domain_names must be JSON (an array)")
end)

case("param_unknown_method_keeps_strings", function()
  local req = assert(validate_cmd.request_from_flags(flags("no-such-method", { "x=1" }), REG))
  eq(req.dcv_check_parameters.x, "1")
end)
