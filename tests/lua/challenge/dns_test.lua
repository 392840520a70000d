-- DNS-based DCV methods (REFERENCE §2.4, §2.5, §2.7, §2.9-§2.12, §4.6) on a fake resolver.
local T = require "mpic.testing"
local F = require "fake"
local target = require "mpic.target"
local util = require "mpic.core.util"
local case, eq = T.case, T.eq

local function ch(name) return require("mpic.challenge." .. name) end
local function tgt(s) return assert(target.normalise(s, { allow_reserved = true })) end
local function run(method, tname, params, zone, spec)
  spec = spec or {}
  spec.zone = zone
  local probe = F.probe(spec)
  return ch(method).check(tgt(tname), params, probe), probe
end

-- Vectors of §2.1 / §2.5
local KA = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
local HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local HEX = "653471d42925d7eb4cd39a39cda8b34d3034c94cb90067ab78c8123560ba2e5f"

case("dns01_vector_key_authorization_hash", function()
  eq(util.base64url(util.sha256(KA)), HASH)
  eq(util.hex(util.sha256(KA)), HEX)
end)
case(
  "dns_account_01_label_vector",
  function()
    eq(ch("dns-account-01").helpers.account_label("https://example.com/acme/acct/ExampleAccount"), "_ujmmovf2vn55tgye")
  end
)

-- acme-dns-01
local Z = {
  ["_acme-challenge.ok.example"] = { TXT = { F.txt(HASH) } },
  ["_acme-challenge.multi.example"] = { TXT = { F.txt("other"), F.txt(HASH:sub(1, 20), HASH:sub(21)) } },
  ["_acme-challenge.cname.example"] = { cname = "c1.example." },
  ["c1.example"] = { cname = "c2.example." },
  ["c2.example"] = { cname = "c3.example." },
  ["c3.example"] = { cname = "c4.example." },
  ["c4.example"] = { TXT = { F.txt(HASH) } },
  ["_acme-challenge.wrong.example"] = { TXT = { F.txt("nope") } },
  ["_acme-challenge.five.example"] = { TXT = { F.txt("w1"), F.txt("w2"), F.txt("w3"), F.txt("w4"), F.txt("w5") } },
  ["_acme-challenge.long.example"] = { TXT = { F.txt(string.rep("x", 150)) } },
  ["_acme-challenge.lead.example"] = { TXT = { F.txt(" " .. HASH) } },
  ["_acme-challenge.trail.example"] = { TXT = { F.txt(HASH .. " ") } },
  ["_acme-challenge.upper.example"] = { TXT = { F.txt(HASH:upper()) } },
  ["_acme-challenge.nodata.example"] = {},
  ["_acme-challenge.servfail.example"] = { fail = { "servfail", "SERVFAIL looking up TXT" } },
  ["_acme-challenge.refused.example"] = { fail = { "refused", "REFUSED", rcode = "REFUSED" } },
  ["_acme-challenge.timeout.example"] = { fail = { "timeout", "query timed out" } },
}
local P = { key_authorization_hash = HASH }

case("dns01_correct_value_passes", function()
  local r = run("acme-dns-01", "ok.example", P, Z)
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.errors, nil)
  eq(r.details.records_seen, { HASH })
  eq(r.details.response_code, "NOERROR")
  eq(r.details.found_at, "_acme-challenge.ok.example")
  eq(r.details.validation_method, "acme-dns-01")
