-- What one Open MPIC request may carry (mpic.request LIMITS): unknown
-- parameters are refused against the challenge's declared schema, every
-- parameter value, key count and echoed string is bounded, and a CAA
-- request's validation_method reaches the checker as its RFC 8657 label.
local T = require "mpic.testing"
local request = require "mpic.request"
local util = require "mpic.core.util"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local DATE = "2026-12-16"
local HASH = ("A"):rep(43)
local L = request.LIMITS

local function cfg() return T.config { defaults = { perspective_count = 5, max_attempts = 1 } } end

local function run(req, outcomes)
  return T.scenario { config = cfg(), date = DATE, request = req, outcomes = outcomes or { ["*"] = "pass" } }
end

local function dcv(params, extra)
  local p = { validation_method = "acme-dns-01", key_authorization_hash = HASH }
  for k, v in pairs(params or {}) do
    p[k] = v
  end
  local r = { check_type = "dcv", domain_or_ip_target = "example.com", dcv_check_parameters = p }
  for k, v in pairs(extra or {}) do
    r[k] = v
  end
  return r
end

local function caa(params, extra)
  local r = { check_type = "caa", domain_or_ip_target = "example.com", caa_check_parameters = params }
  for k, v in pairs(extra or {}) do
    r[k] = v
  end
  return r
end

local function messages(r)
  local out = {}
  for i, is in ipairs(r.issues or {}) do
    out[i] = is.message
  end
  return table.concat(out, " | ")
end

local function biggest_message(r)
  local n = 0
  for _, is in ipairs(r.issues or {}) do
    if #is.message > n then n = #is.message end
  end
  return n
end

-- a JSON array of n empty objects, as it decodes
local function empties(n)
  local t = setmetatable({}, util.array_mt)
  for i = 1, n do
    t[i] = {}
  end
  return t
end

