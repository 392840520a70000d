-- acme-tls-alpn-01 end to end against the lab's openssl s_server: a
-- validation certificate whose dNSName differs from the identifier only in
-- letter case passes (RFC 4343 §3, RFC 8737 §3); another name still fails.
local T = require "mpic.testing"
local tls = require "mpic.core.tls"
local util = require "mpic.core.util"
local target = require "mpic.target"
local alpn = require "mpic.challenge.acme-tls-alpn-01"
local lab = require "tls_lab"
local case, eq = T.case, T.eq

-- A probe that sends every handshake to the lab server of one certificate variant.
local function probe_for(variant)
  return {
    tls_alpn = function(_, sni)
      -- the lab is on loopback: lift the reserved-address guard, as labs do
      return tls.alpn(lab.addr(), lab.port(variant), { sni = sni, timeout_ms = 3000, allow_reserved = true })
    end,
  }
end

local function check(variant, name)
  local t = assert(target.normalise(name or lab.DNS_ID, { allow_reserved = true }))
  local hash = util.hex(util.sha256(lab.key_authorization()))
  return alpn.check(t, { key_authorization_hash = hash }, probe_for(variant))
end

case("tls_alpn_lab_upper_case_dnsname_passes", function()
  local r = check("upper_dns")
  eq(r.errors, nil)
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.details.common_name, "ALPN.Mpic.EXAMPLE")
end)

case("tls_alpn_lab_mixed_case_request_matches_lower_case_certificate", function()
  -- the request's name is normalised; the comparison holds either way round
  local r = check("valid_dns", "Alpn.MPIC.example")
  eq(r.passed, true)
end)

case("tls_alpn_lab_other_name_still_fails", function()
  local r = check("wrong_name")
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors[1].error_type, "mpic_error:dcv_checker:tls_alpn:certificate:san_not_hostname")
end)
