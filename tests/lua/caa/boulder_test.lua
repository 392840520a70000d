-- CAA decisions of Boulder's TestCAAChecking (REFERENCE §3.6), run through the
-- CAA checker with a fake DNS: issuer letsencrypt.org, method http-01,
-- account 123 under https://letsencrypt.org/acct/reg/.
local T = require "mpic.testing"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local F = dofile(here .. "/../challenge/fake.lua")
local target = require "mpic.target"
local checker = require "mpic.challenge.caa"
local case, eq, ok = T.case, T.eq, T.ok

local LE = "letsencrypt.org"
local ACCT = "https://letsencrypt.org/acct/reg/"
local function issue(v, flags) return F.caa(flags or 0, "issue", v) end
local function issuewild(v) return F.caa(0, "issuewild", v) end

local zone = {
  ["reserved.com"] = { CAA = { issue("ca.com") } },
  ["mixedcase.com"] = { CAA = { F.caa(0, "iSsUe", "ca.com") } },
  ["critical.com"] = { CAA = { issue("ca.com", 1) } },
  ["present.com"] = { CAA = { issue(LE) } },
  ["present.servfail.com"] = { CAA = { issue(LE) } },
  ["servfail.com"] = { fail = { "servfail", "SERVFAIL looking up CAA for servfail.com" } },
  ["multi-crit-present.com"] = { CAA = { issue("ca.com", 1), issue(LE, 1) } },
  ["unknown-critical.com"] = { CAA = { F.caa(128, "foo", "bar") } },
  ["unknown-critical2.com"] = { CAA = { F.caa(1, "foo", "bar") } },
  ["unknown-noncritical.com"] = { CAA = { F.caa(126, "foo", "bar") } },
  ["unknown-flag2.com"] = { CAA = { F.caa(2, "foo", "bar") } },
  ["unknown-flag9.com"] = { CAA = { F.caa(9, "foo", "bar") } },
  ["present-with-parameter.com"] = { CAA = { issue("  letsencrypt.org  ;foo=bar;baz=bar") } },
  ["present-with-invalid-tag.com"] = { CAA = { issue("letsencrypt.org; a_b=123") } },
  ["present-with-invalid-value.com"] = { CAA = { issue("letsencrypt.org; ab=1 2 3") } },
  ["present-dns-only.com"] = { CAA = { issue("letsencrypt.org; validationmethods=dns-01") } },
  ["present-http-only.com"] = { CAA = { issue("letsencrypt.org; validationmethods=http-01") } },
  ["present-http-or-dns.com"] = { CAA = { issue("letsencrypt.org; validationmethods=http-01,dns-01") } },
  ["present-correct-accounturi.com"] = { CAA = { issue("letsencrypt.org; accounturi=" .. ACCT .. "123") } },
  ["present-http-only-correct-accounturi.com"] = {
    CAA = {
      issue("letsencrypt.org; accounturi=" .. ACCT .. "123; validationmethods=http-01"),
    },
  },
  ["present-dns-only-correct-accounturi.com"] = {
    CAA = {
      issue("letsencrypt.org; accounturi=" .. ACCT .. "123; validationmethods=dns-01"),
    },
  },
  ["present-http-only-incorrect-accounturi.com"] = {
    CAA = {
      issue("letsencrypt.org; accounturi=" .. ACCT .. "321; validationmethods=http-01"),
    },
  },
  ["present-incorrect-accounturi.com"] = { CAA = { issue("letsencrypt.org; accounturi=" .. ACCT .. "321") } },
  ["present-multiple-accounturi.com"] = {
    CAA = {
      issue("letsencrypt.org; accounturi=" .. ACCT .. "321"),
      issue("letsencrypt.org; accounturi=" .. ACCT .. "123"),
    },
  },
  ["unsatisfiable.com"] = { CAA = { issue(";") } },
  ["unsatisfiable-wildcard.com"] = { CAA = { issuewild(";") } },
  ["unsatisfiable-wildcard-override.com"] = { CAA = { issue(LE), issuewild("ca.com") } },
  ["satisfiable-wildcard.com"] = { CAA = { issuewild(LE) } },
  ["satisfiable-multi-wildcard.com"] = { CAA = { issuewild("ca.com"), issuewild(LE) } },
  ["satisfiable-wildcard-override.com"] = { CAA = { issue("ca.com"), issuewild(LE) } },
  ["caa-timeout.com"] = { fail = { "timeout", "error" } },
  ["gonetld"] = { nxdomain = true },
}

local function run(name, params, config)
  local probe = F.probe {
    zone = zone,
    missing = "nodata",
    config = config or {
      caa_domains = { LE },
      account_uri_prefixes = { ACCT },
    },
  }
  local t = assert(target.normalise(name, { allow_reserved = true }))
  local p = params or { validation_method = "acme-http-01", account_id = "123" }
  return checker.check(t, p, probe), probe
