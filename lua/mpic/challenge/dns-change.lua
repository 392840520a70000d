-- dns-change (BR 3.2.2.4.7): a Random Value or Request Token in a TXT, CNAME or
-- CAA record at [{dns_name_prefix}.]{target}. Substring match unless
-- require_exact_match; case-sensitive only for TXT with require_exact_case.
local C = require "mpic.challenge._common"
local ipairs, type = ipairs, type

local TYPES = { TXT = true, CNAME = true, CAA = true }

local M = {
  name = "dns-change",
  check_type = "dcv",
  br_section = "3.2.2.4.7",
  identifiers = { dns = true, ip = false },
  wildcard = "strip",
  caa_method_label = "ca-tbr-7",
  params = {
    challenge_value = { type = "string", required = true },
    dns_record_type = { type = "string", required = true, enum = { "TXT", "CNAME", "CAA" } },
    dns_name_prefix = { type = "string" },
    require_exact_match = { type = "boolean" },
    require_exact_case = { type = "boolean" },
  },
}

function M.check(target, params, probe)
  local rtype = params.dns_record_type
  if not TYPES[rtype] then return C.bad_param(M.name, "dns_record_type", rtype) end
  local want = params.challenge_value
  if type(want) ~= "string" or want == "" then return C.bad_param(M.name, "challenge_value", want) end
  local exact = params.require_exact_match == true
  local case = rtype == "TXT" and params.require_exact_case ~= false
  local name = C.join(params.dns_name_prefix, target.value)
  local r, done = C.dns_lookup(M.name, probe, name, rtype)
  if not r then return done end
  local d = C.dns_details(M.name, name, r)
  if not case then want = want:lower() end
  for _, v in ipairs(d.records_seen) do
    local have = case and v or v:lower()
    if (exact and have == want) or (not exact and have:find(want, 1, true)) then return C.result(true, true, nil, d) end
  end
  d.reason = C.incorrect_text(rtype, d.records_seen, name)
  return C.result(false, true, nil, d)
end

return M
