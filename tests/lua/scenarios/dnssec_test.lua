-- DNSSEC through a validating resolver: Knot signs sec.test (good.sec.test
-- is correctly signed) and the child zone bogus.sec.test, whose DS in the
-- parent matches none of its keys; Unbound validates with sec.test's KSK as
-- its trust anchor (tests/lab/lab.sh, tests/lab/dnssec/).
local T = require "mpic.testing"
local L = require "scenario_lab"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local ipairs, tostring = ipairs, tostring

local FIVE = { "pdx", "fra", "sgp", "gru", "jnb" }
local HASH = L.b64url_sha256("dnssec-lab-token.dnssec-lab-thumbprint")

local function all(view)
  local r = {}
  for _, id in ipairs(FIVE) do r[id] = view end
  return r
end

local function dns01(name)
  return { check_type = "dcv", domain_or_ip_target = name,
           dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH } }
end

case("dnssec_signed_name_has_ad_through_validating_resolver", function()
  L.load{ primary = "validating", remotes = all("validating") }
  local r, kind, detail = mpic.dns.query("good.sec.test", "TXT", { perspective = "primary" })
  ok(r, "query failed: " .. tostring(kind) .. " " .. tostring(detail))
  eq(r.rcode, "NOERROR")
  eq(r.ad, true)
  eq(r.records[1].value, "signed-and-valid")
end)

case("dnssec_authoritative_answer_is_not_authenticated", function()
  -- control: the same lab, asked without a validating resolver, has AD=0
  L.load{ primary = "legit", remotes = all("legit"),
          resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local r, kind = mpic.dns.query("good.sec.test", "TXT", { perspective = "primary" })
  ok(r, tostring(kind))
  eq(r.ad, false)
end)

case("dnssec_bogus_name_is_dnssec_bogus_with_ede", function()
  L.load{ primary = "validating", remotes = all("validating") }
  local r, kind, detail = mpic.dns.query("bogus.sec.test", "TXT", { perspective = "primary" })
  eq(r, nil)
  ok(kind == "dnssec_bogus" or kind == "servfail", "kind " .. tostring(kind))
  eq(kind, "dnssec_bogus") -- unbound sends an RFC 8914 EDE, so the kind is the precise one
  contains(tostring(detail), "EDE")
end)

case("dnssec_bogus_is_servable_without_validation", function()
  -- control: the bogus data itself is there; only validation refuses it
  L.load{ primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local r, kind = mpic.dns.query("bogus.sec.test", "TXT", { perspective = "primary" })
  ok(r, tostring(kind))
  eq(r.records[1].value, "looks-fine-but-bogus")
end)

case("dnssec_caa_on_signed_name_is_valid", function()
  L.load{ primary = "validating", remotes = all("validating") }
  local resp = L.validate(L.caa("good.sec.test"))
  eq(resp.is_valid, true, tostring(resp.mpic_decision.reason))
end)

case("dnssec_caa_on_bogus_name_fails_closed", function()
  L.load{ primary = "validating", remotes = all("validating"), wait_all = true }
  local resp = L.validate(L.caa("bogus.sec.test"))
  eq(resp.is_valid, false)
  local pr = resp.primary_perspective.check_response
  eq(pr.check_passed, false)
  eq(pr.check_completed, false)
  contains(L.errors_text(pr), "mpic_error:caa_checker:lookup")
  contains(L.errors_text(pr), "EDE")
end)

case("dnssec_caa_bogus_with_allow_lookup_failure_still_fails_closed", function()
  -- the zone is not provably Insecure, so the lookup-failure carve-out never applies
  L.load{ primary = "validating", remotes = all("validating"), wait_all = true }
  local req = L.caa("bogus.sec.test")
  req.caa_check_parameters = { allow_lookup_failure = true }
  local resp = L.validate(req)
  eq(resp.is_valid, false)
  eq(resp.primary_perspective.check_response.check_passed, false)
end)

case("dnssec_dns01_signed_reports_ad_flag", function()
  L.load{ primary = "validating", remotes = all("validating") }
  local resp = L.validate(dns01("good.sec.test"))
  eq(resp.is_valid, true, tostring(resp.mpic_decision.reason))
  eq(resp.primary_perspective.check_response.details.ad_flag, true)
end)

case("dnssec_dns01_bogus_fails_closed", function()
  L.load{ primary = "validating", remotes = all("validating"), wait_all = true }
  local resp = L.validate(dns01("bogus.sec.test"))
  eq(resp.is_valid, false)
  for _, p in ipairs(resp.perspectives) do
    eq(p.check_response.check_passed, false, p.perspective_code)
    eq(p.check_response.check_completed, false, p.perspective_code)
  end
  eq(resp.mpic_completed, false)
end)

-- The start-up check of the primary's resolver (mpic.dnssec_check) -------------

local dnssec_check = require "mpic.dnssec_check"
local SPEC = { signed_name = "good.sec.test", bogus_name = "bogus.sec.test", type = "TXT" }

case("dnssec_start_check_passes_through_a_validating_resolver", function()
  L.load{ primary = "validating", remotes = all("validating") }
  local good, summary = dnssec_check.run(SPEC, require("mpic.perspectives").probe("primary"))
  ok(good, summary)
  contains(summary, "validates DNSSEC")
end)

case("dnssec_start_check_refuses_a_resolver_that_does_not_validate", function()
  L.load{ primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local good, why = dnssec_check.run(SPEC, require("mpic.perspectives").probe("primary"))
  eq(good, nil)
  contains(why, "without AD=1")
end)

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs CMD (bounded by timeout(1)); returns output and exit code.
local function sh(cmd)
  local p = assert(io.popen("timeout 20 " .. cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)exit=(%d+)%s*$")
  return body, tonumber(code)
end

local function config_with_check(spec)
  local path = L.write_config(spec)
  local f = assert(io.open(path, "a"))
  f:write("primary_dnssec: {signed_name: good.sec.test, bogus_name: bogus.sec.test, type: TXT}\n")
  f:close()
  return path
end

case("dnssec_check_config_and_serve_refuse_a_primary_that_does_not_validate", function()
  local bin = L.env("MPIC_LAB_MPIC")
  local path = config_with_check{ primary = "legit", remotes = all("legit"),
                                  resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local out, code = sh(q(bin) .. " check-config --config " .. q(path))
  eq(code, 2, out)
  contains(out, "without AD=1")
  out, code = sh(q(bin) .. " serve --config " .. q(path) .. " --listen 127.0.0.1:0")
  eq(code, 2, out)
  contains(out, "refusing to start")
  out, code = sh(q(bin) .. " validate --config " .. q(path) .. " --check caa --target good.sec.test")
  eq(code, 2, out)
  contains(out, "without AD=1")
end)

case("dnssec_check_config_reports_a_validating_primary", function()
  local path = config_with_check{ primary = "validating", remotes = all("validating") }
  local out, code = sh(q(L.env("MPIC_LAB_MPIC")) .. " check-config --config " .. q(path))
  eq(code, 0, out)
  contains(out, "the primary's resolver validates DNSSEC: good.sec.test TXT authenticated, "
    .. "bogus.sec.test TXT refused (dnssec_bogus)")
end)
