-- acme-tls-alpn-01 (BR 3.2.2.4.20 / 3.2.2.5.7, RFC 8737, RFC 8738): a TLS
-- handshake offering only ALPN "acme-tls/1", then the nine certificate checks
-- of REFERENCE §2.6 in Boulder's order, on the certificate table that
-- mpic.core.tls produces (extensions with raw extnValue bytes, SAN entries).
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local error_types = require "mpic.error_types"
local type, ipairs, tostring = type, ipairs, tostring
local sfmt, sbyte, schar = string.format, string.byte, string.char

local OID_SAN = "2.5.29.17"
local OID_ACME = "1.3.6.1.5.5.7.1.31"
local ET = "mpic_error:dcv_checker:tls_alpn:"

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "acme-tls-alpn-01",
  check_type = "dcv",
  br_section = "3.2.2.4.20",
  br_section_ip = "3.2.2.5.7",
  identifiers = { dns = true, ip = true },
  wildcard = "reject",
  caa_method_label = "tls-alpn-01",
  params = {
    key_authorization_hash = { type = "string", required = true },
  },
}

-- One DER TLV at position i of s: tag, content, next position (or nil).
local function tlv(s, i)
  if i + 1 > #s then return nil end
  local tag, len = sbyte(s, i), sbyte(s, i + 1)
  i = i + 2
  if len >= 0x80 then
    local n = len & 0x7f
    if n == 0 or n > 3 or i + n - 1 > #s then return nil end
    len = 0
    for k = 0, n - 1 do
      len = (len << 8) | sbyte(s, i + k)
    end
    i = i + n
  end
  if i + len - 1 > #s then return nil end
  return tag, s:sub(i, i + len - 1), i + len
end

