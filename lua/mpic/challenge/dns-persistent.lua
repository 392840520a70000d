-- dns-persistent (BR 3.2.2.4.22 / 3.2.2.5.8, draft-ietf-acme-dns-persist): a
-- TXT at _validation-persist.<name> (IP: _ip-validation-persist.<reverse name>)
-- in the CAA issue-value syntax naming one of issuer_domain_names with the
-- expected accounturi, an unexpired persistUntil and, for a wildcard target,
-- policy=wildcard.
local C = require "mpic.challenge._common"
local T = require "mpic.target"
local caa = require "mpic.caa"
-- (the challenge sandbox has no os: its clock is mpic.time)
local ipairs, type, tostring, tonumber = ipairs, type, tostring, tonumber
local os_time = rawget(_ENV, "os") and os.time or mpic.time -- luacheck: ignore mpic
local tointeger, concat = math.tointeger, table.concat
local sfmt = string.format

local H = {} -- helpers exported for unit tests (the declaration's helpers field)
local M = {
  name = "dns-persistent",
  check_type = "dcv",
  br_section = "3.2.2.4.22",
  br_section_ip = "3.2.2.5.8",
  identifiers = { dns = true, ip = true },
  wildcard = "strip",
  caa_method_label = "dns-persist-01",
  params = {
    issuer_domain_names = { type = "list", required = true },
    expected_account_uri = { type = "string", required = true },
  },
}

-- Evaluate one joined TXT value. Returns true, or false and the reason.
function H.evaluate(value, issuers, account, opts)
  local p, perr = caa.parse_issue_value(value)
  if not p then return false, "malformed record: " .. perr end
  local issuer = p.issuer:lower()
  if issuer == "" or not issuers[issuer] then return false, "issuer not accepted: " .. p.issuer end
  local seen = {}
  for _, prm in ipairs(p.params) do
    local tag = prm.tag:lower()
    if (tag == "accounturi" or tag == "persistuntil") and seen[tag] then
      return false, "malformed record: duplicate " .. tag
    end
    seen[tag] = prm.value
  end
  if not seen.accounturi then return false, "record has no accounturi" end
  if seen.accounturi ~= account then return false, "accounturi does not match" end
  if seen.persistuntil then
    if not seen.persistuntil:match("^%d+$") then return false, "malformed record: persistUntil is not an integer" end
    local until_ = tointeger(tonumber(seen.persistuntil))
    if not until_ then return false, "malformed record: persistUntil out of range" end
    if (opts.now or os_time()) > until_ then return false, "persistUntil has passed" end
  end
  if opts.wildcard and opts.require_wildcard_policy ~= false then
    if not seen.policy or seen.policy:lower() ~= "wildcard" then
      return false, "wildcard target requires policy=wildcard"
    end
  end
  return true
end

function M.check(target, params, probe)
  local list = params.issuer_domain_names
  if type(list) ~= "table" or #list == 0 then return C.bad_param(M.name, "issuer_domain_names", list) end
  local issuers = {}
  for _, n in ipairs(list) do
    if type(n) ~= "string" or n == "" then return C.bad_param(M.name, "issuer_domain_names", tostring(n)) end
    issuers[n:lower()] = true
  end
  local account = params.expected_account_uri
  if not caa.is_uri(account) then return C.bad_param(M.name, "expected_account_uri", account) end
  local name
  if target.kind == "ip" then
    name = "_ip-validation-persist." .. T.reverse_name(target.bytes or T.parse_ip(target.value))
  else
    name = "_validation-persist." .. target.value
  end
  local r, done = C.dns_lookup(M.name, probe, name, "TXT")
  if not r then return done end
  local d = C.dns_details(M.name, name, r)
  local cfg = probe.config or {}
  local opts = {
    now = cfg.now,
    wildcard = target.wildcard,
    require_wildcard_policy = cfg.persist_require_wildcard_policy,
  }
  local reasons = {}
  for _, v in ipairs(d.records_seen) do
    local ok, why = H.evaluate(v, issuers, account, opts)
    if ok then return C.result(true, true, nil, d) end
    reasons[#reasons + 1] = why
  end
  d.reason = sfmt("No valid persistent DCV record at %s (%s)", name, concat(reasons, "; "))
  return C.result(false, true, nil, d)
end

M.helpers = H

return M
