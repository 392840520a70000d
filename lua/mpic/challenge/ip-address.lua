-- ip-address (BR 3.2.2.4.8, retired): an A or AAAA record at the target equal,
-- as a parsed binary address, to challenge_value. Malformed RRs are skipped.
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local ipairs, type = ipairs, type

local M = {
  name = "ip-address",
  check_type = "dcv",
  br_section = "3.2.2.4.8",
  identifiers = { dns = true, ip = false },
  wildcard = "strip",
  sunset = "2026-03-15",
  caa_method_label = "ca-tbr-8",
  params = {
    challenge_value = { type = "string", required = true },
    dns_record_type = { type = "string", required = true, enum = { "A", "AAAA" } },
  },
}

function M.check(target, params, probe)
  local rtype = params.dns_record_type
  if rtype ~= "A" and rtype ~= "AAAA" then return C.bad_param(M.name, "dns_record_type", rtype) end
  local want = type(params.challenge_value) == "string"
    and (rtype == "A" and T.parse_ipv4(params.challenge_value) or T.parse_ipv6(params.challenge_value))
  local r, done = C.dns_lookup(M.name, probe, target.value, rtype)
  if not r then return done end
  local d = C.dns_details(M.name, target.value, r)
  if not want then
    -- Open MPIC compatibility: a malformed value is a completed failure.
    d.reason = "challenge_value is not a valid " .. (rtype == "A" and "IPv4" or "IPv6") .. " address"
    return C.result(false, true, C.param_error("challenge_value", params.challenge_value), d)
  end
  for _, v in ipairs(d.records_seen) do
    local have = rtype == "A" and T.parse_ipv4(v) or T.parse_ipv6(v)
    if have and have == want then return C.result(true, true, nil, d) end
  end
  d.reason = C.incorrect_text(rtype, d.records_seen, target.value)
  return C.result(false, true, nil, d)
end

return M