end

local function permits(name, found_at)
  return function()
    local r = run(name)
    eq(r.passed, true, name .. " " .. tostring(r.details.reason))
    eq(r.completed, true)
    eq(r.details.found_at, found_at)
  end
end
local function forbids(name, found_at)
  return function()
    local r = run(name)
    eq(r.passed, false, name)
    eq(r.completed, true, name)
    eq(r.details.caa_record_present, true)
    if found_at then eq(r.details.found_at, found_at) end
  end
end

case("caa_boulder_01_reserved_other_issuer_forbids", forbids("reserved.com", "reserved.com"))
case("caa_boulder_02_mixed_case_tag_is_issue_forbids", forbids("mixedcase.com"))
case("caa_boulder_03_critical_issue_other_ca_forbids", forbids("critical.com"))
case("caa_boulder_04_parent_set_applies_forbids", forbids("nx.critical.com", "critical.com"))
case("caa_boulder_05_absent_everywhere_permits", permits("absent.com", nil))
case("caa_boulder_06_example_co_uk_permits", permits("example.co.uk", nil))
case("caa_boulder_07_present_permits", permits("present.com", "present.com"))
case("caa_boulder_08_child_inherits_parent_permits", permits("child.present.com", "present.com"))
case("caa_boulder_09_own_set_before_servfail_parent_permits", permits("present.servfail.com", "present.servfail.com"))
case("caa_boulder_10_multi_critical_one_matches_permits", permits("multi-crit-present.com", "multi-crit-present.com"))
case("caa_boulder_11_unknown_critical_tag_forbids", forbids("unknown-critical.com"))
case(
  "caa_boulder_12_flag_bit_1_unknown_tag_is_not_critical_permits",
  permits("unknown-critical2.com", "unknown-critical2.com")
)
case("caa_boulder_12_legacy_mode_flag_1_unknown_tag_forbids", function()
  local r = run(
    "unknown-critical2.com",
    nil,
    { caa_domains = { LE }, account_uri_prefixes = { ACCT }, caa_legacy_critical = true }
  )
  eq(r.passed, false)
  eq(r.completed, true)
end)
case(
  "caa_boulder_13_unknown_noncritical_flags_126_permits",
  permits("unknown-noncritical.com", "unknown-noncritical.com")
)
case(
  "caa_boulder_14_wildcard_unknown_noncritical_permits",
  permits("*.unknown-noncritical.com", "unknown-noncritical.com")
)
case(
  "caa_boulder_15_whitespace_and_parameters_permits",
  permits("present-with-parameter.com", "present-with-parameter.com")
)
case("caa_boulder_16_invalid_parameter_tag_forbids", forbids("present-with-invalid-tag.com"))
case("caa_boulder_17_invalid_parameter_value_forbids", forbids("present-with-invalid-value.com"))
case("caa_boulder_18_dns_only_method_forbids_http", forbids("present-dns-only.com"))
case("caa_boulder_19_http_only_permits_http", permits("present-http-only.com", "present-http-only.com"))
case("caa_boulder_20_http_or_dns_permits_http", permits("present-http-or-dns.com", "present-http-or-dns.com"))
case(
  "caa_boulder_21_correct_accounturi_permits",
  permits("present-correct-accounturi.com", "present-correct-accounturi.com")
)
case(
  "caa_boulder_22_http_only_correct_accounturi_permits",
  permits("present-http-only-correct-accounturi.com", "present-http-only-correct-accounturi.com")
)
case("caa_boulder_23_dns_only_correct_accounturi_forbids", forbids("present-dns-only-correct-accounturi.com"))
case("caa_boulder_24_http_only_incorrect_accounturi_forbids", forbids("present-http-only-incorrect-accounturi.com"))
case("caa_boulder_25_incorrect_accounturi_forbids", forbids("present-incorrect-accounturi.com"))
case(
  "caa_boulder_26_one_of_multiple_accounturi_permits",
  permits("present-multiple-accounturi.com", "present-multiple-accounturi.com")
)
case("caa_boulder_27_empty_issuer_forbids", forbids("unsatisfiable.com"))
case("caa_boulder_28_wildcard_falls_back_to_empty_issue_forbids", forbids("*.unsatisfiable.com"))
case("caa_boulder_29_empty_issuewild_forbids_wildcard", forbids("*.unsatisfiable-wildcard.com"))
case("caa_boulder_30_issuewild_overrides_issue_forbids", forbids("*.unsatisfiable-wildcard-override.com"))
case("caa_boulder_31_issuewild_permits_wildcard", permits("*.satisfiable-wildcard.com", "satisfiable-wildcard.com"))
case(
  "caa_boulder_32_one_of_multiple_issuewild_permits",
  permits("*.satisfiable-multi-wildcard.com", "satisfiable-multi-wildcard.com")
)
case(
  "caa_boulder_33_issuewild_overrides_denying_issue_permits",
  permits("*.satisfiable-wildcard-override.com", "satisfiable-wildcard-override.com")
)

