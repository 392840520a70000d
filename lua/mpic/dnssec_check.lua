-- mpic.dnssec_check: the start-up proof that the primary perspective's
-- resolver validates DNSSEC (BR 4.2.2.2, SC-085; REFERENCE §1.7). With
-- `primary_dnssec: {signed_name, bogus_name}` in the configuration, the
-- coordinator (and `mpic validate`) starts only if, through the primary's
-- own resolver, the signed name comes back authenticated (AD=1) and the bogus
-- name (a deliberately broken signature the operator keeps) fails with
-- SERVFAIL. A resolver that does not validate answers the bogus name, a
-- validating one refuses it: the pair tells them apart.
local M = {}
local tostring = tostring
local sfmt = string.format

local FAILED = { servfail = true, dnssec_bogus = true }

--- run(spec, probe) -> true, summary | nil, reason.
--- spec = cfg.primary_dnssec; probe = the primary's probe (probe.dns(name, type)).
function M.run(spec, probe)
  local rtype = spec.type or "A"
  local r, kind, detail, partial = probe.dns(spec.signed_name, rtype)
  -- a validated denial (NODATA, NXDOMAIN) is authenticated as well
  local answered = r or ((kind == "nodata" or kind == "nxdomain") and partial)
  if not answered then
    return nil, sfmt("the signed name %s %s did not resolve through the primary's resolver: %s: %s",
      spec.signed_name, rtype, tostring(kind), tostring(detail))
  end
  if answered.ad ~= true then
    return nil, sfmt("the primary's resolver answered the signed name %s %s without AD=1: it does not "
      .. "validate DNSSEC (or does not trust the name's anchor)", spec.signed_name, rtype)
  end
  r, kind, detail = probe.dns(spec.bogus_name, rtype)
  if r or not FAILED[kind] then
    return nil, sfmt("the primary's resolver %s the bogus name %s %s instead of SERVFAIL: it does not "
      .. "validate DNSSEC", r and "answered" or ("gave " .. tostring(kind) .. " (" .. tostring(detail) .. ") for"),
      spec.bogus_name, rtype)
  end
  return true, sfmt("the primary's resolver validates DNSSEC: %s %s authenticated, %s %s refused (%s)",
    spec.signed_name, rtype, spec.bogus_name, rtype, kind)
end

--- check(cfg [, probe]) -> true, summary | nil, reason, or true, nil when
--- the configuration names no DNSSEC check. probe defaults to the primary's
--- probe of the current registry.
function M.check(cfg, probe)
  local spec = cfg.primary_dnssec
  if not spec then return true, nil end
  probe = probe or require("mpic.perspectives").probe(cfg.primary)
  return M.run(spec, probe)
end

M.NOT_SET = "primary_dnssec is not set: the primary's resolver is not checked for DNSSEC validation "
  .. "(BR 4.2.2.2 requires the primary to validate)"

return M
