-- acme-tls-alpn-01 certificate checks (REFERENCE §2.6, §4.5) on fake certificate tables.
local T = require "mpic.testing"
local F = require "fake"
local target = require "mpic.target"
local util = require "mpic.core.util"
local alpn = require "mpic.challenge.acme-tls-alpn-01"
local case, eq = T.case, T.eq

local KA = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA.NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
local DIGEST = util.sha256(KA)
local HEX = util.hex(DIGEST)
local B64 = util.base64url(DIGEST)
local ET = "mpic_error:dcv_checker:tls_alpn:"

local function tgt(s) return assert(target.normalise(s, { allow_reserved = true })) end
local function answer(cert, over)
  local r = { alpn = "acme-tls/1", version = "TLSv1.3", ip = "192.0.2.1", port = 443, cert = cert }
  for k, v in pairs(over or {}) do
    r[k] = v
  end
  return r
end
local function run(tname, res, hash)
  local t = tgt(tname)
  local probe = F.probe { tls = { [t.value] = res } }
  return alpn.check(t, { key_authorization_hash = hash or HEX }, probe), probe
end
local function dns_cert(over)
  local o = { san = { { "dns", "example.com" } }, digest = DIGEST, common_name = "example.com" }
  for k, v in pairs(over or {}) do
    o[k] = v
  end
  return F.cert(o)
end
local function fails_with(r, key)
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors[1].error_type, ET .. key)
end

case("tls_alpn_valid_dns_certificate_passes", function()
  local r = run("example.com", answer(dns_cert()))
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.errors, nil)
  eq(r.details.common_name, "example.com")
  eq(r.details.validation_method, "acme-tls-alpn-01")