-- Related Boulder tests
case("caa_deep_child_finds_grandparent_set", permits("not.here.but.still.present.com", "present.com"))
case("caa_issuewild_ignored_for_non_wildcard_forbids", forbids("satisfiable-wildcard-override.com"))
case("caa_reserved_with_dns_01_forbids", function()
  local r = run("reserved.com", { validation_method = "acme-dns-01", account_id = "123" })
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("caa_lookup_timeout_is_error_with_boulder_text", function()
  local r = run("caa-timeout.com")
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors, {
    {
      error_type = "mpic_error:caa_checker:lookup",
      error_message = "There was an error looking up the CAA record: While processing CAA for caa-timeout.com: error",
    },
  })
end)
case("caa_nxdomain_for_tld_is_error", function()
  local r = run("example.gonetld")
  eq(r.passed, false)
  eq(r.completed, false)
  T.contains(r.errors[1].error_message, "NXDOMAIN")
end)
case("caa_error_before_found_set_is_error", function()
  local r = run("child.servfail.com")
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:caa_checker:lookup")
end)
case("caa_climb_stops_at_first_nonempty_set", function()
  local _, probe = run("present.servfail.com")
  eq(probe.log.dns, { "present.servfail.com/CAA" })
end)
case("caa_climb_queries_each_label_down_to_tld", function()
  local _, probe = run("a.b.absent.com")
  eq(probe.log.dns, { "a.b.absent.com/CAA", "b.absent.com/CAA", "absent.com/CAA", "com/CAA" })
end)
case("caa_unknown_tag_flag_2_not_critical_permits", permits("unknown-flag2.com", "unknown-flag2.com"))
case("caa_unknown_tag_flags_9_not_critical_without_legacy", permits("unknown-flag9.com", "unknown-flag9.com"))
case("caa_unknown_tag_flags_9_critical_in_legacy_mode", function()
  local r =
    run("unknown-flag9.com", nil, { caa_domains = { LE }, account_uri_prefixes = { ACCT }, caa_legacy_critical = true })
  eq(r.passed, false)
end)
case("caa_ip_target_sends_no_query_and_passes", function()
  local r, probe = run("192.0.2.7")
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.details.caa_record_present, false)
  eq(#probe.log.dns, 0)
end)
case("caa_records_seen_in_presentation_form", function()
  local r = run("multi-crit-present.com")
  eq(r.details.records_seen, { '1 issue "ca.com"', '1 issue "letsencrypt.org"' })
end)
case("caa_absent_reports_no_record_present", function()
  local r = run("absent.com")
  eq(r.details.caa_record_present, false)
  eq(r.details.records_seen, nil)
end)
case("caa_allow_lookup_failure_without_insecure_proof_fails_closed", function()
  local r =
    run("caa-timeout.com", { validation_method = "acme-http-01", account_id = "123", allow_lookup_failure = true })
  eq(r.passed, false)
  eq(r.completed, false)
end)
case("caa_allow_lookup_failure_retries_then_needs_proof", function()
  local probe = F.probe { zone = zone, missing = "nodata", config = { caa_domains = { LE } } }
  local asked
  probe.dnssec_insecure = function(name)
    asked = name
    return true
  end
  local t = assert(target.normalise("caa-timeout.com", { allow_reserved = true }))
  local r = checker.check(t, { validation_method = "acme-http-01", allow_lookup_failure = true }, probe)
  eq(r.passed, true)
  eq(asked, "caa-timeout.com")
  eq(#probe.log.dns, 2)
end)
case("caa_dnssec_bogus_never_permits_even_with_allow_lookup_failure", function()
  local z = { ["bogus.example"] = { fail = { "dnssec_bogus", "DNSSEC: Bogus" } } }
  local probe = F.probe { zone = z, missing = "nodata", config = { caa_domains = { LE } } }
  probe.dnssec_insecure = function() return true end
  local t = assert(target.normalise("bogus.example", { allow_reserved = true }))
  local r = checker.check(t, { allow_lookup_failure = true }, probe)
  eq(r.passed, false)
  eq(r.completed, false)
end)
case("caa_unknown_certificate_type_fails_closed", function()
  local r = run("present.com", { certificate_type = "code-signing" })
  eq(r.passed, false)
  eq(r.completed, false)
  ok(r.errors and r.errors[1])
end)
