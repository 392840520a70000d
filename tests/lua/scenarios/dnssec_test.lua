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
