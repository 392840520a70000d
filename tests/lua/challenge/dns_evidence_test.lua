-- Evidence in DNS-based checks: every check that asks DNS reports which
-- resolver answered (details.resolver, "ip:port" as the DNS probe gives it)
-- and the answer's AD bit (details.ad_flag), passed or not; none when no
-- resolver answered.
local T = require "mpic.testing"
local F = require "fake"
local target = require "mpic.target"
local challenges = require "mpic.challenges"
local case, eq = T.case, T.eq

local RES, RES2 = "192.0.2.53:53", "[2001:db8::53]:53"
local HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local REG = challenges.load()

local function tgt(s) return assert(target.normalise(s, { allow_reserved = true })) end

-- The parameters (and target) each DNS-based method is run with.
local DNS_BASED = {
  ["acme-dns-01"] = { params = { key_authorization_hash = HASH } },
  ["dns-account-01"] = { params = { account_uri = "https://ca.example/acct/1", key_authorization_hash = HASH } },
  ["dns-change"] = { params = { challenge_value = "abc", dns_record_type = "TXT" } },
  ["dns-persistent"] = {
    params = { issuer_domain_names = { "ca.example" }, expected_account_uri = "https://ca.example/a/1" },
  },
  ["contact-email-txt"] = { params = { challenge_value = "admin@example.com" } },
  ["contact-phone-txt"] = { params = { challenge_value = "+1-123-456-7890" } },
  ["contact-email-caa"] = { params = { challenge_value = "admin@example.com" } },
  ["contact-phone-caa"] = { params = { challenge_value = "+1-123-456-7890" } },
  ["ip-address"] = { params = { challenge_value = "192.0.2.1", dns_record_type = "A" } },
  ["reverse-address-lookup"] = { target = "192.0.2.7", params = { challenge_value = "example.com" } },
  ["caa"] = { params = {} },
}
local NOT_DNS = { ["acme-http-01"] = true, ["website-change"] = true, ["acme-tls-alpn-01"] = true }

local function run(name, spec)
  local m = DNS_BASED[name]
  local probe = F.probe(spec)
  return challenges.run(REG.by_name[name], tgt(m.target or "example.com"), m.params, probe), probe
end

case("dns_evidence_every_method_is_classified", function()
  -- a new method must say here whether it asks DNS
  for _, ch in ipairs(REG.list) do
    T.ok(DNS_BASED[ch.name] or NOT_DNS[ch.name], ch.name .. " is neither DNS-based nor listed as not")
  end
end)

case("dns_evidence_every_dns_method_reports_resolver_and_ad", function()
  for name in pairs(DNS_BASED) do
    -- every name answers NODATA from RES with AD=1: each check fails with an answer in hand
    local r, probe = run(name, { missing = "nodata", server = RES, ad = true })
    T.ok(#probe.log.dns > 0, name .. " asked no DNS")
    eq(r.completed, true, name)
    eq(r.details.resolver, RES, name)
    eq(r.details.ad_flag, true, name)
    r = run(name, { missing = "nodata", server = RES2 })
    eq(r.details.resolver, RES2, name)
    eq(r.details.ad_flag, false, name)
  end
end)

case("dns_evidence_no_resolver_when_none_answered", function()
  for name in pairs(DNS_BASED) do
    local zone = setmetatable({}, { __index = function() return { fail = { "timeout", "query timed out" } } end })
    local r = run(name, { zone = zone, server = RES, ad = true })
    eq(r.completed, false, name)
    eq(r.passed, false, name)
    eq(r.details.resolver, nil, name)
    T.ok(r.details.ad_flag ~= true, name .. ": AD without an answer")
  end
end)

case("dns_evidence_failure_with_an_answer_names_its_resolver", function()
  -- SERVFAIL is an answer: its server is known
  local zone = setmetatable(
    {},
    { __index = function() return { fail = { "servfail", "SERVFAIL", rcode = "SERVFAIL" } } end }
  )
  for _, name in ipairs { "acme-dns-01", "dns-change", "caa", "contact-email-caa" } do
    local r = run(name, { zone = zone, server = RES })
    eq(r.passed, false, name)
    eq(r.details.resolver, RES, name)
  end
end)

case("dns_evidence_passing_dns01_reports_resolver", function()
  local zone = { ["_acme-challenge.example.com"] = { TXT = { F.txt(HASH) } } }
  local r = run("acme-dns-01", { zone = zone, server = RES, ad = true })
  eq(r.passed, true)
  eq(r.details.resolver, RES)
  eq(r.details.ad_flag, true)
  eq(r.details.records_seen, { HASH })
end)

case("dns_evidence_caa_names_every_resolver_the_climb_judged", function()
  -- www.example.com: NODATA from RES2, then the set at example.com from RES
  local zone = {
    ["www.example.com"] = { server = RES2, ad = true },
    ["example.com"] = { CAA = { F.caa(0, "issue", "ca.example") }, server = RES, ad = true },
  }
  local probe = F.probe { zone = zone, config = { caa_domains = { "ca.example" } } }
  local r = challenges.run(REG.by_name.caa, tgt("www.example.com"), {}, probe)
  eq(r.passed, true)
  eq(r.details.found_at, "example.com")
  eq(r.details.resolver, RES2 .. "," .. RES)
  eq(r.details.ad_flag, true)
  -- one answer without AD: the set is not authenticated as a whole
  zone["www.example.com"].ad = false
  r = challenges.run(REG.by_name.caa, tgt("www.example.com"), {}, probe)
  eq(r.details.ad_flag, false)
  -- the same resolver twice is named once
  zone["www.example.com"].server = RES
  r = challenges.run(REG.by_name.caa, tgt("www.example.com"), {}, probe)
  eq(r.details.resolver, RES)
end)

case("dns_evidence_caa_on_ip_target_names_no_resolver", function()
  local r = challenges.run(REG.by_name.caa, tgt("192.0.2.7"), {}, F.probe { server = RES })
  eq(r.passed, true)
  eq(r.details.resolver, nil)
  eq(r.details.ad_flag, nil)
end)
