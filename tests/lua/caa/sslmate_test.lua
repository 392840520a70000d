-- The SSLMate CAA test suite rows that apply without a network (REFERENCE
-- §3.10), replayed on a fake resolver. Column A: CA domains {"example.com"};
-- column B: {"caatestsuite.com", "example.com"}.
local T = require "mpic.testing"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local F = dofile(here .. "/../challenge/fake.lua")
local target = require "mpic.target"
local checker = require "mpic.challenge.caa"
local case, eq = T.case, T.eq

local B = ".basic.caatestsuite.com"
local S = "caatestsuite.com"
local function rr(flags, tag, v) return F.caa(flags, tag, v) end
local big = {}
for i = 1, 1001 do
  big[i] = rr(0, "issue", S)
end

local zone = {
  ["empty" .. B] = { CAA = { rr(0, "issue", ";") } },
  ["deny" .. B] = { CAA = { rr(0, "issue", S) } },
  ["uppercase-deny" .. B] = { CAA = { rr(0, "ISSUE", S) } },
  ["mixedcase-deny" .. B] = { CAA = { rr(0, "IsSuE", S) } },
  ["big" .. B] = { CAA = big },
  ["critical1" .. B] = { CAA = { rr(128, "caatestsuitedummyproperty", "test"), rr(0, "issue", S) } },
  ["critical2" .. B] = { CAA = { rr(130, "caatestsuitedummyproperty", "test"), rr(0, "issue", S) } },
  ["deny-wild" .. B] = { CAA = { rr(0, "issue", "example.net"), rr(0, "issuewild", S) } },
  ["cname-deny" .. B] = { cname = "deny" .. B .. "." },
  ["cname-cname-deny" .. B] = { cname = "cname-deny" .. B .. "." },
  ["permit" .. B] = { CAA = { rr(0, "issue", S), rr(0, "issue", "example.com") } },
  ["deny.permit" .. B] = { CAA = { rr(0, "issue", S) } },
  ["xss" .. B] = { CAA = { rr(0, "issue", "<script>alert(1)</script>") } },
  ["blackhole.caatestsuite-dnssec.com"] = { fail = { "timeout", "query timed out" } },
  ["servfail.caatestsuite-dnssec.com"] = { fail = { "servfail", "SERVFAIL" } },
  ["refused.caatestsuite-dnssec.com"] = { fail = { "refused", "REFUSED" } },
  ["expired.caatestsuite-dnssec.com"] = { fail = { "dnssec_bogus", "DNSSEC: Bogus" } },
  ["missing.caatestsuite-dnssec.com"] = { fail = { "dnssec_bogus", "DNSSEC: Bogus" } },
  -- S/MIME, under integration-testing.open-mpic.org
  ["smime-standard.integration-testing.open-mpic.org"] = { CAA = { rr(129, "issuemail", "example-ca.example.com") } },
  ["contact-phone-caa.integration-testing.open-mpic.org"] = { CAA = { rr(0, "contactphone", "+1 555 0100") } },
  ["smime-with-issue.integration-testing.open-mpic.org"] = {
    CAA = {
      rr(0, "issue", "example-ca1.example.com"),
      rr(0, "issuemail", "example-ca2.example.com"),
    },
  },
}

local A = { "example.com" }
local BB = { "caatestsuite.com", "example.com" }

local function run(name, domains, extra)
  local probe = F.probe { zone = zone, missing = "nodata", config = { caa_domains = domains } }
  local t = assert(target.normalise(name, { allow_reserved = true }))
  local p = { validation_method = "acme-http-01" }
  for k, v in pairs(extra or {}) do
    p[k] = v
  end
  return checker.check(t, p, probe)
end

local function row(label, name, a, b)
  case("caa_sslmate_" .. label, function()
    if a ~= nil then eq(run(name, A).passed, a, name .. " column A") end
    if b ~= nil then eq(run(name, BB).passed, b, name .. " column B") end
  end)
end

row("empty_denies_everyone", "empty" .. B, false, false)
row("deny_permits_only_named_ca", "deny" .. B, false, true)
row("uppercase_tag_is_issue", "uppercase-deny" .. B, false, true)
row("mixedcase_tag_is_issue", "mixedcase-deny" .. B, false, true)
row("big_rrset_1001_records", "big" .. B, false, true)
row("critical1_unknown_critical_denies", "critical1" .. B, false, false)
row("critical2_flags_130_unknown_critical_denies", "critical2" .. B, false, false)
row("sub1_deny_inherits_parent", "sub1.deny" .. B, false, true)
row("sub2_sub1_deny_inherits_grandparent", "sub2.sub1.deny" .. B, false, true)
row("wildcard_deny_uses_issue", "*.deny" .. B, false, true)
row("wildcard_deny_wild_uses_issuewild", "*.deny-wild" .. B, false, true)
row("cname_deny_followed_by_resolver", "cname-deny" .. B, false, true)
row("cname_cname_deny_followed", "cname-cname-deny" .. B, false, true)
row("sub1_cname_deny_parent_is_cname", "sub1.cname-deny" .. B, false, true)
row("permit_permits_named_ca", "permit" .. B, nil, true)
row("deny_permit_own_set_wins_over_permissive_parent", "deny.permit" .. B, false, true)
row("xss_value_denies", "xss" .. B, false, nil)
row("dnssec_blackhole_denies", "blackhole.caatestsuite-dnssec.com", false, false)
row("dnssec_servfail_denies", "servfail.caatestsuite-dnssec.com", false, false)
row("dnssec_refused_denies", "refused.caatestsuite-dnssec.com", false, false)
row("dnssec_expired_denies", "expired.caatestsuite-dnssec.com", false, false)
row("dnssec_missing_denies", "missing.caatestsuite-dnssec.com", false, false)
case("caa_sslmate_dnssec_servfail_denies_even_with_allow_lookup_failure", function()
  local r = run("servfail.caatestsuite-dnssec.com", BB, { allow_lookup_failure = true })
  eq(r.passed, false)
  eq(r.completed, false)
end)
case("caa_sslmate_cname_found_at_is_queried_name", function()
  local r = run("cname-deny" .. B, BB)
  eq(r.details.found_at, "cname-deny" .. B)
end)

-- S/MIME
local function smime(name, domain, want)
  return function()
    local r = run(name .. ".integration-testing.open-mpic.org", { domain }, { certificate_type = "s-mime" })
    eq(r.passed, want)
  end
end
case("caa_smime_issuemail_names_ca_permits", smime("smime-standard", "example-ca.example.com", true))
case("caa_smime_issuemail_other_ca_denies", smime("smime-standard", "example-ca1.example.com", false))
case("caa_smime_no_issuemail_permits", smime("contact-phone-caa", "example-ca1.example.com", true))
case("caa_smime_no_caa_permits", smime("dns-phone-txt", "example-ca1.example.com", true))
case("caa_smime_issuemail_names_ca_beside_issue_permits", smime("smime-with-issue", "example-ca2.example.com", true))
case("caa_smime_issue_match_is_not_enough", smime("smime-with-issue", "example-ca1.example.com", false))
