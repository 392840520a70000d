-- mpic.challenge._common: helpers shared by the challenge files (result
-- tables, DNS lookup outcome mapping, HTTP fetch outcome mapping, hash
-- decoding). Files whose name starts with "_" are not challenge types; the
-- registry skips them.
local M = {}

local type, ipairs, tostring, tonumber, pcall, require = type, ipairs, tostring, tonumber, pcall, require
local sfmt, concat, find, byte = string.format, table.concat, string.find, string.byte

-- whether a probe failure kind is a definite answer (core/errors.h)
local error_types = require "mpic.error_types"

local util_mod
-- The C helper module (sha256, base64url, base32, base64, hex, regex_search).
function M.util()
  if not util_mod then util_mod = require "mpic.core.util" end
  return util_mod
end

function M.result(passed, completed, errors, details)
  return {
    passed = passed and true or false,
    completed = completed and true or false,
    errors = errors,
    details = details or {},
  }
end

function M.err(error_type, message) return { { error_type = error_type, error_message = message } } end

-- "There was an error looking up the DCV record. Error type: X, Error message: Y"
function M.lookup_error(etype, msg)
  return M.err(
    "mpic_error:dcv_checker:lookup",
    sfmt(
      "There was an error looking up the DCV record. Error type: %s, Error message: %s",
      tostring(etype),
      tostring(msg)
    )
  )
end

function M.param_error(name, value)
  return M.err(
    "mpic_error:dcv_checker:parameter",
    sfmt("The provided parameter was invalid: %s, Value provided: %s", tostring(name), tostring(value))
  )
end

-- A failed check for a bad parameter (not completed: no evidence was sought).
function M.bad_param(method, name, value)
  return M.result(false, false, M.param_error(name, value), { validation_method = method })
end

local sub = string.sub
local function strip_dot(n)
  if type(n) == "string" and byte(n, -1) == 46 then return sub(n, 1, -2) end -- "."
  return n
end
M.strip_dot = strip_dot

-- Join a prefix (may be nil or "") and a name.
function M.join(prefix, name)
  if prefix == nil or prefix == "" then return name end
  return prefix .. "." .. name
end

-- The bytes compared for a record of a type (REFERENCE §5.3 records_seen).
function M.record_value(rtype, rr)
  if rtype == "TXT" then
    if type(rr.value) == "string" then return rr.value end
    if type(rr.strings) == "table" then return concat(rr.strings) end
    return nil
  elseif rtype == "CNAME" or rtype == "PTR" then
    return rr.target
  elseif rtype == "A" or rtype == "AAAA" then
    return rr.address
  elseif rtype == "CAA" then
    return rr.value
  end
  return nil
end

-- The resolver that answered ("ip:port", as the DNS probe reports it), or nil
-- when none did (a timeout, a network error).
function M.resolver_of(r)
  local s = type(r) == "table" and r.server
  if type(s) == "string" and s ~= "" then return s end
  return nil
end