case("unknown_dcv_parameter_is_a_400_naming_it", function()
  local r = run(dcv({ junk = empties(5000) }))
  eq(r.status, 400, messages(r))
  eq(#r.issues, 1)
  eq(r.issues[1].issue_type, "invalid-parameters")
  contains(r.issues[1].message, "unknown parameter junk for acme-dns-01")
  eq(#r.contacted, 0, "no perspective is asked")
end)

case("unknown_caa_parameter_is_a_400_naming_it", function()
  local r = run(caa({ certificate_type = "tls-server", surprise = 1 }))
  eq(r.status, 400, messages(r))
  contains(messages(r), "unknown parameter surprise for a caa check")
end)

case("a_parameter_of_another_method_is_unknown", function()
  -- token belongs to acme-http-01, not acme-dns-01
  local r = run(dcv({ token = "abc" }))
  eq(r.status, 400)
  contains(messages(r), "unknown parameter token for acme-dns-01")
end)

case("known_parameters_and_nulls_still_pass", function()
  local r = run(dcv({ key_authorization_hash = HASH }, { trace_identifier = ("t"):rep(L.trace_identifier) }))
  eq(r.status, 200, messages(r))
  eq(r.response.trace_identifier, ("t"):rep(L.trace_identifier))
  r = run(caa({ certificate_type = util.null, caa_domains = { "ca.example" }, validation_method = util.null }))
  eq(r.status, 200, messages(r))
end)

case("too_many_parameter_keys_is_a_400_without_listing_them_all", function()
  local p = {}
  for i = 1, 5000 do
    p["k" .. i] = i
  end
  local r = run(caa(p))
  eq(r.status, 400)
  eq(#r.issues, 1)
  contains(r.issues[1].message, "caa_check_parameters has more than " .. L.param_keys .. " keys")
  -- at the limit it is the schema that speaks, one issue per name up to LIMITS.named
  p = {}
  for i = 1, L.param_keys do
    p[("x"):rep(200) .. i] = i
  end
  r = run(caa(p))
  eq(r.status, 400)
  eq(#r.issues, L.named + 1, messages(r))
  contains(r.issues[#r.issues].message, "and " .. (L.param_keys - L.named) .. " more unknown names")
  ok(biggest_message(r) < 200, "names are clipped in messages")
end)

case("parameter_value_depth_is_bounded", function()
  local r = run({
    check_type = "dcv",
    domain_or_ip_target = "example.com",
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = "tok",
      key_authorization = "tok.x",
      http_headers = { ["X-A"] = { { { "deep" } } } },
    },
  })
  eq(r.status, 400)
  contains(messages(r), "parameter http_headers nests deeper than " .. L.param.depth .. " levels")
  -- a flat header table is fine as far as limits go
  r = run({
    check_type = "dcv",
    domain_or_ip_target = "example.com",
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = "tok",
      key_authorization = "tok.x",
      http_headers = { ["X-A"] = "b" },
    },
  })
  eq(r.status, 200, messages(r))
end)

case("parameter_value_count_string_length_and_total_are_bounded", function()
  local many = {}
  for i = 1, L.param.nodes do
    many[i] = "ca" .. i .. ".example"
  end
  local r = run(caa({ caa_domains = many }))
  eq(r.status, 400)
  contains(messages(r), "parameter caa_domains has more than " .. L.param.nodes .. " values")

  r = run(dcv({ key_authorization_hash = ("A"):rep(L.param.string + 1) }))
  eq(r.status, 400)
  contains(
    messages(r),
    "parameter key_authorization_hash holds a string of "
      .. (L.param.string + 1)
      .. " bytes, more than "
      .. L.param.string
  )

  local long = {}
  for i = 1, 5 do
    long[i] = ("d"):rep(L.param.string - 10) .. i
  end
  r = run(caa({ caa_domains = long }))
  eq(r.status, 400)
  contains(messages(r), "the parameters hold more than " .. L.params_total .. " bytes of text")
end)

case("over_long_trace_identifier_is_a_400_and_never_logged", function()
  local r = run(dcv(nil, { trace_identifier = ("x"):rep(900 * 1024) }))
  eq(r.status, 400)
  contains(messages(r), "trace_identifier is 921600 bytes long; at most " .. L.trace_identifier .. " are allowed")
  eq(r.audit, nil)
  r = run(dcv(nil, { trace_identifier = ("x"):rep(L.trace_identifier + 1) }))
  eq(r.status, 400)
end)

case("over_long_target_and_method_and_check_type_are_clipped", function()
  local r = run(dcv(nil, { domain_or_ip_target = ("a"):rep(L.target + 1) }))
  eq(r.status, 400)
  eq(r.issues[1].issue_type, "invalid-target")
  ok(biggest_message(r) < 200, "message stays short")
  r = run(dcv({ validation_method = ("m"):rep(100000) }))
  eq(r.status, 400)
  -- the message also lists the known methods (at most 24 names)
  ok(biggest_message(r) < 200 + 24 * 32, "unknown method clipped")
  contains(r.issues[1].message, "mmm...")
  r = run({ check_type = ("c"):rep(100000), domain_or_ip_target = "example.com" })
  eq(r.status, 400)
  ok(biggest_message(r) < 200, "check_type clipped")
end)

case("many_unknown_top_level_fields_give_a_bounded_issue_list", function()
  local req = dcv()
  for i = 1, 3000 do
    req[("f"):rep(300) .. i] = {}
  end
  local r = run(req)
  eq(r.status, 400)
  eq(#r.issues, L.named + 1)
  contains(r.issues[#r.issues].message, "and " .. (3000 - L.named) .. " more unknown names")
  ok(biggest_message(r) < 200)
  local orch = {}
  for i = 1, L.param_keys + 1 do
    orch["o" .. i] = 1
  end
  r = run(dcv(nil, { orchestration_parameters = orch }))
  eq(r.status, 400)
  contains(messages(r), "orchestration_parameters has more than " .. L.param_keys .. " keys")
end)

-- RFC 8657: the request's validation_method reaches the CAA checker as a label
case("caa_validation_method_reaches_the_checker_as_its_label", function()
  local seen = {}
  local function spy(pid, req)
    seen[pid] = req.params.validation_method
    return "pass"
  end
  local r = run(caa({ validation_method = "acme-dns-01" }), { ["*"] = spy })
  eq(r.status, 200, messages(r))
  eq(seen.primary, "dns-01")
  eq(r.response.caa_check_parameters.validation_method, "acme-dns-01", "the echo is what was sent")
  -- a label passes unchanged; so does a ca-tbr label
  r = run(caa({ validation_method = "http-01" }), { ["*"] = spy })
  eq(r.status, 200)
  eq(seen.primary, "http-01")
  r = run(caa({ validation_method = "dns-change" }), { ["*"] = spy })
  eq(r.status, 200)
  eq(seen.primary, "ca-tbr-7")
  -- not a label
  r = run(caa({ validation_method = "dns 01; x=y" }))
  eq(r.status, 400)
  contains(messages(r), "is neither a validation method nor an RFC 8657 label")
end)

case("caa_method_label_follows_the_declarations_of_the_registry", function()
  local reg =
    { by_name = { ["my-method"] = { name = "my-method", check_type = "dcv", caa_method_label = "ca-tbr-99" } } }
  eq(require("mpic.caa").method_label("my-method", reg), "ca-tbr-99")
  eq(require("mpic.caa").method_label("acme-dns-01", reg), "acme-dns-01", "only the given registry speaks")
  eq(require("mpic.caa").method_label("acme-dns-01"), "dns-01", "default: the built-in challenge types")
end)
