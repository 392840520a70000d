-- mpic.fetch: an HTTP fetch that follows redirects under the acme-http-01
-- rules (REFERENCE §2.3 "Redirects", §4.1, §4.2). One hop at a time goes
-- through env.get (normally mpic.core.http.get); every hop's host is resolved
-- afresh through env.resolve (the perspective's DNS), IPv6 first with a
-- fallback to IPv4 after a connect error, on every hop.
--
--   local fetch = require "mpic.fetch"
--   local r, kind, detail, history = fetch.fetch(url, opts, env)
--
-- env = { resolve = function(host) -> {addr, ...} (AAAA first, then A)
--                                  | nil, kind, detail,
--         get = function(url, opts) -> result | nil, kind, detail,
--         allow_reserved = false,        -- labs only: lifts the name rules (an ICANN
--                                        -- public suffix, no special-use name) and the
--                                        -- reserved-address rules, here and in C
--         http_port = 80, https_port = 443,  -- ports a redirect may name
--         now = function() -> ms }       -- optional, for opts.total_timeout_ms
-- opts: max_redirects (default 10), total_timeout_ms, and everything http.get
-- takes (headers, user_agent, timeout_ms, connect_timeout_ms, max_bytes, ...).
local http = require "mpic.core.http"

local M = {}

local type, ipairs, error, tostring = type, ipairs, error, tostring
local string_format, math_min = string.format, math.min

M.DEFAULT_MAX_REDIRECTS = 10
M.MAX_PATH = 2000

local FOLLOWED = { [301] = true, [302] = true, [307] = true, [308] = true }
local GET_OPTS = {
  "headers",
  "user_agent",
  "connect_timeout_ms",
  "timeout_ms",
  "max_bytes",
  "source_ip",
  "source_ipv4",
  "source_ipv6",
  "interface",
  "verify_tls",
}

-- Why a redirect target is refused (REFERENCE §4.1), or nil and the parsed URL.
local function check_target(location, base, env)
  local u, why = http.url_parse(location, base)
  if not u then
    if why == "no_host" then return "Invalid empty host in redirect target" end
    if why == "bad_host" then return "Invalid host in redirect target, must end in IANA registered TLD" end
    return "Invalid redirect target URL"
  end
  if u.scheme ~= "http" and u.scheme ~= "https" then
    return string_format(
      'Invalid protocol scheme in redirect target. Only "http" and "https" '
        .. 'protocol schemes are supported, not "%s"',
      u.scheme
    )
  end
  local p80, p443 = env.http_port or 80, env.https_port or 443
  if u.port_explicit and u.port ~= p80 and u.port ~= p443 then
    return string_format(
      "Invalid port in redirect target. Only ports %d and %d are supported, not %d",
      p80,
      p443,
      u.port
    )
  end
  if not u.host or u.host == "" then return "Invalid empty host in redirect target" end
  if u.ip_family then
    if u.zone then return "Invalid host in redirect target: IP address with a zone ID is not allowed" end
    local reserved, name = http.is_reserved(u.host)
    if reserved and not env.allow_reserved then
      return "Invalid host in redirect target: IP address is in a reserved address block: " .. name
    end
  else
    local last = u.host:match("([^.]*)%.?$")
    if last == "well-known" then
      return string_format(
        'Invalid host in redirect target "%s". Check webserver config for ' .. "missing '/' in redirect target.",
        u.host
      )
    end
    if not env.allow_reserved then
      -- trailing dot dropped, special-use names refused, an ICANN public
      -- suffix with a label below it required (labs lift this)
      local suffix, reason, kind = http.vet_name(u.host)
      if not suffix then
        if kind == "special_use" or kind == "bare_suffix" then return "Invalid host in redirect target: " .. reason end
        return "Invalid host in redirect target, must end in IANA registered TLD"
      end
    end
  end
  if #u.path > M.MAX_PATH then return "Redirect target too long" end
  return nil, u
end
M.check_target = check_target

-- The addresses to try for this hop: the first IPv6 and the first IPv4,
-- reserved ones dropped unless allowed.
local function addresses(u, env)
  local list
  if u.ip_family then
    list = { u.host }
  else
    local kind, detail
    list, kind, detail = env.resolve(u.host)
    if not list then return nil, kind or "dns", detail or ("no addresses for " .. u.host) end
  end
  local v6, v4
  for _, a in ipairs(list) do
    local norm, fam = http.parse_ip(a)
    if norm and (env.allow_reserved or not http.is_reserved(norm)) then
      if fam == 6 and not v6 then v6 = norm end
      if fam == 4 and not v4 then v4 = norm end
    end
  end
  if not v6 and not v4 then
    if u.ip_family then
      local _, name = http.is_reserved(u.host)
      return nil, "reserved_address", string_format("%s is in a reserved address block: %s", u.host, name)
    end
    return nil,
      "dns",
      string_format("no valid A records found for %s; no valid AAAA records found for %s", u.host, u.host)
  end
  local out = {}
  if v6 then out[#out + 1] = v6 end
  if v4 then out[#out + 1] = v4 end
  return out
end

local function dial_error(kind, detail)
  return kind == "connect"
    or (kind == "timeout" and type(detail) == "string" and detail:find("Timeout during connect", 1, true) ~= nil)
end

local function hop_opts(opts, ip, env, deadline)
  local o = {}
  for _, k in ipairs(GET_OPTS) do
    o[k] = opts[k]
  end
  -- a perspective may bind one source address per family
  if opts.source_ipv4 or opts.source_ipv6 then
    o.source_ip = ip:find(":", 1, true) and opts.source_ipv6 or opts.source_ipv4
  end
  o.source_ipv4, o.source_ipv6 = nil, nil
  o.connect_ip = ip
  -- the C layer checks the address again when it connects
  o.allow_reserved = env.allow_reserved == true
  if deadline then
    local left = deadline - env.now()
    if left <= 0 then return nil end
    o.timeout_ms = math_min(o.timeout_ms or left, left)
  end
  return o
end

--- fetch(url, opts, env) -> {status, reason, headers, body, exceeded, url, ip, port,
---   history = {{status_code=, url=}...}, records = {{url=, ip=, error=}...}}
---   | nil, kind, detail, history
function M.fetch(url, opts, env)
  if type(url) ~= "string" then error("fetch: url must be a string", 2) end
  if opts ~= nil and type(opts) ~= "table" then error("fetch: opts must be a table", 2) end
  if type(env) ~= "table" or type(env.resolve) ~= "function" then error("fetch: env.resolve must be a function", 2) end
  opts = opts or {}
  local get = env.get or http.get
  local max_redirects = opts.max_redirects or M.DEFAULT_MAX_REDIRECTS
  local deadline
  if opts.total_timeout_ms then
    if type(env.now) ~= "function" then error("fetch: total_timeout_ms needs env.now", 2) end
    deadline = env.now() + opts.total_timeout_ms
  end

  local u, why = http.url_parse(url)
  if not u or (u.scheme ~= "http" and u.scheme ~= "https") then
    return nil, "invalid_target", "Invalid URL: " .. tostring(url) .. (why and (" (" .. why .. ")") or ""), {}
  end
  if u.zone then return nil, "invalid_target", "IP address with a zone ID is not allowed", {} end
  if not u.ip_family and not env.allow_reserved then
    local suffix, reason = http.vet_name(u.host)
    if not suffix then return nil, "invalid_target", "Invalid host " .. u.host .. ": " .. reason, {} end
  end

  local history, records, visited = {}, {}, { [u.url] = true }
  local redirects = 0
  while true do
    local addrs, akind, adetail = addresses(u, env)
    if not addrs then return nil, akind, adetail, history end
    local res, kind, detail
    for i, ip in ipairs(addrs) do
      local o = hop_opts(opts, ip, env, deadline)
      if not o then return nil, "timeout", "Fetching " .. u.url .. ": deadline exceeded", history end
      res, kind, detail = get(u.url, o)
      records[#records + 1] = { url = u.url, ip = ip, error = (not res) and kind or nil, detail = detail }
      if res or not dial_error(kind, detail) or i == #addrs then break end
    end
    if not res then return nil, kind, string_format("Fetching %s: %s", u.url, tostring(detail)), history end
    local status = res.status
    if status < 300 or status > 399 then
      return {
        status = status,
        reason = res.reason,
        headers = res.headers,
        body = res.body,
        exceeded = res.exceeded,
        url = u.url,
        ip = res.ip,
        port = res.port,
        history = history,
        records = records,
      }
    end
    local location = res.location
    local resolved = location and http.url_parse(location, u.url)
    local entry = { status_code = status, url = resolved and resolved.url or location }
    if not FOLLOWED[status] then
      history[#history + 1] = entry
      return nil, "redirect", "received disallowed redirect status code", history
    end
    if redirects >= max_redirects then
      history[#history + 1] = entry
      return nil, "redirect", "Too many redirects", history
    end
    if not location or location == "" then
      history[#history + 1] = entry
      return nil, "redirect", "Invalid redirect target: no Location header", history
    end
    local bad, target = check_target(location, u.url, env)
    if target then entry.url = target.url end
    history[#history + 1] = entry
    if bad then return nil, "redirect", bad, history end
    if visited[target.url] then return nil, "redirect", "Redirect loop detected", history end
    visited[target.url] = true
    redirects = redirects + 1
    u = target
  end
end

return M