end)
case(
  "tls_alpn_base64url_hash_form_accepted",
  function() eq(run("example.com", answer(dns_cert()), B64).passed, true) end
)
case("tls_alpn_bad_hash_parameter_is_parameter_error", function()
  local r, probe = run("example.com", answer(dns_cert()), "abc")
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:parameter")
  eq(#probe.log.tls, 0)
end)
case("tls_alpn_valid_ipv4_certificate_passes_with_reverse_sni", function()
  local c = F.cert { san = { { "ip", "\192\0\2\7" } }, digest = DIGEST }
  local r, probe = run("192.0.2.7", answer(c))
  eq(r.passed, true)
  eq(probe.log.tls[1].sni, "7.2.0.192.in-addr.arpa")
end)
case("tls_alpn_valid_ipv6_certificate_passes", function()
  local c = F.cert { san = { { "ip", target.parse_ipv6("2001:db8::1") } }, digest = DIGEST }
  local r, probe = run("2001:db8::1", answer(c))
  eq(r.passed, true)
  T.contains(probe.log.tls[1].sni, ".ip6.arpa")
end)
case("tls_alpn_sni_is_the_dns_name", function()
  local _, probe = run("example.com", answer(dns_cert()))
  eq(probe.log.tls[1].sni, "example.com")
end)
case(
  "tls_alpn_1_alpn_not_negotiated_fails",
  function() fails_with(run("example.com", answer(dns_cert(), { alpn = false })), "alpn_not_negotiated") end
)
case("tls_alpn_2_not_self_signed_fails", function()
  fails_with(run("example.com", answer(dns_cert { self_signed = false })), "certificate:not_self_signed")
  fails_with(run("example.com", answer(dns_cert { issuer_der = "\48\3CA!" })), "certificate:not_self_signed")
end)
case("tls_alpn_3_duplicate_extension_fails", function()
  fails_with(run("example.com", answer(dns_cert { duplicates = { "2.5.29.17" } })), "certificate:duplicate_extension")
  fails_with(
    run("example.com", answer(dns_cert { duplicates = { "1.3.6.1.5.5.7.1.31" } })),
    "certificate:duplicate_extension"
  )
end)
case("tls_alpn_4_missing_extensions_fail", function()
  fails_with(run("example.com", answer(dns_cert { no_san = true })), "certificate:extension_missing")
  local r = run("example.com", answer(dns_cert { no_acme = true }))
  fails_with(r, "certificate:extension_missing")
  T.contains(r.errors[1].error_message, "Required extension OID 1.3.6.1.5.5.7.1.31 is not present")
end)
case("tls_alpn_4_obsolete_oid_does_not_count", function()
  local r = run("example.com", answer(dns_cert { acme_oid = "1.3.6.1.5.5.7.1.30.1" }))
  fails_with(r, "certificate:extension_missing")
  T.contains(r.errors[1].error_message, "Required extension OID 1.3.6.1.5.5.7.1.31 is not present")
end)
case("tls_alpn_5_wrong_name_fails", function()
  local r = run("example.com", answer(dns_cert { san = { { "dns", "other.example.com" } } }))
  fails_with(r, "certificate:san_not_hostname")
  T.contains(r.errors[1].error_message, "identifier does not match expected identifier")
end)
case("tls_alpn_5_extra_name_or_name_plus_ip_fails", function()
  fails_with(
    run("example.com", answer(dns_cert { san = { { "dns", "example.com" }, { "dns", "x.example.com" } } })),
    "certificate:no_single_san"
  )
  fails_with(
    run("example.com", answer(dns_cert { san = { { "dns", "example.com" }, { "ip", "\192\0\2\1" } } })),
    "certificate:no_single_san"
  )
end)
case(
  "tls_alpn_5_non_dnsname_entry_fails",
  function()
    fails_with(
      run("example.com", answer(dns_cert { san = { { "email", "example.com" } } })),
      "certificate:san_not_dnsname"
    )
  end
)
case("tls_alpn_5_san_differing_only_in_letter_case_passes", function()
  -- RFC 4343: DNS names compare case-insensitively
  for _, san in ipairs { "EXAMPLE.com", "Example.Com", "EXAMPLE.COM" } do
    local r = run("example.com", answer(dns_cert { san = { { "dns", san } } }))
    eq(r.passed, true, san)
    eq(r.errors, nil)
  end
  eq(run("xn--bcher-kva.example", answer(dns_cert { san = { { "dns", "XN--BCHER-KVA.Example" } } })).passed, true)
end)
case("tls_alpn_5_case_folding_is_ascii_only", function()
  -- only A-Z fold: other bytes, and a name that differs in more than case, still fail
  fails_with(run("example.com", answer(dns_cert { san = { { "dns", "EXAMPLE.co" } } })), "certificate:san_not_hostname")
  fails_with(
    run("example.com", answer(dns_cert { san = { { "dns", "EXAMPLE.com." } } })),
    "certificate:san_not_hostname"
  )
  -- 0x0E + 0x20 is ".": folding anything but A-Z would let this through
  fails_with(
    run("example.com", answer(dns_cert { san = { { "dns", "EXAMPLE\x0Ecom" } } })),
    "certificate:san_not_hostname"
  )
end)
case("tls_alpn_6_ip_as_dnsname_fails", function()
  local c = F.cert { san = { { "dns", "192.0.2.7" } }, digest = DIGEST }
  fails_with(run("192.0.2.7", answer(c)), "certificate:san_type_not_match")
end)
case("tls_alpn_6_extra_ip_fails", function()
  local c = F.cert { san = { { "ip", "\192\0\2\7" }, { "ip", "\192\0\2\8" } }, digest = DIGEST }
  local r = run("192.0.2.7", answer(c))
  fails_with(r, "certificate:san_type_not_match")
  T.contains(r.errors[1].error_message, "unexpected identifiers")
end)
case("tls_alpn_6_wrong_ip_fails", function()
  local c = F.cert { san = { { "ip", "\192\0\2\8" } }, digest = DIGEST }
  fails_with(run("192.0.2.7", answer(c)), "certificate:san_not_hostname")
end)
case("tls_alpn_6_v4_mapped_16_byte_encoding_refused", function()
  local mapped = string.rep("\0", 10) .. "\255\255\192\0\2\7"
  local c = F.cert { san = { { "ip", mapped } }, digest = DIGEST }
  fails_with(run("192.0.2.7", answer(c)), "certificate:san_not_hostname")
end)
case(
  "tls_alpn_7_noncritical_acme_extension_fails",
  function()
    fails_with(run("example.com", answer(dns_cert { acme_critical = false })), "certificate:noncritical_alpn_extension")
  end
)
case("tls_alpn_8_malformed_extension_value_fails", function()
  fails_with(
    run("example.com", answer(dns_cert { acme_value = F.tlv(0x04, DIGEST:sub(1, 31)) })),
    "certificate:malformed_acme_extension"
  )
  fails_with(
    run("example.com", answer(dns_cert { acme_value = F.tlv(0x0C, DIGEST) })),
    "certificate:malformed_acme_extension"
  )
  fails_with(
    run("example.com", answer(dns_cert { acme_value = F.tlv(0x04, DIGEST) .. "\0" })),
    "certificate:malformed_acme_extension"
  )
end)
case("tls_alpn_9_wrong_digest_fails_showing_both", function()
  local wrong = util.sha256("other")
  local r = run("example.com", answer(dns_cert { digest = wrong }))
  fails_with(r, "certificate:digest_mismatch")
  T.contains(r.errors[1].error_message, HEX)
  T.contains(r.errors[1].error_message, util.hex(wrong))
end)
case("tls_alpn_checks_run_in_order", function()
  -- not self-signed AND missing extension: check 2 reports first
  fails_with(
    run("example.com", answer(dns_cert { self_signed = false, no_acme = true })),
    "certificate:not_self_signed"
  )
  -- non-critical AND wrong digest: check 7 reports first
  fails_with(
    run("example.com", answer(dns_cert { acme_critical = false, digest = util.sha256("x") })),
    "certificate:noncritical_alpn_extension"
  )
end)
case("tls_alpn_tls_1_1_fails_protocol_version", function()
  local r = run("example.com", answer(dns_cert(), { version = "TLSv1.1" }))
  eq(r.passed, false)
  eq(r.completed, true)
  T.contains(r.errors[1].error_message, "protocol version not supported")
  eq(run("example.com", answer(dns_cert(), { version = "TLSv1.2" })).passed, true)
end)
case("tls_alpn_connect_refused_and_timeout_are_errors", function()
  local r = run("example.com", { fail = "connect", detail = "127.0.0.1: Connection refused" })
  eq(r.passed, false)
  eq(r.completed, false)
  T.contains(r.errors[1].error_message, "127.0.0.1: Connection refused")
  eq(run("example.com", { fail = "timeout", detail = "t" }).completed, false)
  eq(run("example.com", { fail = "protocol", detail = "Server only speaks HTTP, not TLS" }).completed, false)
  eq(run("example.com", { fail = "dns", detail = "no addresses" }).completed, false)
end)
case("tls_alpn_server_alert_is_completed_failure", function()
  local r = run("example.com", { fail = "tls", detail = "no application protocol" })
  eq(r.passed, false)
  eq(r.completed, true)
end)
case("tls_alpn_san_parser_rejects_trailing_garbage", function()
  eq(alpn.helpers.parse_san(F.san_der { { "dns", "a.example" } } .. "\0"), nil)
  eq(#alpn.helpers.parse_san(F.san_der { { "dns", "a.example" }, { "ip", "\1\2\3\4" } }), 2)
end)
