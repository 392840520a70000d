-- mpic: the public Lua API (DESIGN.md "Lua contracts").
--
-- Task primitives come from the C scheduler (mpic.core); probes are the C
-- bindings (mpic.core.dns/http/tls) bound to a perspective's network
-- identity by mpic.perspectives; helpers wrap mpic.core.util.
local core = require "mpic.core"
local util = require "mpic.core.util"

local M = {}
local error, type, ipairs, setmetatable = error, type, ipairs, setmetatable
local table_pack, table_unpack = table.pack, table.unpack

-- Tasks ----------------------------------------------------------------------
M.spawn = core.spawn -- spawn(fn, ...) -> task (a child of the caller)
M.wait = core.wait -- wait(task [, timeout_ms]) -> results | nil, kind, msg
M.wait_first = core.wait_first -- wait_first(tasks, k [, timeout_ms]) -> finished tasks in order
M.wait_all = core.wait_all -- wait_all(tasks [, timeout_ms])
M.sleep = core.sleep -- sleep(ms)
M.cancel = core.cancel -- cancel(task): the task and everything it started
M.current = core.current
M.now = core.now -- monotonic milliseconds
M.stats = core.stats

--- Run fn(...) as a child task with a deadline. Returns its results, or
--- nil, "timeout", msg when it did not finish in time (it is then cancelled).
function M.with_timeout(ms, fn, ...)
  local t = core.spawn(fn, ...)
  local r = table_pack(core.wait(t, ms))
  if t:status() == "done" or t:status() == "error" or t:status() == "cancelled" then return table_unpack(r, 1, r.n) end
  core.cancel(t)
  return nil, "timeout", ("deadline of %d ms exceeded"):format(ms)
end

--- Run fn(item) for every item concurrently; returns the results in order
--- (each as a packed table).
function M.map(items, fn)
  local tasks = {}
  for i, v in ipairs(items) do
    tasks[i] = core.spawn(fn, v)
  end
  core.wait_all(tasks)
  local out = {}
  for i, t in ipairs(tasks) do
    out[i] = table_pack(t:result())
  end
  return out
end

-- Helpers ----------------------------------------------------------------------
M.sha256 = util.sha256
M.hex = util.hex
M.base64 = util.base64
M.base64url = util.base64url
M.base32 = util.base32
M.json = {
  encode = util.json_encode,
  decode = util.json_decode,
  null = util.null,
  array = function(t) return setmetatable(t or {}, util.array_mt) end,
}
M.distance_km = util.distance_km

-- Perspectives and probes -----------------------------------------------------
local function registry() return require("mpic.perspectives") end

--- The configured perspectives (list of plain tables).
function M.perspectives() return registry().list() end

-- The probe of opts.perspective; mistakes are the caller's (level 3: the
-- code that called dns.query & co.), with the ids to choose from.
local function probe_for(opts)
  if opts ~= nil and type(opts) ~= "table" then error("opts must be a table", 3) end
  local id = (opts or {}).perspective
  local reg = registry()
  if not reg.config() then error("no configuration loaded (mpic.load_config(path) or --config FILE)", 3) end
  if id ~= nil and not reg.get(id) then
    local ids = {}
    for _, p in ipairs(reg.list()) do
      ids[#ids + 1] = p.id
    end
    error(("unknown perspective %q (perspectives: %s)"):format(tostring(id), table.concat(ids, ", ")), 3)
  end
  return reg.probe(id)
end

-- The options each probe function reads; any other key is refused, so that a
-- misspelt limit (timeout_m) is an error rather than a default.
local function known(list)
  local set = { perspective = true }
  for _, k in ipairs(list) do
    set[k] = true
  end
  return set
end
local HTTP_GET_OPTS = known({
  "connect_ip",
  "connect_port",
  "headers",
  "user_agent",
  "connect_timeout_ms",
  "timeout_ms",
  "max_bytes",
  "source_ip",
})
local OPTS = {
  ["dns.query"] = known({}),
  ["http.get"] = HTTP_GET_OPTS,
  ["http.fetch"] = known({
    "headers",
    "user_agent",
    "connect_timeout_ms",
    "timeout_ms",
    "max_bytes",
    "max_redirects",
    "total_timeout_ms",
  }),
  ["tls.alpn"] = known({ "sni", "port", "timeout_ms" }),
}
local function check_opts(who, opts)
  if type(opts) ~= "table" then return end
  local set = OPTS[who]
  for k in pairs(opts) do
    if not set[k] then
      local names = {}
      for n in pairs(set) do
        names[#names + 1] = n
      end
      table.sort(names)
      error(("%s: unknown option %s (options: %s)"):format(who, tostring(k), table.concat(names, ", ")), 3)
    end
  end
end

M.dns = {}
--- The record types dns.query asks for (those the resolver binding parses).
M.dns.TYPES = { "A", "AAAA", "CNAME", "TXT", "CAA", "PTR", "NS", "SOA", "DS" }
local DNS_TYPES = {}
for _, t in ipairs(M.dns.TYPES) do
  DNS_TYPES[t] = true
end
--- dns.query(name, rtype [, opts]) -> result | nil, kind, detail, partial
function M.dns.query(name, rtype, opts)
  if type(name) ~= "string" then error("dns.query: name must be a string", 2) end
  if type(rtype) ~= "string" then error("dns.query: rtype must be a string", 2) end
  if not DNS_TYPES[rtype:upper()] then
    error(("dns.query: unsupported rtype %q (one of: %s)"):format(rtype, table.concat(M.dns.TYPES, ", ")), 2)
  end
  check_opts("dns.query", opts)
  return probe_for(opts).dns(name, rtype:upper(), opts)
end

M.http = {}
--- http.get(url [, opts]) -> one hop, address resolved through the perspective
function M.http.get(url, opts)
  if type(url) ~= "string" then error("http.get: url must be a string", 2) end
  check_opts("http.get", opts)
  return probe_for(opts).http_get(url, opts)
end
--- http.fetch(url [, opts]) -> follows redirects under the http-01 rules
function M.http.fetch(url, opts)
  if type(url) ~= "string" then error("http.fetch: url must be a string", 2) end
  check_opts("http.fetch", opts)
  return probe_for(opts).fetch(url, opts)
end

M.tls = {}
--- tls.alpn(host [, opts]) -> handshake offering acme-tls/1 and the peer certificate
function M.tls.alpn(host, opts)
  if type(host) ~= "string" then error("tls.alpn: host must be a string", 2) end
  check_opts("tls.alpn", opts)
  return probe_for(opts).tls_alpn(host, opts and opts.sni, opts)
end

--- validate(request) -> Open MPIC response table, HTTP status (see
--- mpic.orchestrator); a request without trace_identifier gets a fresh one
function M.validate(request)
  local orchestrator = require "mpic.orchestrator"
  return orchestrator.validate(orchestrator.with_trace(request))
end

--- Load (and validate) a configuration file; makes it the current one.
function M.load_config(path)
  local cfg, err = require("mpic.config").load(path)
  if not cfg then return nil, err end
  registry().configure(cfg)
  M.config = cfg
  return cfg
end

return M