function M.dns_details(method, name, r)
  r = r or {}
  local seen
  if r.records then
    seen = {}
    for _, rr in ipairs(r.records) do
      seen[#seen + 1] = M.record_value(r.type or "", rr) or ""
    end
  end
  return {
    validation_method = method,
    records_seen = seen,
    response_code = r.rcode,
    ad_flag = r.ad == true,
    resolver = M.resolver_of(r),
    found_at = strip_dot(name),
    cname_chain = r.cname_chain or {},
  }
end

local NEGATIVE = { nxdomain = "NXDOMAIN", nodata = "NoAnswer" }

-- Query through the probe and map the outcome. Returns
--   r, nil          when records of the type were found (r.type is set), or
--   nil, result     a finished check result (failed on NXDOMAIN/NODATA, error otherwise).
function M.dns_lookup(method, probe, name, rtype)
  local r, kind, detail, partial = probe.dns(name, rtype)
  if not r then
    if NEGATIVE[kind] then
      local d = M.dns_details(method, name, partial or { rcode = kind == "nxdomain" and "NXDOMAIN" or "NOERROR" })
      d.records_seen = {}
      return nil, M.result(false, error_types.completed(kind), M.lookup_error(NEGATIVE[kind], detail or kind), d)
    end
    local d = M.dns_details(method, name, partial)
    return nil,
      M.result(false, error_types.completed(kind), M.lookup_error(kind or "dns", detail or "lookup failed"), d)
  end
  r.type = r.type or rtype
  local records = r.records or {}
  r.records = records
  if #records == 0 then
    local d = M.dns_details(method, name, r)
    local et = r.rcode == "NXDOMAIN" and "NXDOMAIN" or "NoAnswer"
    local msg = r.rcode == "NXDOMAIN" and ("The DNS query name does not exist: " .. strip_dot(name))
      or ("The DNS response does not contain an answer to the question: " .. strip_dot(name) .. " IN " .. rtype)
    return nil, M.result(false, true, M.lookup_error(et, msg), d)
  end
  return r, nil
end

-- Boulder's text for a wrong DNS value: first value (100 chars max + "...") and the count of the others.
function M.incorrect_text(rtype, values, name)
  local first = values[1] or ""
  if #first > 100 then first = first:sub(1, 100) .. "..." end
  local more = #values > 1 and sfmt(" (and %d more)", #values - 1) or ""
  return sfmt('Incorrect %s record "%s"%s found at %s', rtype, first, more, strip_dot(name))
end

---------------------------------------------------------------------------
-- Hash parameters

-- Strict unpadded base64url decoding; nil on any bad character or length,
-- or a non-canonical tail (decoded in C, then encoded back and compared).
function M.base64url_decode(s)
  if type(s) ~= "string" or #s % 4 == 1 or find(s, "[^A-Za-z0-9_%-]") then return nil end
  local util = M.util()
  local raw = util.base64_decode(s)
  if raw == nil or util.base64url(raw) ~= s then return nil end
  return raw
end

function M.hex_decode(s)
  if type(s) ~= "string" or #s % 2 ~= 0 or s:find("[^%x]") then return nil end
  return (s:gsub("%x%x", function(h) return string.char(tonumber(h, 16)) end))
end

-- key_authorization_hash as 64 hex characters or 43 base64url characters -> 32 bytes.
function M.decode_hash(s)
  if type(s) ~= "string" then return nil end
  if #s == 64 then return M.hex_decode(s) end
  if #s == 43 then return M.base64url_decode(s) end
  return nil
end

-- The 43-character base64url form of a hash parameter given in either form.
-- 43 characters are accepted when they are the canonical unpadded base64url
-- of 32 bytes: decoding them and encoding the bytes again gives the same
-- characters (a character outside the alphabet, padding, or a last character
-- whose 2 spare bits are not zero would not), checked in C.
function M.hash_b64url(s)
  if type(s) ~= "string" then return nil end
  if #s == 43 then
    local util = M.util()
    local raw = util.base64_decode(s)
    if raw == nil or #raw ~= 32 or util.base64url(raw) ~= s then return nil end
    return s
  end
  local raw = #s == 64 and M.hex_decode(s)
  if raw then return M.util().base64url(raw) end
  return nil
end

---------------------------------------------------------------------------
-- Whitespace trimming (ASCII and the Unicode White_Space characters in UTF-8)

local WS_TAIL = {
  "\u{85}",
  "\u{A0}",
  "\u{1680}",
  "\u{2000}",
  "\u{2001}",
  "\u{2002}",
  "\u{2003}",
  "\u{2004}",
  "\u{2005}",
  "\u{2006}",
  "\u{2007}",
  "\u{2008}",
  "\u{2009}",
  "\u{200A}",
  "\u{2028}",
  "\u{2029}",
  "\u{202F}",
  "\u{205F}",
  "\u{3000}",
}

-- True when byte b cannot end (or, for trim, start) any of the whitespace
-- above: a byte that is not ASCII whitespace and not part of a multi-byte
-- sequence (every non-ASCII whitespace character is one).
local function plain_edge(b) return b ~= nil and b < 0x80 and b ~= 0x20 and (b < 0x09 or b > 0x0D) end

function M.trim_right(s)
  if plain_edge(byte(s, -1)) then return s end -- nothing to trim (the usual case)
  local changed = true
  while changed do
    changed = false
    local t = s:gsub("[ \t\n\v\f\r]+$", "")
    if t ~= s then
      s, changed = t, true
    end
    for _, w in ipairs(WS_TAIL) do
      if #s >= #w and s:sub(-#w) == w then
        s, changed = s:sub(1, -#w - 1), true
      end
    end
  end
  return s
end

function M.trim(s)
  if plain_edge(byte(s, 1)) then return M.trim_right(s) end
  local changed = true
  while changed do
    changed = false
    local t = s:gsub("^[ \t\n\v\f\r]+", "")
    if t ~= s then
      s, changed = t, true
    end
    for _, w in ipairs(WS_TAIL) do
      if s:sub(1, #w) == w then
        s, changed = s:sub(#w + 1), true
      end
    end
  end
  return M.trim_right(s)
end

---------------------------------------------------------------------------
-- HTTP

M.REASONS = {
  [200] = "OK",
  [201] = "Created",
  [204] = "No Content",
  [300] = "Multiple Choices",
  [301] = "Moved Permanently",
  [302] = "Found",
  [303] = "See Other",
  [304] = "Not Modified",
  [307] = "Temporary Redirect",
  [308] = "Permanent Redirect",
  [400] = "Bad Request",
  [401] = "Unauthorized",
  [403] = "Forbidden",
  [404] = "Not Found",
  [405] = "Method Not Allowed",
  [408] = "Request Timeout",
  [410] = "Gone",
  [429] = "Too Many Requests",
  [500] = "Internal Server Error",
  [501] = "Not Implemented",
  [502] = "Bad Gateway",
  [503] = "Service Unavailable",
  [504] = "Gateway Timeout",
}

function M.http_details(method, url, res, history)
  local d = { validation_method = method, response_history = {}, response_url = url }
  for i, h in ipairs(history or (res and res.history) or {}) do
    d.response_history[i] = { status_code = h.status_code, url = h.url }
  end
  if res then
    d.response_url = res.url or url
    d.response_status_code = res.status
    d.resolved_ip = res.ip
    local ok, b64 = pcall(function() return M.util().base64(res.body or "") end)
    d.response_page = ok and b64 or nil
  end
  return d
end

-- Fetch and map transport outcomes. Returns res, details when a final response
-- arrived with status 200, else nil, result (a finished check result).
function M.http_fetch(method, probe, url, opts)
  local res, kind, detail, history = probe.fetch(url, opts)
  if not res then
    local d = M.http_details(method, url, nil, history)
    if kind == "redirect" or (kind == "reserved_address" and type(history) == "table" and #history > 0) then
      local last = type(history) == "table" and history[#history] or {}
      return nil,
        M.result(
          false,
          error_types.completed(kind),
          M.err(
            "mpic_error:redirect:invalid",
            sfmt(
              "Invalid redirect. Redirect code: %s, target: %s. %s",
              tostring(last.status_code or ""),
              tostring(last.url or ""),
              tostring(detail or "")
            )
          ),
          d
        )
    end
    if kind == "too_large" then
      return nil,
        M.result(
          false,
          error_types.completed(kind),
          M.err("mpic_error:http", "Response body too large: " .. tostring(detail or "")),
          d
        )
    end
    return nil,
      M.result(
        false,
        error_types.completed(kind),
        M.lookup_error(kind or "connect", detail or "Error getting validation data"),
        d
      )
  end
  local d = M.http_details(method, url, res)
  if res.status ~= 200 then
    return nil,
      M.result(
        false,
        true,
        M.err(
          "mpic_error:http",
          sfmt(
            "An HTTP error occurred: Response status %s, Response reason: %s",
            tostring(res.status),
            res.reason or M.REASONS[res.status] or ""
          )
        ),
        d
      )
  end
  return res, d
end

return M