-- The GeneralNames of a SAN extnValue: list of {tag=, value=} or nil when malformed.
function H.parse_san(der)
  if type(der) ~= "string" then return nil end
  local tag, content, nxt = tlv(der, 1)
  if tag ~= 0x30 or nxt ~= #der + 1 then return nil end
  local out, i = {}, 1
  while i <= #content do
    local t, v, n = tlv(content, i)
    if not t then return nil end
    out[#out + 1] = { tag = t, value = v }
    i = n
  end
  return out
end

-- DNS names compare case-insensitively, ASCII letters only (RFC 4343 §3;
-- RFC 8737 §3 compares the dNSName with the identifier as a DNS name).
local function ascii_lower(s)
  return (s:gsub("[A-Z]", function(c) return schar(sbyte(c) + 32) end))
end

local function find_ext(cert, oid)
  for _, e in ipairs(cert.extensions or {}) do
    if e.oid == oid then return e end
  end
  return nil
end

local function fail(d, key, reason, requested, where)
  d.reason = sfmt(
    "Incorrect validation certificate for tls-alpn-01 challenge. Requested %s from %s. %s",
    requested,
    tostring(where),
    reason
  )
  return C.result(false, true, C.err(ET .. key, reason), d)
end

-- The nine checks. Returns a result table.
function H.verify(target, want, res, d)
  local requested = target.value
  local where = res.ip and (tostring(res.ip) .. ":" .. tostring(res.port or 443)) or "server"
  if res.alpn ~= "acme-tls/1" then
    return fail(
      d,
      "alpn_not_negotiated",
      'Cannot negotiate ALPN protocol "acme-tls/1" for tls-alpn-01 challenge',
      requested,
      where
    )
  end
  local cert = res.cert
  if type(cert) ~= "table" then
    return fail(d, "certificate:extension_missing", "No certificate presented", requested, where)
  end
  d.common_name = cert.common_name
  local same_name = cert.subject_der == nil or cert.issuer_der == nil or cert.subject_der == cert.issuer_der
  if cert.self_signed ~= true or not same_name then
    return fail(d, "certificate:not_self_signed", "Certificate is not self-signed", requested, where)
  end
  if type(cert.duplicate_extensions) == "table" and #cert.duplicate_extensions > 0 then
    return fail(
      d,
      "certificate:duplicate_extension",
      "Certificate has duplicate extension " .. tostring(cert.duplicate_extensions[1]),
      requested,
      where
    )
  end
  local san, acme = find_ext(cert, OID_SAN), find_ext(cert, OID_ACME)
  if not acme then
    return fail(
      d,
      "certificate:extension_missing",
      "Required extension OID " .. OID_ACME .. " is not present",
      requested,
      where
    )
  end
  if not san then
    return fail(
      d,
      "certificate:extension_missing",
      "Required extension OID " .. OID_SAN .. " is not present",
      requested,
      where
    )
  end
  local names = H.parse_san(san.value)
  if not names then
    return fail(d, "certificate:no_single_san", "malformed subjectAltName extension", requested, where)
  end
  if target.kind == "dns" then
    if #names ~= 1 then return fail(d, "certificate:no_single_san", "wrong number of identifiers", requested, where) end
    if names[1].tag ~= 0x82 then
      return fail(d, "certificate:san_not_dnsname", "unexpected identifiers", requested, where)
    end
    if ascii_lower(names[1].value) ~= ascii_lower(target.value) then
      return fail(d, "certificate:san_not_hostname", "identifier does not match expected identifier", requested, where)
    end
  else
    local ips, others = {}, 0
    for _, n in ipairs(names) do
      if n.tag == 0x87 then
        ips[#ips + 1] = n.value
      else
        others = others + 1
      end
    end
    if others > 0 then
      return fail(d, "certificate:san_type_not_match", "wrong number of identifiers", requested, where)
    end
    if #ips ~= 1 then return fail(d, "certificate:san_type_not_match", "unexpected identifiers", requested, where) end
    local wantip = target.bytes or T.parse_ip(target.value)
    if ips[1] ~= wantip then
      return fail(d, "certificate:san_not_hostname", "identifier does not match expected identifier", requested, where)
    end
  end
  if acme.critical ~= true then
    return fail(
      d,
      "certificate:noncritical_alpn_extension",
      "Required extension OID " .. OID_ACME .. " is not critical",
      requested,
      where
    )
  end
  local v = acme.value
  if type(v) ~= "string" or #v ~= 34 or v:sub(1, 2) ~= "\4\32" then
    return fail(
      d,
      "certificate:malformed_acme_extension",
      "Extension OID " .. OID_ACME .. " is not an OCTET STRING of 32 bytes",
      requested,
      where
    )
  end
  local got = v:sub(3)
  if got ~= want then
    local util = C.util()
    return fail(
      d,
      "certificate:digest_mismatch",
      sfmt("Expected acmeValidationV1 extension value %s for this challenge but got %s", util.hex(want), util.hex(got)),
      requested,
      where
    )
  end
  return C.result(true, true, nil, d)
end

local OLD_TLS = { SSLv3 = true, TLSv1 = true, ["TLSv1.0"] = true, ["TLSv1.1"] = true }

function M.check(target, params, probe)
  local want = C.decode_hash(params.key_authorization_hash)
  if not want or #want ~= 32 then
    return C.result(
      false,
      false,
      C.param_error("key_authorization_hash", params.key_authorization_hash),
      { validation_method = M.name }
    )
  end
  local sni = target.kind == "ip" and T.reverse_name(target.bytes or T.parse_ip(target.value)) or target.value
  local d = { validation_method = M.name, common_name = nil }
  local res, kind, detail = probe.tls_alpn(target.value, sni)
  if not res then
    if kind == "tls" then
      -- The server answered with an alert: evidence obtained, it refused.
      return C.result(false, true, C.lookup_error("tls", detail), d)
    end
    return C.result(false, error_types.completed(kind), C.lookup_error(kind or "connect", detail), d)
  end
  d.resolved_ip = res.ip
  if res.cert and type(res.cert.der) == "string" then -- evidence (mpic.evidence)
    local util = C.util()
    d.certificate_sha256 = util.hex(util.sha256(res.cert.der))
  end
  if res.version and OLD_TLS[res.version] then
    return C.result(false, true, C.lookup_error("tls", "protocol version not supported"), d)
  end
  return H.verify(target, want, res, d)
end

M.helpers = H

return M
