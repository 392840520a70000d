-- mpic.target: normalisation of `domain_or_ip_target` (REFERENCE §2.1) and the
-- Authorization Domain Name rules per method (§1.8).
--
-- normalise(text, opts) returns a target table
--   {value=, kind="dns"|"ip", wildcard=bool, ip_family=4|6|nil, bytes=<4|16 raw bytes>|nil, input=}
-- or nil, "invalid-target", message. Names are lower-cased, lose one trailing
-- dot and have their U-labels converted to A-labels (libidn2, IDNA2008 with UTS #46);
-- IP literals are parsed strictly and compared in binary. Unless
-- opts.allow_reserved (labs): reserved IP blocks are refused (the check comes
-- from opts.is_reserved or mpic.core.http.is_reserved), and so are names that
-- are special-use (localhost, local, onion, home.arpa, test, internal, ...),
-- not below an ICANN public suffix, or a bare public suffix (opts.vet_name or
-- mpic.core.http.vet_name). Without the check, the target cannot be vetted
-- and is refused: fail closed.
local M = {}

local type, tostring, tonumber, require, ipairs = type, tostring, tonumber, require, ipairs
local concat = table.concat
local sfmt, schar, sbyte = string.format, string.char, string.byte
local utf8 = utf8

---------------------------------------------------------------------------
-- IP literals

-- Strict dotted quad: 4 decimal octets, no leading zeros. Returns 4 raw bytes.
function M.parse_ipv4(s)
  if type(s) ~= "string" or not s:find("^[%d.]+$") then return nil end
  local parts = {}
  for p in (s .. "."):gmatch("([^.]*)%.") do
    parts[#parts + 1] = p
  end
  if #parts ~= 4 then return nil end
  local out = {}
  for i, p in ipairs(parts) do
    if not p:match("^%d%d?%d?$") then return nil end
    if #p > 1 and p:sub(1, 1) == "0" then return nil end
    local n = tonumber(p)
    if n > 255 then return nil end
    out[i] = n
  end
  return schar(out[1], out[2], out[3], out[4])
end

local function parse_groups(s)
  local groups = {}
  if s == "" then return groups end
  for g in (s .. ":"):gmatch("([^:]*):") do
    if not g:match("^%x%x?%x?%x?$") then return nil end
    groups[#groups + 1] = tonumber(g, 16)
  end
  return groups
end

-- Any RFC 4291 text form (with "::" and a trailing dotted quad). Zone IDs are
-- refused. Returns 16 raw bytes.
function M.parse_ipv6(s)
  if type(s) ~= "string" or s:find("%%") or not s:find(":") then return nil end
  local v4tail
  local head, quad = s:match("^(.*:)(%d+%.%d+%.%d+%.%d+)$")
  if head then
    v4tail = M.parse_ipv4(quad)
    if not v4tail then return nil end
    s = head .. "0:0"
  end
  local left, right
  local a, b = s:find("::", 1, true)
  if a then
    if s:find("::", b, true) and s:find("::", b, true) ~= a then return nil end
    left, right = s:sub(1, a - 1), s:sub(b + 1)
    if right:find("::", 1, true) then return nil end
  else
    left = s
  end
  local lg = parse_groups(left)
  if not lg then return nil end
  local groups
  if right ~= nil then
    local rg = parse_groups(right)
    if not rg or #lg + #rg > 7 then return nil end
    groups = {}
    for _, g in ipairs(lg) do
      groups[#groups + 1] = g
    end
    for _ = 1, 8 - #lg - #rg do
      groups[#groups + 1] = 0
    end
    for _, g in ipairs(rg) do
      groups[#groups + 1] = g
    end
  else
    if #lg ~= 8 then return nil end
    groups = lg
  end
  local out = {}
  for i = 1, 8 do
    out[i] = string.pack(">I2", groups[i])
  end
  local bytes = concat(out)
  if v4tail then bytes = bytes:sub(1, 12) .. v4tail end
  return bytes
end

-- Returns bytes, family (4|6) or nil.
function M.parse_ip(s)
  local b = M.parse_ipv4(s)
  if b then return b, 4 end
  b = M.parse_ipv6(s)
  if b then return b, 6 end
  return nil
end

-- Canonical text: dotted quad, or RFC 5952 (lower case, longest zero run compressed).
function M.ip_text(bytes)
  if #bytes == 4 then return sfmt("%d.%d.%d.%d", sbyte(bytes, 1, 4)) end
  local g = {}
  for i = 1, 8 do
    g[i] = string.unpack(">I2", bytes, i * 2 - 1)
  end
  local best, bestlen, cur, curlen = nil, 0, nil, 0
  for i = 1, 8 do
    if g[i] == 0 then
      if not cur then
        cur, curlen = i, 0
      end
      curlen = curlen + 1
      if curlen > bestlen then
        best, bestlen = cur, curlen
      end
    else
      cur = nil
    end
  end
  local parts = {}
  local i = 1
  while i <= 8 do
    if best and bestlen >= 2 and i == best then
      parts[#parts + 1] = (i == 1) and ":" or ""
      i = i + bestlen
      if i > 8 then parts[#parts + 1] = "" end
    else
      parts[#parts + 1] = sfmt("%x", g[i])
      i = i + 1
    end
  end
  return concat(parts, ":")
end

-- Reverse-DNS name without trailing dot: d.c.b.a.in-addr.arpa / nibbles.ip6.arpa.
function M.reverse_name(bytes)
  local out = {}
  if #bytes == 4 then
    for i = 4, 1, -1 do
      out[#out + 1] = tostring(sbyte(bytes, i))
    end
    out[#out + 1] = "in-addr.arpa"
  else
    for i = 16, 1, -1 do
      local b = sbyte(bytes, i)
      out[#out + 1] = sfmt("%x", b & 15)
      out[#out + 1] = sfmt("%x", b >> 4)
    end
    out[#out + 1] = "ip6.arpa"
  end
  return concat(out, ".")
end

---------------------------------------------------------------------------
-- U-label -> A-label conversion (libidn2: IDNA2008 with the UTS #46 mapping)

local util = require "mpic.core.util"

local function label_ok_ldh(l)
  if #l < 1 or #l > 63 then return false, "label length must be 1..63 octets" end
  if not l:find("^[a-z0-9-]+$") then return false, "label contains a disallowed character" end
  if l:byte(1) == 45 or l:byte(-1) == 45 then return false, "label starts or ends with a hyphen" end
  return true
end

-- Convert one label (UTF-8) to its A-label form; validates xn-- labels.
local function to_alabel(label)
  if label:find("^[%w%-]*$") then
    local l = label:lower()
    if l:byte(3) == 45 and l:byte(4) == 45 then
      if l:sub(1, 4) ~= "xn--" then return nil, "label has hyphens in the third and fourth positions" end
      local ok, why = util.idna_check_alabel(l)
      if not ok then return nil, "invalid A-label " .. l .. ": " .. tostring(why) end
    end
    return l
  end
  if not utf8.len(label) then return nil, "name is not valid UTF-8" end
  local a, why = util.idna_to_ascii(label)
  if not a then return nil, "invalid internationalized label: " .. tostring(why) end
  return a
end

local LONG_LABEL = string.rep("[^.]", 64)
-- A name already in its A-label form, lower case, whose labels need no
-- further look: LDH only, no "--" anywhere (so no A-label to check), no
-- hyphen at a label's edge, no empty or over-long label.
local function plain_ldh(name)
  return not name:find("[^a-z0-9.-]")
    and not name:find("--", 1, true)
    and not name:find("^%-")
    and not name:find("%-$")
    and not name:find("%.%-")
    and not name:find("%-%.")
    and name:byte(-1) ~= 46
    and not name:find(LONG_LABEL)
end

-- Lower case, one trailing dot dropped, U-labels to A-labels, label rules
-- and the 253-octet limit. Returns the name and its label count, or nil, message.
local function alabel_name(name)
  if type(name) ~= "string" or name == "" then return nil, "empty name" end
  if name:sub(-1) == "." then name = name:sub(1, -2) end
  if name == "" or name:find("..", 1, true) or name:sub(1, 1) == "." then return nil, "empty label" end
  if #name <= 253 and plain_ldh(name) then
    local _, dots = name:gsub("%.", "")
    return name, dots + 1
  end
  local labels = {}
  for l in (name .. "."):gmatch("([^.]*)%.") do
    local a, err = to_alabel(l)
    if not a then return nil, err end
    local ok, why = label_ok_ldh(a)
    if not ok then return nil, why .. ": " .. a end
    labels[#labels + 1] = a
  end
  local out = concat(labels, ".")
  if #out > 253 then return nil, "name longer than 253 octets" end
  return out, #labels
end

local function structure_ok(name, nlabels)
  if nlabels < 2 then return nil, "name must have at least two labels" end
  if name:match("%.(%d+)$") then return nil, "top-level label is numeric" end
  return name
end

-- Normalise a DNS name (no wildcard handling). Returns the A-label form or nil, message.
function M.normalise_name(name)
  local out, n = alabel_name(name)
  if not out then return nil, n end
  return structure_ok(out, n)
end

local function from_http(fn) return require("mpic.core.http")[fn] end

-- opts: {allow_reserved=bool, is_reserved=function(ip_text) -> bool, why,
--        vet_name=function(name) -> suffix | nil, why}
function M.normalise(text, opts)
  opts = opts or {}
  if type(text) ~= "string" or text == "" then return nil, "invalid-target", "target must be a non-empty string" end
  local input = text
  local s = text
  local bracketed = s:match("^%[(.*)%]$")
  if bracketed then s = bracketed end
  local bytes, family = M.parse_ip(s)
  if bracketed and family ~= 6 then
    return nil, "invalid-target", "brackets are only allowed around an IPv6 literal: " .. input
  end
  if bytes then
    local value = M.ip_text(bytes)
    if not opts.allow_reserved then
      local check = opts.is_reserved or from_http("is_reserved")
      if not check then
        return nil, "invalid-target", "cannot vet IP target (reserved-address check unavailable): " .. value
      end
      local reserved, why = check(value)
      if reserved then
        return nil, "invalid-target", "IP address is in a reserved address block: " .. tostring(why or value)
      end
    end
    return { value = value, kind = "ip", wildcard = false, ip_family = family, bytes = bytes, input = input }
  end
  if s:match("^[%d.]+$") or s:find(":", 1, true) then
    return nil, "invalid-target", "malformed IP address: " .. input
  end
  local wildcard = false
  if s:sub(1, 2) == "*." then
    wildcard = true
    s = s:sub(3)
  end
  if s:find("*", 1, true) then
    return nil, "invalid-target", "a wildcard is only allowed as the whole first label: " .. input
  end
  local name, n = alabel_name(s)
  if not name then return nil, "invalid-target", n .. " (" .. input .. ")" end
  if not opts.allow_reserved then
    -- before any DNS query: no special-use name, an ICANN public suffix with
    -- a label below it (labs, which use .test, lift this)
    local vet = opts.vet_name or from_http("vet_name")
    if not vet then
      return nil, "invalid-target", "cannot vet name target (public suffix check unavailable): " .. input
    end
    local suffix, why = vet(name)
    if not suffix then
      return nil, "invalid-target", "name may not be validated: " .. tostring(why) .. " (" .. input .. ")"
    end
  end
  local err
  name, err = structure_ok(name, n)
  if not name then return nil, "invalid-target", err .. " (" .. input .. ")" end
  return { value = name, kind = "dns", wildcard = wildcard, input = input }
end

-- Apply a challenge's ADN rules (§1.8) to a normalised target: the accepted
-- identifier kinds and the wildcard rule ("strip" or "reject"). Returns the
-- target or nil, "invalid-target", message.
function M.for_method(target, challenge)
  local ids = challenge.identifiers or {}
  if not ids[target.kind] then
    return nil,
      "invalid-target",
      sfmt("%s does not accept %s identifiers", tostring(challenge.name), target.kind == "ip" and "IP" or "DNS")
  end
  if target.wildcard and challenge.wildcard ~= "strip" then
    return nil, "invalid-target", sfmt("%s does not accept wildcard targets", tostring(challenge.name))
  end
  return target
end

-- The presentation of a target for messages and URLs: [v6] for IPv6.
function M.host(target)
  if target.kind == "ip" and target.ip_family == 6 then return "[" .. target.value .. "]" end
  return target.value
end

return M
