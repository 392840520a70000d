-- DNSSEC through a validating resolver: Knot signs sec.test (good.sec.test
-- is correctly signed) and the child zone bogus.sec.test, whose DS in the
-- parent matches none of its keys; Unbound validates with sec.test's KSK as
-- its trust anchor (tests/lab/lab.sh, tests/lab/dnssec/). insecure.sec.test
-- is an unsigned delegation and lame.sec.test a signed one, both to a server
-- that never answers: CAA's allow_lookup_failure holds only for the first.
local T = require "mpic.testing"
local L = require "scenario_lab"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local ipairs, tostring = ipairs, tostring

local FIVE = { "pdx", "fra", "sgp", "gru", "jnb" }
local HASH = L.b64url_sha256("dnssec-lab-token.dnssec-lab-thumbprint")

local function all(view)
  local r = {}
  for _, id in ipairs(FIVE) do
    r[id] = view
  end
  return r
end

local function dns01(name)
  return {
    check_type = "dcv",
    domain_or_ip_target = name,
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH },
  }
end

case("dnssec_signed_name_has_ad_through_validating_resolver", function()
  L.load { primary = "validating", remotes = all("validating") }
  local r, kind, detail = mpic.dns.query("good.sec.test", "TXT", { perspective = "primary" })
  ok(r, "query failed: " .. tostring(kind) .. " " .. tostring(detail))
  eq(r.rcode, "NOERROR")
  eq(r.ad, true)
  eq(r.records[1].value, "signed-and-valid")
end)

