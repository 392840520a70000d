-- mpic.caa: CAA issue-value parsing (RFC 8659 §4.2 with errata 7139), property
-- selection (§3.3), the RFC 8657 accounturi / validationmethods parameters
-- (§3.5) and the per-RRset decision. Pure functions over rdata tables
-- {flags=, tag=, value=}; the DNS climb lives in challenge/caa.lua.
local M = {}

local type, ipairs, tostring, tonumber, error = type, ipairs, tostring, tonumber, error
local sfmt, sbyte, concat = string.format, string.byte, table.concat

M.KNOWN_TAGS = {
  issue = true,
  issuewild = true,
  issuemail = true,
  iodef = true,
  contactemail = true,
  contactphone = true,
  issuevmc = true,
}

-- A method name or label -> the label compared against validationmethods
-- (RFC 8657). A validation method's name maps to the caa_method_label its
-- challenge declaration gives (the one place that mapping lives); anything
-- else is taken as a label already. registry: a challenge registry
-- (mpic.challenges.load), by default the built-in challenge types.
local builtin_registry
function M.method_label(m, registry)
  if type(m) ~= "string" or m == "" then return nil end
  if not registry then
    builtin_registry = builtin_registry or require("mpic.challenges").load()
    registry = builtin_registry
  end
  local ch = registry.by_name[m]
  if ch and ch.check_type == "dcv" and ch.caa_method_label then return ch.caa_method_label end
  return m
end

-- BR 4.2.2.1: a CA may also recognise "ca-tbr-N" for the method of BR section
-- 3.2.2.4.N. The alias a declaration's br_section gives (nil outside 3.2.2.4).
function M.ca_tbr_label(br_section)
  local n = type(br_section) == "string" and br_section:match("^3%.2%.2%.4%.(%d+)$")
  return n and ("ca-tbr-" .. tonumber(n)) or nil
end