end)
case(
  "dns01_hex_hash_form_accepted",
  function() eq(run("acme-dns-01", "ok.example", { key_authorization_hash = HEX }, Z).passed, true) end
)
case("dns01_wildcard_is_stripped", function()
  local r, probe = run("acme-dns-01", "*.ok.example", P, Z)
  eq(r.passed, true)
  eq(probe.log.dns, { "_acme-challenge.ok.example/TXT" })
end)
case(
  "dns01_multi_strings_joined_and_any_rr_matches",
  function() eq(run("acme-dns-01", "multi.example", P, Z).passed, true) end
)
case("dns01_four_cname_chain_passes_and_is_reported", function()
  local r = run("acme-dns-01", "cname.example", P, Z)
  eq(r.passed, true)
  eq(r.details.cname_chain, { "c1.example.", "c2.example.", "c3.example.", "c4.example." })
end)
case("dns01_wrong_value_fails_with_boulder_text", function()
  local r = run("acme-dns-01", "wrong.example", P, Z)
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.details.reason, 'Incorrect TXT record "nope" found at _acme-challenge.wrong.example')
end)
case("dns01_five_wrong_values_counts_the_others", function()
  local r = run("acme-dns-01", "five.example", P, Z)
  eq(r.details.reason, 'Incorrect TXT record "w1" (and 4 more) found at _acme-challenge.five.example')
end)
case("dns01_long_value_quoted_to_100_chars", function()
  local r = run("acme-dns-01", "long.example", P, Z)
  eq(r.details.reason, 'Incorrect TXT record "' .. string.rep("x", 100) .. '..." found at _acme-challenge.long.example')
end)
case("dns01_leading_whitespace_fails", function() eq(run("acme-dns-01", "lead.example", P, Z).passed, false) end)
case("dns01_trailing_whitespace_fails", function() eq(run("acme-dns-01", "trail.example", P, Z).passed, false) end)
case("dns01_comparison_is_case_sensitive", function() eq(run("acme-dns-01", "upper.example", P, Z).passed, false) end)
case("dns01_nxdomain_is_completed_failure", function()
  local r = run("acme-dns-01", "missing.example", P, Z)
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:lookup")
  T.contains(r.errors[1].error_message, "Error type: NXDOMAIN")
  eq(r.details.response_code, "NXDOMAIN")
end)
case("dns01_nodata_is_completed_failure_noanswer", function()
  local r = run("acme-dns-01", "nodata.example", P, Z)
  eq(r.passed, false)
  eq(r.completed, true)
  T.contains(r.errors[1].error_message, "Error type: NoAnswer")
end)
case("dns01_servfail_refused_timeout_are_errors", function()
  for _, n in ipairs { "servfail", "refused", "timeout" } do
    local r = run("acme-dns-01", n .. ".example", P, Z)
    eq(r.passed, false, n)
    eq(r.completed, false, n)
    eq(r.errors[1].error_type, "mpic_error:dcv_checker:lookup")
  end
  eq(run("acme-dns-01", "refused.example", P, Z).details.response_code, "REFUSED")
end)
case("dns01_ad_flag_reported", function()
  eq(run("acme-dns-01", "ok.example", P, Z, { ad = true }).details.ad_flag, true)
  eq(run("acme-dns-01", "ok.example", P, Z).details.ad_flag, false)
end)
case("dns01_bad_hash_parameter_is_parameter_error", function()
  local r = run("acme-dns-01", "ok.example", { key_authorization_hash = "short" }, Z)
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:parameter")
end)
case("dns01_nul_and_unicode_compared_bytewise", function()
  local z = { ["_acme-challenge.nul.example"] = { TXT = { F.txt(HASH .. "\0"), F.txt("\u{2615}") } } }
  local r = run("acme-dns-01", "nul.example", P, z)
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("dns01_open_mpic_hash_vector", function()
  local h = "7FwkJPsKf-TH54wu4eiIFA3nhzYaevsL7953ihy-tpo"
  local z = { ["_acme-challenge.dns-01.example"] = { TXT = { F.txt(h) } } }
  eq(run("acme-dns-01", "dns-01.example", { key_authorization_hash = h }, z).passed, true)
end)

-- dns-account-01
case("dns_account_01_queries_account_label", function()
  local acct = "https://example.com/acme/acct/ExampleAccount"
  local z = { ["_ujmmovf2vn55tgye._acme-challenge.ok.example"] = { TXT = { F.txt(HASH) } } }
  local r, probe = run("dns-account-01", "*.ok.example", { account_uri = acct, key_authorization_hash = HASH }, z)
  eq(r.passed, true)
  eq(probe.log.dns, { "_ujmmovf2vn55tgye._acme-challenge.ok.example/TXT" })
end)
case("dns_account_01_requires_account_uri", function()
  local r = run("dns-account-01", "ok.example", { key_authorization_hash = HASH }, {})
  eq(r.passed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:parameter")
end)

-- dns-change
local V = "1234567890abcdefg."
local ZC = {
  ["dns-change-txt.example"] = { TXT = { F.txt(V) } },
  ["dns-change-cname.example"] = { cname = V },
  ["dns-change-caa.example"] = { CAA = { F.caa(0, "issue", V) } },
  ["_dnsauth.pfx.example"] = { TXT = { F.txt("xx" .. V .. "yy") } },
  ["pfx.example"] = { TXT = { F.txt("Token-ABC") } },
}
local function dc(t, rtype, extra)
  local p = { challenge_value = V, dns_record_type = rtype }
  for k, v in pairs(extra or {}) do
    p[k] = v
  end
  return run("dns-change", t, p, ZC)
end
case("dns_change_txt_cname_caa_pass", function()
  eq(dc("dns-change-txt.example", "TXT").passed, true)
  eq(dc("dns-change-cname.example", "CNAME").passed, true)
  eq(dc("dns-change-caa.example", "CAA").passed, true)
end)
case("dns_change_prefix_selects_query_name", function()
  local _, p1 = dc("pfx.example", "TXT", { dns_name_prefix = "_dnsauth" })
  eq(p1.log.dns, { "_dnsauth.pfx.example/TXT" })
  local _, p2 = dc("pfx.example", "TXT", { dns_name_prefix = "" })
  eq(p2.log.dns, { "pfx.example/TXT" })
  local _, p3 = dc("pfx.example", "TXT")
  eq(p3.log.dns, { "pfx.example/TXT" })
end)
case("dns_change_substring_by_default_exact_on_request", function()
  eq(dc("pfx.example", "TXT", { dns_name_prefix = "_dnsauth" }).passed, true)
  eq(dc("pfx.example", "TXT", { dns_name_prefix = "_dnsauth", require_exact_match = true }).passed, false)
end)
case("dns_change_txt_case_sensitive_unless_disabled", function()
  local p = { challenge_value = "token-abc", dns_record_type = "TXT" }
  eq(run("dns-change", "pfx.example", p, ZC).passed, false)
  p.require_exact_case = false
  eq(run("dns-change", "pfx.example", p, ZC).passed, true)
end)
case("dns_change_cname_and_caa_case_insensitive", function()
  local p = { challenge_value = V:upper(), dns_record_type = "CNAME", require_exact_case = true }
  eq(run("dns-change", "dns-change-cname.example", p, ZC).passed, true)
  p.dns_record_type = "CAA"
  eq(run("dns-change", "dns-change-caa.example", p, ZC).passed, true)
end)
case("dns_change_rejects_other_record_types", function()
  local r = dc("dns-change-txt.example", "A")
  eq(r.passed, false)
  eq(r.completed, false)
end)

-- contact methods
local PHONE, EMAIL = "+1-123-456-7890", "caa.contactemail@example.com"
local ZK = {
  ["_validation-contactphone.dns-phone-txt.example"] = { TXT = { F.txt(PHONE) } },
  ["_validation-contactphone.dns-phone-cname-txt.example"] = { cname = "target.example." },
  ["target.example"] = { TXT = { F.txt(PHONE) } },
  ["_validation-contactphone.dns-phone-txt-whitespace.example"] = { TXT = { F.txt(PHONE .. " ") } },
  ["_validation-contactemail.dns-email-txt.example"] = { TXT = { F.txt("Caa.ContactEmail@example.com") } },
  ["_validation-contactemail.dns-email-txt-null-char.example"] = { TXT = { F.txt(EMAIL .. "\0") } },
  ["_validation-contactemail.dns-email-txt-junk.example"] = { TXT = { F.txt(EMAIL .. "junk") } },
  ["_validation-contactemail.dns-email-txt-whitespace.example"] = { TXT = { F.txt(" " .. EMAIL) } },
  ["dns-email-caa.example"] = { CAA = { F.caa(0, "contactemail", EMAIL) } },
  ["dns-email-caa-critical.example"] = { CAA = { F.caa(128, "contactemail", EMAIL) } },
  ["dns-email-caa-multi.example"] = {
    CAA = {
      F.caa(0, "contactemail", "other@example.com"),
      F.caa(0, "ContactEmail", EMAIL:upper()),
    },
  },
  ["dns-email-caa-cname.example"] = { cname = "dns-email-caa.example." },
  ["dns-email-caa-whitespace.example"] = { CAA = { F.caa(0, "contactemail", EMAIL .. " ") } },
  ["dns-email-caa-null.example"] = { CAA = { F.caa(0, "contactemail", EMAIL .. "\0") } },
  ["dns-email-caa-issue-only.example"] = { CAA = { F.caa(0, "issue", "ca.example") } },
  ["sub.dns-email-caa-issue-only.example"] = {},
  ["dns-phone-caa.example"] = { CAA = { F.caa(0, "contactphone", PHONE) } },
  ["dns-phone-caa-critical.example"] = { CAA = { F.caa(128, "contactphone", PHONE) } },
  ["dns-phone-caa-whitespace.example"] = { CAA = { F.caa(0, "contactphone", PHONE .. " ") } },
  ["caa-error.example"] = { fail = { "servfail", "SERVFAIL" } },
  example = {},
}
local function contact(method, t, value, extra)
  local p = { challenge_value = value }
  for k, v in pairs(extra or {}) do
    p[k] = v
  end
  return run(method, t, p, ZK)
end
case("contact_phone_txt_exact_and_cname_pass", function()
  eq(contact("contact-phone-txt", "dns-phone-txt.example", PHONE).passed, true)
  eq(contact("contact-phone-txt", "dns-phone-cname-txt.example", PHONE).passed, true)
end)
case(
  "contact_phone_txt_other_number_fails",
  function() eq(contact("contact-phone-txt", "dns-phone-txt.example", "+1-123-456-7891").passed, false) end
)
case(
  "contact_phone_txt_whitespace_record_fails",
  function() eq(contact("contact-phone-txt", "dns-phone-txt-whitespace.example", PHONE).passed, false) end
)
case(
  "contact_email_txt_case_insensitive_passes",
  function() eq(contact("contact-email-txt", "dns-email-txt.example", EMAIL).passed, true) end
)
case("contact_email_txt_null_junk_whitespace_fail", function()
  for _, n in ipairs { "null-char", "junk", "whitespace" } do
    eq(contact("contact-email-txt", "dns-email-txt-" .. n .. ".example", EMAIL).passed, false, n)
  end
end)
case("contact_email_caa_standard_critical_multi_cname_pass", function()
  for _, n in ipairs { "dns-email-caa", "dns-email-caa-critical", "dns-email-caa-multi", "dns-email-caa-cname" } do
    local r = contact("contact-email-caa", n .. ".example", EMAIL)
    eq(r.passed, true, n)
  end
end)
case("contact_email_caa_climbs_to_parent_set", function()
  local r = contact("contact-email-caa", "nxsub.sub.dns-email-caa.example", EMAIL)
  eq(r.passed, true)
  eq(r.details.found_at, "dns-email-caa.example")
end)
case("contact_email_caa_prefix_starts_the_climb", function()
  local r, probe = contact("contact-email-caa", "dns-email-caa.example", EMAIL, { dns_name_prefix = "sub" })
  eq(r.passed, true)
  eq(probe.log.dns[1], "sub.dns-email-caa.example/CAA")
end)
case("contact_email_caa_wrong_whitespace_null_fail", function()
  eq(contact("contact-email-caa", "dns-email-caa.example", "wrong@example.com").passed, false)
  eq(contact("contact-email-caa", "dns-email-caa-whitespace.example", EMAIL).passed, false)
  eq(contact("contact-email-caa", "dns-email-caa-null.example", EMAIL).passed, false)
end)
case("contact_caa_issue_only_set_fails_and_stops_climb", function()
  -- the issue-only set is the relevant one: a contact record above it is not used
  local saved = ZK.example
  ZK.example = { CAA = { F.caa(0, "contactemail", EMAIL) } }
  local ran, r, probe = pcall(contact, "contact-email-caa", "sub.dns-email-caa-issue-only.example", EMAIL)
  ZK.example = saved
  assert(ran, r)
  eq(r.passed, false)
  eq(r.completed, true)
  T.contains(table.concat(probe.log.dns, " "), "dns-email-caa-issue-only.example/CAA")
end)
case("contact_caa_no_record_set_fails", function()
  local r = contact("contact-email-caa", "dns-email-caa-no-record-set.example", EMAIL)
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("contact_caa_lookup_error_is_error", function()
  local r = contact("contact-phone-caa", "caa-error.example", PHONE)
  eq(r.passed, false)
  eq(r.completed, false)
end)
case("contact_phone_caa_cases", function()
  eq(contact("contact-phone-caa", "dns-phone-caa.example", PHONE).passed, true)
  eq(contact("contact-phone-caa", "dns-phone-caa-critical.example", PHONE).passed, true)
  eq(contact("contact-phone-caa", "dns-phone-caa.example", "+1-123-456-7891").passed, false)
  eq(contact("contact-phone-caa", "dns-phone-caa-whitespace.example", PHONE).passed, false)
end)

-- ip-address
local ZI = {
  ["ip-address.example"] = { A = { F.a("1.2.3.4") } },
  ["ip-address-cname.example"] = { cname = "ip-address.example." },
  ["ip-address-multi.example"] = { A = { F.a("5.6.7.8"), F.a("1.2.3.4") } },
  ["ip-address-junk.example"] = { A = { F.a("foo"), F.a("bar"), F.a("1.2.3.4") } },
  ["ip6.example"] = { AAAA = { F.a("2001:4860:4860::8888") } },
  ["noa.example"] = { AAAA = { F.a("2001:4860:4860::8888") } },
}
local function ipa(t, value, rtype)
  return run("ip-address", t, { challenge_value = value, dns_record_type = rtype }, ZI)
end
case("ip_address_valid_records_pass", function()
  eq(ipa("ip-address.example", "1.2.3.4", "A").passed, true)
  eq(ipa("ip-address-cname.example", "1.2.3.4", "A").passed, true)
  eq(ipa("ip-address-multi.example", "1.2.3.4", "A").passed, true)
end)
case("ip_address_ipv6_compared_in_binary", function()
  eq(ipa("ip6.example", "2001:4860:4860::8888", "AAAA").passed, true)
  eq(ipa("ip6.example", "2001:4860:4860:0:00:000:0000:8888", "AAAA").passed, true)
end)
case("ip_address_invalid_cases_fail", function()
  eq(ipa("ip-address.example", "1.2.3.5", "A").passed, false)
  eq(ipa("missing.example", "1.2.3.4", "A").passed, false)
  eq(ipa("noa.example", "1.2.3.4", "A").passed, false)
  eq(ipa("ip6.example", "2001:4860:4860::8889", "AAAA").passed, false)
  eq(ipa("ip6.example", "1:2:3:4:5:6:7:8:9", "AAAA").passed, false)
  eq(ipa("ip6.example", "2001:4860:4860:00000::8888", "AAAA").passed, false)
  eq(ipa("ip6.example", "1.2.3.4", "AAAA").passed, false)
end)
case("ip_address_malformed_value_is_completed_failure", function()
  local r = ipa("ip-address.example", "1.2.00.3", "A")
  eq(r.passed, false)
  eq(r.completed, true)
end)
case(
  "ip_address_skips_malformed_records",
  function() eq(ipa("ip-address-junk.example", "1.2.3.4", "A").passed, true) end
)

-- reverse-address-lookup
case("reverse_lookup_ip_target_queries_reverse_name", function()
  local z = { ["4.3.2.1.in-addr.arpa"] = { PTR = { F.name("Host.Example.com.") } } }
  local r, probe = run("reverse-address-lookup", "1.2.3.4", { challenge_value = "host.example.com." }, z)
  eq(r.passed, true)
  eq(probe.log.dns, { "4.3.2.1.in-addr.arpa/PTR" })
end)
case("reverse_lookup_ipv6_nibbles", function()
  local rev = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
  local z = { [rev] = { PTR = { F.name("host.example.com.") } } }
  local r = run("reverse-address-lookup", "2001:db8::1", { challenge_value = "host.example.com." }, z)
  eq(r.passed, true)
end)
case("reverse_lookup_requires_trailing_dot_form", function()
  local z = { ["4.3.2.1.in-addr.arpa"] = { PTR = { F.name("host.example.com.") } } }
  eq(run("reverse-address-lookup", "1.2.3.4", { challenge_value = "host.example.com" }, z).passed, false)
end)
case("reverse_lookup_name_target_queried_as_given", function()
  local z = { ["4.3.2.1.in-addr.arpa"] = { PTR = { F.name("host.example.com.") } } }
  local r, probe = run("reverse-address-lookup", "4.3.2.1.in-addr.arpa", { challenge_value = "host.example.com." }, z)
  eq(r.passed, true)
  eq(probe.log.dns, { "4.3.2.1.in-addr.arpa/PTR" })
end)