case("dnssec_authoritative_answer_is_not_authenticated", function()
  -- control: the same lab, asked without a validating resolver, has AD=0
  L.load { primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local r, kind = mpic.dns.query("good.sec.test", "TXT", { perspective = "primary" })
  ok(r, tostring(kind))
  eq(r.ad, false)
end)

case("dnssec_bogus_name_is_dnssec_bogus_with_ede", function()
  L.load { primary = "validating", remotes = all("validating") }
  local r, kind, detail = mpic.dns.query("bogus.sec.test", "TXT", { perspective = "primary" })
  eq(r, nil)
  ok(kind == "dnssec_bogus" or kind == "servfail", "kind " .. tostring(kind))
  eq(kind, "dnssec_bogus") -- unbound sends an RFC 8914 EDE, so the kind is the precise one
  contains(tostring(detail), "EDE")
end)

case("dnssec_bogus_is_servable_without_validation", function()
  -- control: the bogus data itself is there; only validation refuses it
  L.load { primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local r, kind = mpic.dns.query("bogus.sec.test", "TXT", { perspective = "primary" })
  ok(r, tostring(kind))
  eq(r.records[1].value, "looks-fine-but-bogus")
end)

case("dnssec_caa_on_signed_name_is_valid", function()
  L.load { primary = "validating", remotes = all("validating") }
  local resp = L.validate(L.caa("good.sec.test"))
  eq(resp.is_valid, true, tostring(resp.mpic_decision.reason))
end)

case("dnssec_caa_on_bogus_name_fails_closed", function()
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
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
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
  local req = L.caa("bogus.sec.test")
  req.caa_check_parameters = { allow_lookup_failure = true }
  local resp = L.validate(req)
  eq(resp.is_valid, false)
  eq(resp.primary_perspective.check_response.check_passed, false)
end)

-- CAA allow_lookup_failure and the Insecure proof (REFERENCE §1.7) -------------

local function caa_allowing_failure(name)
  local req = L.caa(name)
  req.caa_check_parameters = { allow_lookup_failure = true }
  return req
end

case("dnssec_caa_lookup_failure_under_an_insecure_delegation_is_permitted_with_the_flag", function()
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
  local resp = L.validate(caa_allowing_failure("insecure.sec.test"))
  eq(resp.is_valid, true, tostring(resp.mpic_decision and resp.mpic_decision.reason))
  for _, p in ipairs(resp.perspectives) do
    eq(p.check_response.check_passed, true, p.perspective_code)
  end
  local pr = resp.primary_perspective.check_response
  eq(pr.check_passed, true)
  contains(pr.details.reason, "lookup failure at insecure.sec.test accepted: zone proven DNSSEC-Insecure")
  contains(pr.details.reason, "NSEC at insecure.sec.test proves an unsigned delegation")
end)

case("dnssec_caa_lookup_failure_under_an_insecure_delegation_fails_without_the_flag", function()
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
  local resp = L.validate(L.caa("insecure.sec.test"))
  eq(resp.is_valid, false)
  local pr = resp.primary_perspective.check_response
  eq(pr.check_passed, false)
  eq(pr.check_completed, false)
  contains(L.errors_text(pr), "mpic_error:caa_checker:lookup")
  eq(pr.details.insecure_proof, nil) -- no exception asked for, no proof tried
end)

case("dnssec_caa_lookup_failure_under_a_signed_delegation_is_refused_with_the_flag", function()
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
  local resp = L.validate(caa_allowing_failure("lame.sec.test"))
  eq(resp.is_valid, false)
  local pr = resp.primary_perspective.check_response
  eq(pr.check_passed, false)
  eq(pr.check_completed, false)
  contains(pr.details.insecure_proof, "DS lame.sec.test: authenticated DS records, a signed delegation")
  contains(L.errors_text(pr), "not proven DNSSEC-Insecure")
end)

case("dnssec_insecure_proof_through_the_validating_resolver", function()
  L.load { primary = "validating", remotes = all("validating") }
  local probe = require("mpic.perspectives").probe("primary")
  local proven, why = probe.dnssec_insecure("insecure.sec.test")
  eq(proven, true, why)
  proven, why = probe.dnssec_insecure("lame.sec.test")
  eq(proven, false)
  contains(why, "signed delegation")
  proven, why = probe.dnssec_insecure("bogus.sec.test")
  eq(proven, false)
  contains(why, "signed delegation")
  -- good.sec.test is no delegation; above it the climb finds no proof
  proven = probe.dnssec_insecure("good.sec.test")
  eq(proven, false)
end)

case("dnssec_insecure_proof_never_succeeds_through_a_non_validating_resolver", function()
  -- knot itself serves the same signed NSEC, but without validation there is no AD=1
  L.load { primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local probe = require("mpic.perspectives").probe("primary")
  local r = assert(probe.dns("insecure.sec.test", "DS"))
  eq(r.ad, false)
  eq(r.authority[1] and r.authority[1].owner, "insecure.sec.test.")
  eq(r.authority[1].types.NS, true)
  for _, name in ipairs({ "insecure.sec.test", "lame.sec.test", "good.sec.test" }) do
    local proven, why = probe.dnssec_insecure(name)
    eq(proven, false, name .. ": " .. tostring(why))
  end
end)

case("dnssec_dns01_signed_reports_ad_flag", function()
  L.load { primary = "validating", remotes = all("validating") }
  local resp = L.validate(dns01("good.sec.test"))
  eq(resp.is_valid, true, tostring(resp.mpic_decision.reason))
  eq(resp.primary_perspective.check_response.details.ad_flag, true)
end)

case("dnssec_dns01_bogus_fails_closed", function()
  L.load { primary = "validating", remotes = all("validating"), wait_all = true }
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
  L.load { primary = "validating", remotes = all("validating") }
  local good, summary = dnssec_check.run(SPEC, require("mpic.perspectives").probe("primary"))
  ok(good, summary)
  contains(summary, "validates DNSSEC")
end)

case("dnssec_start_check_refuses_a_resolver_that_does_not_validate", function()
  L.load { primary = "legit", remotes = all("legit"), resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") } }
  local good, why = dnssec_check.run(SPEC, require("mpic.perspectives").probe("primary"))
  eq(good, nil)
  contains(why, "without AD=1")
end)

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs CMD (bounded by timeout(1)); returns output and exit code.
local function sh(cmd)
  local out, _, code = T.shell(cmd, { merge = true, timeout_s = 20 })
  return out, code
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
  local path = config_with_check {
    primary = "legit",
    remotes = all("legit"),
    resolvers = { legit = L.env("MPIC_LAB_DNS_SIGNER") },
  }
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
  local path = config_with_check { primary = "validating", remotes = all("validating") }
  local out, code = sh(q(L.env("MPIC_LAB_MPIC")) .. " check-config --config " .. q(path))
  eq(code, 0, out)
  contains(
    out,
    "the primary's resolver validates DNSSEC: good.sec.test TXT authenticated, "
      .. "bogus.sec.test TXT refused (dnssec_bogus)"
  )
end)