-- Every label naming the method m (a method name or one of its labels): the
-- declaration's caa_method_label and the ca-tbr-N alias of its br_section,
-- found by name, else by caa_method_label, else by an alias that only one
-- declaration gives. A label no declaration gives is its own only label.
-- registry: as for method_label (default: the built-in challenge types).
function M.method_labels(m, registry)
  if type(m) ~= "string" or m == "" then return nil end
  if not registry then
    builtin_registry = builtin_registry or require("mpic.challenges").load()
    registry = builtin_registry
  end
  local ch = registry.by_name[m]
  if not (ch and ch.check_type == "dcv") then
    ch = nil
    local by_alias, n_alias = nil, 0
    for _, c in ipairs(registry.list) do
      if c.check_type == "dcv" then
        if c.caa_method_label == m then
          ch = c
          break
        end
        if M.ca_tbr_label(c.br_section) == m then
          by_alias, n_alias = c, n_alias + 1
        end
      end
    end
    if not ch and n_alias == 1 then ch = by_alias end
  end
  local out = {}
  if ch then
    out[1] = ch.caa_method_label
    local alias = M.ca_tbr_label(ch.br_section)
    if alias and alias ~= out[1] then out[#out + 1] = alias end
  end
  if #out == 0 then out[1] = m end
  return out
end

local function is_wsp(c) return c == 32 or c == 9 end
local LABEL = "^[A-Za-z0-9]$"
local function ldh_ok(s)
  -- (ALPHA / DIGIT) *( *("-") (ALPHA / DIGIT))
  if s == "" then return false end
  if not s:match("^[A-Za-z0-9-]+$") then return false end
  return s:sub(1, 1):match(LABEL) ~= nil and s:sub(-1):match(LABEL) ~= nil
end

local function issuer_ok(s)
  if s:sub(1, 1) == "." or s:sub(-1) == "." or s:find("..", 1, true) then return false end
  for l in s:gmatch("[^.]+") do
    if not ldh_ok(l) then return false end
  end
  return true
end

-- Parse an issue / issuewild / issuemail value strictly. Returns
-- {issuer="" | "ca.example" (as written), params={ {tag=, value=} ... }}
-- (parameters in order, duplicates kept) or nil, reason.
function M.parse_issue_value(s)
  if type(s) ~= "string" then return nil, "value is not a string" end
  local n, i = #s, 1
  local function skip_wsp()
    while i <= n and is_wsp(sbyte(s, i)) do
      i = i + 1
    end
  end
  skip_wsp()
  local start = i
  while i <= n do
    local c = sbyte(s, i)
    if is_wsp(c) or c == 59 then break end
    i = i + 1
  end
  local issuer = s:sub(start, i - 1)
  if issuer ~= "" and not issuer_ok(issuer) then
    return nil, "issuer domain name contains disallowed character or malformed label"
  end
  skip_wsp()
  local params = {}
  if i > n then return { issuer = issuer, params = params } end
  if sbyte(s, i) ~= 59 then return nil, "issuer domain name contains disallowed character" end
  i = i + 1
  skip_wsp()
  if i > n then return { issuer = issuer, params = params } end
  while true do
    local ts = i
    while i <= n do
      local c = sbyte(s, i)
      if is_wsp(c) or c == 61 or c == 59 then break end
      i = i + 1
    end
    local tag = s:sub(ts, i - 1)
    if tag == "" then return nil, "parameter not formatted as tag=value" end
    if not ldh_ok(tag) then return nil, "parameter tag contains disallowed character" end
    skip_wsp()
    if i > n or sbyte(s, i) ~= 61 then return nil, "parameter not formatted as tag=value" end
    i = i + 1
    skip_wsp()
    local vs = i
    while i <= n do
      local c = sbyte(s, i)
      if c < 0x21 or c > 0x7E or c == 59 then break end
      i = i + 1
    end
    params[#params + 1] = { tag = tag, value = s:sub(vs, i - 1) }
    skip_wsp()
    if i > n then break end
    if sbyte(s, i) ~= 59 then return nil, "parameter value contains disallowed character" end
    i = i + 1
    skip_wsp()
    if i > n then return nil, "parameter list ends with ';'" end
  end
  return { issuer = issuer, params = params }
end

-- All values of a parameter, matching the tag case-insensitively.
function M.param_values(parsed, tag)
  local out = {}
  tag = tag:lower()
  for _, p in ipairs(parsed.params) do
    if p.tag:lower() == tag then out[#out + 1] = p.value end
  end
  return out
end

-- RFC 3986 URI (absolute: scheme ":" then URI characters only).
function M.is_uri(s)
  if type(s) ~= "string" or s == "" then return false end
  local scheme, rest = s:match("^([A-Za-z][A-Za-z0-9+.-]*):(.*)$")
  if not scheme then return false end
  if rest:find("[^%w%-%._~:/%?#%[%]@!%$&'%(%)%*%+,;=%%]") then return false end
  for pct in rest:gmatch("%%(..)") do
    if not pct:match("^%x%x$") then return false end
  end
  if rest:find("%%.?$") and not rest:find("%%%x%x$") then return false end
  return true
end

-- RFC 8657 accounturi: true when the record's constraint passes.
function M.accounturi_ok(parsed, accounts)
  local vals = M.param_values(parsed, "accounturi")
  if #vals == 0 then return true end
  if #vals > 1 then return false, "accounturi present more than once" end
  local v = vals[1]
  if not M.is_uri(v) then return false, "accounturi is not a URI" end
  if type(accounts) ~= "table" or #accounts == 0 then
    return false, "record requires accounturi but the request names no account"
  end
  for _, a in ipairs(accounts) do
    if a == v then return true end
  end
  return false, "accounturi does not match the account"
end

-- RFC 8657 validationmethods: true when the record's constraint passes.
-- method: the request's label, or a list of labels that all name it.
function M.validationmethods_ok(parsed, method)
  local vals = M.param_values(parsed, "validationmethods")
  if #vals == 0 then return true end
  if #vals > 1 then return false, "validationmethods present more than once" end
  local labels = {}
  for l in (vals[1] .. ","):gmatch("([^,]*),") do
    if not l:match("^[A-Za-z0-9-]+$") then return false, "validationmethods holds a malformed label" end
    labels[#labels + 1] = l
  end
  local wanted = type(method) == "table" and method or { method }
  if #wanted == 0 then return false, "record restricts methods but the request names no method" end
  for _, l in ipairs(labels) do
    for _, w in ipairs(wanted) do
      if l == w then return true end
    end
  end
  return false, "validation method not permitted by validationmethods"
end

function M.is_critical(rr, legacy)
  local f = tonumber(rr.flags) or 0
  if f & 128 ~= 0 then return true end
  if legacy and f & 1 ~= 0 then return true end
  return false
end

local function lower_set(list)
  local s = {}
  for _, d in ipairs(list or {}) do
    if type(d) == "string" then s[d:lower()] = true end
  end
  return s
end

-- Decide one relevant RRset. opts:
--   wildcard (bool), certificate_type ("tls-server" default | "s-mime"),
--   caa_domains (list), account_uris (list or nil), method (label or nil),
--   legacy_critical (bool: also treat flag bit value 1 as critical).
-- Returns permitted (bool), reason. Raises on an unknown certificate type (misuse:
-- requests are validated before they reach here).
function M.decide(rrset, opts)
  opts = opts or {}
  local ctype = opts.certificate_type or "tls-server"
  if ctype ~= "tls-server" and ctype ~= "s-mime" then error("unknown certificate type: " .. tostring(ctype), 2) end
  local by_tag = { issue = {}, issuewild = {}, issuemail = {} }
  for _, rr in ipairs(rrset) do
    local tag = type(rr.tag) == "string" and rr.tag:lower() or ""
    if not M.KNOWN_TAGS[tag] and M.is_critical(rr, opts.legacy_critical) then
      return false, sfmt("unknown critical property %q forbids issuance", tostring(rr.tag))
    end
    if by_tag[tag] then by_tag[tag][#by_tag[tag] + 1] = rr end
  end
  local used, prop
  if ctype == "s-mime" then
    used, prop = by_tag.issuemail, "issuemail"
  elseif opts.wildcard and #by_tag.issuewild > 0 then
    used, prop = by_tag.issuewild, "issuewild"
  else
    used, prop = by_tag.issue, "issue"
  end
  if #used == 0 then return true, "no " .. prop .. " property; issuance permitted" end
  local domains = lower_set(opts.caa_domains)
  local last = "no " .. prop .. " record names this CA"
  for _, rr in ipairs(used) do
    local parsed, perr = M.parse_issue_value(rr.value)
    if not parsed then
      last = "malformed " .. prop .. " value: " .. perr
    elseif parsed.issuer == "" then
      last = "empty " .. prop .. " value authorizes nobody"
    elseif domains[parsed.issuer:lower()] then
      local ok, why = M.accounturi_ok(parsed, opts.account_uris)
      if ok then
        ok, why = M.validationmethods_ok(parsed, opts.method)
      end
      if ok then return true, "authorized by " .. prop .. " " .. parsed.issuer end
      last = why
    end
  end
  return false, "CAA " .. prop .. " forbids issuance: " .. last
end

-- Presentation form: `0 issue "ca111.com"` (", \ and non-printables escaped as \DDD).
function M.presentation(rr)
  local v = tostring(rr.value or ""):gsub('[%c"\\\128-\255]', function(c)
    if c == '"' or c == "\\" then return "\\" .. c end
    return sfmt("\\%03d", sbyte(c))
  end)
  return sfmt('%d %s "%s"', tonumber(rr.flags) or 0, tostring(rr.tag), v)
end

-- The relevant RRset (§3.1): query CAA at name, then its parents (never the
-- parents of a CNAME target), stopping after the TLD. dns(name, "CAA") is the
-- probe's DNS function. Returns
--   {records={...}, found_at=<name without dot> | nil, response=<result>|nil,
--    resolver=<"ip:port" of the resolvers that answered the judged queries,
--    comma-separated> | nil, ad=<every judged answer had AD=1>}
-- (records empty and found_at nil when nothing was found anywhere), or
--   nil, kind, detail, name, partial   on a lookup error (fail closed).
-- Every label is asked at once, so a deep name costs one round trip instead
-- of one per label; the answers are judged from the target up, exactly as a
-- climb one label at a time would judge them (an error below the relevant
-- RRset fails the lookup, answers above it are ignored), and the queries
-- still running when the outcome is known are cancelled.
function M.find_relevant(dns, name)
  name = tostring(name):gsub("%.$", "")
  local labels = {}
  local n = name
  while n ~= "" and #labels < 128 do
    labels[#labels + 1] = n
    n = n:match("^[^.]*%.(.+)$") or ""
  end
  local core = require "mpic.core"
  local tasks = {}
  for i = 2, #labels do
    tasks[i] = core.spawn(dns, labels[i], "CAA")
  end
  local function finish(...)
    for i = 2, #labels do
      core.cancel(tasks[i])
    end
    return ...
  end
  -- evidence: which resolvers answered the judged queries, and their AD bits
  local servers, seen, ad = {}, {}, true
  local function witness(r)
    local s = type(r) == "table" and r.server
    if type(s) == "string" and s ~= "" and not seen[s] then
      seen[s], servers[#servers + 1] = true, s
    end
    ad = ad and type(r) == "table" and r.ad == true
  end
  local function found(t)
    t.resolver, t.ad = #servers > 0 and concat(servers, ",") or nil, ad
    return finish(t)
  end
  for i, label in ipairs(labels) do
    local r, kind, detail, partial
    if i == 1 then
      r, kind, detail, partial = dns(label, "CAA")
    else
      r, kind, detail, partial = core.wait(tasks[i])
    end
    if not r then
      if kind == "nxdomain" or kind == "nodata" then
        witness(partial)
        local p = type(partial) == "table" and partial or {}
        r = { records = {}, rcode = kind == "nxdomain" and "NXDOMAIN" or "NOERROR", server = p.server, ad = p.ad }
      else
        return finish(nil, kind or "dns", detail or "lookup failed", label, partial)
      end
    else
      witness(r)
    end
    local records = r.records or {}
    if #records > 0 then return found({ records = records, found_at = label, response = r }) end
    if i == #labels and r.rcode == "NXDOMAIN" then
      return finish(nil, "nxdomain", "NXDOMAIN looking up CAA for " .. label, label, r)
    end
  end
  return found({ records = {} })
end

function M.presentations(rrset)
  local out = {}
  for i, rr in ipairs(rrset) do
    out[i] = M.presentation(rr)
  end
  return out
end

return M
