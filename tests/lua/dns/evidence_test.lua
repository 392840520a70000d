-- The resolver that answered and the AD bit reach the details of DNS-based
-- checks from real answers (the lab of tests/lab/test_dns.sh: knot's two
-- views of victim.test, the scripted server's AD=1 answer, a black hole).
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local target = require "mpic.target"
local challenges = require "mpic.challenges"
local case, eq = T.case, T.eq
local getenv = os.getenv

local REG = challenges.load()
local HASH = "7FwkJPsKf-TH54wu4eiIFA3nhzYaevsL7953ihy-tpo" -- _acme-challenge.victim.test

local function server(var)
  local v = getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

-- Run a check through a probe whose DNS is a resolver of the lab server var.
local function check(method, var, tname, params)
  local res <close> = dns.resolver { servers = { server(var) }, timeout_ms = 300, tries = 1, lifetime_ms = 1000 }
  local probe = { dns = function(n, t) return res:query(n, t) end, config = { caa_domains = { "ca.example" } } }
  local t = assert(target.normalise(tname, { allow_reserved = true }))
  return challenges.run(REG.by_name[method], t, params, probe)
end

case("evidence_dns01_names_the_answering_resolver", function()
  local r = check("acme-dns-01", "MPIC_LAB_DNS_GOOD", "victim.test", { key_authorization_hash = HASH })
  eq(r.passed, true)
  eq(r.details.resolver, server("MPIC_LAB_DNS_GOOD"))
  eq(r.details.ad_flag, false)
  -- the attacker's view: the failure says whose answer it was
  r = check("acme-dns-01", "MPIC_LAB_DNS_EVIL", "victim.test", { key_authorization_hash = HASH })
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.details.resolver, server("MPIC_LAB_DNS_EVIL"))
end)

case("evidence_caa_names_the_answering_resolver", function()
  local r = check("caa", "MPIC_LAB_DNS_GOOD", "www.victim.test", {})
  eq(r.passed, true)
  eq(r.details.found_at, "victim.test")
  eq(r.details.resolver, server("MPIC_LAB_DNS_GOOD"))
  eq(r.details.ad_flag, false)
  r = check("caa", "MPIC_LAB_DNS_EVIL", "victim.test", {})
  eq(r.passed, false)
  eq(r.details.resolver, server("MPIC_LAB_DNS_EVIL"))
end)

case("evidence_ad_flag_from_the_wire", function()
  -- the scripted server sets AD=1 on its answer for ad.<anything>
  local r =
    check("ip-address", "MPIC_LAB_DNS_FAKE", "ad.example", { challenge_value = "192.0.2.53", dns_record_type = "A" })
  eq(r.passed, true)
  eq(r.details.ad_flag, true)
  eq(r.details.resolver, server("MPIC_LAB_DNS_FAKE"))
end)

case("evidence_servfail_names_its_resolver", function()
  local r =
    check("dns-change", "MPIC_LAB_DNS_FAKE", "servfail.example", { challenge_value = "x", dns_record_type = "TXT" })
  eq(r.passed, false)
  eq(r.details.resolver, server("MPIC_LAB_DNS_FAKE"))
end)

case("evidence_no_resolver_when_none_answered", function()
  local r = check("acme-dns-01", "MPIC_LAB_DNS_BLACKHOLE", "victim.test", { key_authorization_hash = HASH })
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.details.resolver, nil)
  eq(r.details.ad_flag, false)
end)
