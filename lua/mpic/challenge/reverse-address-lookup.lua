-- reverse-address-lookup (BR 3.2.2.5.3, sunset 2027-03-15): a PTR at the
-- reverse name of an IP target (or at the name as given) whose target, with
-- the trailing dot, equals challenge_value case-insensitively.
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local ipairs, type = ipairs, type

local M = {
  name = "reverse-address-lookup",
  check_type = "dcv",
  br_section = "3.2.2.5.3",
  identifiers = { dns = true, ip = true },
  wildcard = "reject",
  sunset = "2027-03-15",
  params = {
    challenge_value = { type = "string", required = true },
  },
}

function M.check(target, params, probe)
  local want = params.challenge_value
  if type(want) ~= "string" or want == "" then return C.bad_param(M.name, "challenge_value", want) end
  want = want:lower()
  local name = target.value
  if target.kind == "ip" then name = T.reverse_name(target.bytes or T.parse_ip(target.value)) end
  local r, done = C.dns_lookup(M.name, probe, name, "PTR")
  if not r then return done end
  local d = C.dns_details(M.name, name, r)
  for _, v in ipairs(d.records_seen) do
    if v:lower() == want then return C.result(true, true, nil, d) end
  end
  d.reason = C.incorrect_text("PTR", d.records_seen, name)
  return C.result(false, true, nil, d)
end

return M
