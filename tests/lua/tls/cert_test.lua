-- The certificate table the probe returns, for every lab certificate variant
-- (mkcerts.sh; REFERENCE 2.6 checks 2-9 are judged in Lua on these fields).
local T = require "mpic.testing"
-- the lab is on loopback: each probe lifts the reserved-address guard, as labs do
local tls = setmetatable({}, { __index = require "mpic.core.tls" })
function tls.alpn(ip, port, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.tls").alpn(ip, port, opts)
end
local util = require "mpic.core.util"
local lab = require "tls_lab"
local case, eq, ok = T.case, T.eq, T.ok

local ACME, OBSOLETE, SAN = "1.3.6.1.5.5.7.1.31", "1.3.6.1.5.5.7.1.30.1", "2.5.29.17"

local function cert_of(variant)
  local r, kind, detail = tls.alpn(lab.addr(), lab.port(variant), { sni = lab.DNS_ID, timeout_ms = 3000 })
  ok(r, variant .. ": " .. tostring(kind) .. " " .. tostring(detail))
  eq(r.alpn, "acme-tls/1")
  return r.cert
end

local function exts(cert, oid)
  local found = {}
  for _, e in ipairs(cert.extensions) do
    if e.oid == oid then found[#found + 1] = e end
  end
  return found
end

local function good_value() return "\4\32" .. util.sha256(lab.key_authorization()) end

local function dns(name) return { type = "dns", value = name } end

case("cert_valid_dns_fields", function()
  local c = cert_of("valid_dns")
  eq(c.common_name, lab.DNS_ID)
  eq(c.self_signed, true)
  eq(c.subject_der, c.issuer_der)
  eq(c.duplicate_extensions, {})
  eq(c.san, { dns(lab.DNS_ID) })
  eq(c.san_single_dns, true)
  eq(c.san_malformed, false)
  eq(c.san_der, "\48\19\130\17" .. lab.DNS_ID)
  local a = exts(c, ACME)
  eq(#a, 1)
  eq(a[1].critical, true)
  eq(a[1].value, good_value())
  eq(#a[1].value, 34)
  eq(exts(c, SAN)[1].critical, false)
end)

case("cert_parse_cert_matches_probe_table", function()
  local c = cert_of("valid_dns")
  eq(assert(tls.parse_cert(c.der)), c)
end)

case("cert_valid_ipv4_has_4_byte_ip_and_no_cn", function()
  local c = cert_of("valid_ipv4")
  eq(c.common_name, nil)
  eq(c.san, { { type = "ip", value = "\127\0\0\61" } })
  eq(c.san_single_dns, false)
  eq(exts(c, ACME)[1].value, good_value())
end)

case("cert_valid_ipv6_has_16_byte_ip", function()
  local c = cert_of("valid_ipv6")
  eq(c.san, { { type = "ip", value = ("\0"):rep(15) .. "\1" } })
end)

case("cert_ipv4_mapped_address_kept_as_16_bytes", function()
  local c = cert_of("ipv4_mapped")
  eq(c.san, { { type = "ip", value = ("\0"):rep(10) .. "\255\255\127\0\0\61" } })
end)

case("cert_wrong_digest_value_differs", function()
  local a = exts(cert_of("wrong_digest"), ACME)
  eq(#a, 1)
  eq(#a[1].value, 34)
  ok(a[1].value ~= good_value(), "digest must differ")
  eq(a[1].value:sub(1, 2), "\4\32")
end)

case("cert_noncritical_acme_extension", function()
  local a = exts(cert_of("noncritical"), ACME)
  eq(a[1].critical, false)
  eq(a[1].value, good_value())
end)

case("cert_missing_acme_extension", function()
  local c = cert_of("missing_acme")
  eq(#exts(c, ACME), 0)
  eq(c.san, { dns(lab.DNS_ID) })
end)

case("cert_missing_san_extension", function()
  local c = cert_of("missing_san")
  eq(#exts(c, SAN), 0)
  eq(c.san, {})
  eq(c.san_der, nil)
  eq(c.san_single_dns, false)
  eq(#exts(c, ACME), 1)
end)

case("cert_obsolete_oid_only", function()
  local c = cert_of("obsolete_oid")
  eq(#exts(c, ACME), 0)
  local o = exts(c, OBSOLETE)
  eq(#o, 1)
  eq(o[1].critical, true)
end)

case("cert_malformed_acme_values_reported_raw", function()
  local short = exts(cert_of("malformed_short"), ACME)[1]
  eq(#short.value, 33)
  eq(short.value:sub(1, 2), "\4\31")
  local wrongtype = exts(cert_of("malformed_type"), ACME)[1]
  eq(#wrongtype.value, 34)
  eq(wrongtype.value:sub(1, 2), "\12\32")
end)

case("cert_san_variants", function()
  eq(cert_of("wrong_name").san, { dns("other.mpic.example") })
  local extra = cert_of("extra_name")
  eq(extra.san, { dns(lab.DNS_ID), dns("extra.mpic.example") })
  eq(extra.san_single_dns, false)
  eq(cert_of("name_plus_ip").san, { dns(lab.DNS_ID), { type = "ip", value = "\127\0\0\61" } })
  local ipdns = cert_of("ip_as_dns")
  eq(ipdns.san, { dns("127.0.0.61") })
  eq(ipdns.san_single_dns, true)
  eq(cert_of("extra_ip").san, { { type = "ip", value = "\127\0\0\61" }, { type = "ip", value = "\127\0\0\62" } })
end)

case("cert_issued_by_ca_is_not_self_signed", function()
  local c = cert_of("not_self_signed_ca")
  eq(c.self_signed, false)
  ok(c.subject_der ~= c.issuer_der, "issuer differs")
end)

case("cert_same_name_other_key_is_not_self_signed", function()
  local c = cert_of("not_self_signed_samename")
  eq(c.subject_der, c.issuer_der)
  eq(c.self_signed, false)
end)

case("cert_duplicate_acme_extension_flagged", function()
  local c = cert_of("dup_acme")
  eq(c.duplicate_extensions, { ACME })
  eq(#exts(c, ACME), 2)
  eq(c.self_signed, true)
end)

case("cert_duplicate_san_extension_flagged", function()
  local c = cert_of("dup_san")
  eq(c.duplicate_extensions, { SAN })
  eq(#exts(c, SAN), 2)
  eq(c.san, { dns(lab.DNS_ID) })
end)

case("cert_variants_without_duplicates_report_none", function()
  for _, v in ipairs({ "valid_ipv4", "wrong_name", "not_self_signed_ca", "missing_san" }) do
    eq(cert_of(v).duplicate_extensions, {}, v)
  end
end)
