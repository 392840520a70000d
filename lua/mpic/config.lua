-- mpic.config: loads perspectives.yaml (YAML -> Lua through mpic.core.yaml)
-- and validates it against the configuration contract of DESIGN.md.
-- Every problem is reported as "FILE: key.path: message"; load() returns
-- nil, message listing all of them (one per line). Relative paths in the
-- file are made relative to the file's directory.
local yaml = require "mpic.core.yaml"

local M = {}
local type, pairs, ipairs, tostring, math_type = type, pairs, ipairs, tostring, math.type
local string_format, table_concat, table_sort = string.format, table.concat, table.sort

local RIRS = {
  arin = "ARIN",
  ripe = "RIPE",
  ["ripe ncc"] = "RIPE",
  apnic = "APNIC",
  lacnic = "LACNIC",
  afrinic = "AFRINIC",
}
M.RIRS = RIRS

--- Canonical RIR name ("RIPE NCC" and "ripe" are both "RIPE"), or nil.
function M.rir(name) return type(name) == "string" and RIRS[name:lower()] or nil end

-- Schema -----------------------------------------------------------------------
-- A schema node is a table {kind=..., ...}; check(node, value, path, errs).
local S = {}
M.schema = S

function S.string(opts) return { kind = "string", opts = opts or {} } end
function S.int(min, max) return { kind = "int", min = min, max = max } end
function S.number(min, max) return { kind = "number", min = min, max = max } end
function S.bool() return { kind = "bool" } end
function S.list(elem, opts) return { kind = "list", elem = elem, opts = opts or {} } end
function S.record(fields, required) return { kind = "record", fields = fields, required = required or {} } end
function S.map(elem) return { kind = "map", elem = elem } end

local function typename(v)
  if math_type(v) == "integer" then return "integer" end
  return type(v)
end

local function join(path, key)
  if type(key) == "number" then return string_format("%s[%d]", path, key - 1) end
  if path == "" then return key end
  return path .. "." .. key
end

local check

local checkers = {}
function checkers.string(node, v, path, errs)
  if type(v) ~= "string" then
    errs[#errs + 1] = { path, "expected string, got " .. typename(v) }
  elseif node.opts.nonempty and v == "" then
    errs[#errs + 1] = { path, "must not be empty" }
  elseif node.opts.oneof and not node.opts.oneof[v] then
    local opts = {}
    for k in pairs(node.opts.oneof) do
      opts[#opts + 1] = k
    end
    table_sort(opts)
    errs[#errs + 1] = { path, string_format("unknown value %q (one of: %s)", v, table_concat(opts, ", ")) }
  end
end
local function range(node, v, path, errs)
  if node.min and v < node.min then
    errs[#errs + 1] = { path, string_format("must be >= %s", node.min) }
  elseif node.max and v > node.max then
    errs[#errs + 1] = { path, string_format("must be <= %s", node.max) }
  end
end
function checkers.int(node, v, path, errs)
  if math_type(v) ~= "integer" then
    errs[#errs + 1] = { path, "expected integer, got " .. typename(v) }
  else
    range(node, v, path, errs)
  end
end
function checkers.number(node, v, path, errs)
  if type(v) ~= "number" or v ~= v then
    errs[#errs + 1] = { path, "expected number, got " .. typename(v) }
  else
    range(node, v, path, errs)
  end
end
function checkers.bool(_, v, path, errs)
  if type(v) ~= "boolean" then errs[#errs + 1] = { path, "expected boolean, got " .. typename(v) } end
end
function checkers.list(node, v, path, errs)
  if type(v) ~= "table" then
    errs[#errs + 1] = { path, "expected list, got " .. typename(v) }
    return
  end
  local n = #v
  for k in pairs(v) do
    if math_type(k) ~= "integer" or k < 1 or k > n then
      errs[#errs + 1] = { path, "expected list, got mapping" }
      return
    end
  end
  if node.opts.nonempty and n == 0 then errs[#errs + 1] = { path, "must not be empty" } end
  for i = 1, n do
    check(node.elem, v[i], join(path, i), errs)
  end
end
function checkers.map(node, v, path, errs)
  if type(v) ~= "table" then
    errs[#errs + 1] = { path, "expected mapping, got " .. typename(v) }
    return
  end
  for k, x in pairs(v) do
    check(node.elem, x, join(path, tostring(k)), errs)
  end
end
function checkers.record(node, v, path, errs)
  if type(v) ~= "table" or (#v > 0) then
    local got = type(v) == "table" and "list" or typename(v)
    errs[#errs + 1] = { path ~= "" and path or "(top level)", "expected mapping, got " .. got }
    return
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = tostring(k)
  end
  table_sort(keys)
  for _, k in ipairs(keys) do
    if not node.fields[k] then errs[#errs + 1] = { join(path, k), "unknown key" } end
  end
  for _, k in ipairs(node.required) do
    if v[k] == nil then errs[#errs + 1] = { join(path, k), "missing required key" } end
  end
  local fields = {}
  for k in pairs(node.fields) do
    fields[#fields + 1] = k
  end
  table_sort(fields)
  for _, k in ipairs(fields) do
    if v[k] ~= nil then check(node.fields[k], v[k], join(path, k), errs) end
  end
end

check = function(node, v, path, errs) return checkers[node.kind](node, v, path, errs) end
M.check = check

local rir_names = {}
for k in pairs(RIRS) do
  rir_names[k] = true
  rir_names[k:upper()] = true
end

local location = S.record({ lat = S.number(-90, 90), lon = S.number(-180, 180) }, { "lat", "lon" })

M.CONFIG = S.record({
  issuer = S.record({
    caa_domains = S.list(S.string({ nonempty = true }), { nonempty = true }),
    account_uri_prefixes = S.list(S.string({ nonempty = true })),
  }, { "caa_domains" }),
  policy = S.string({ nonempty = true }),
  shadow_policies = S.list(S.string({ nonempty = true })),
  selection_secret = S.string({ nonempty = true }),
  challenge_dirs = S.list(S.string({ nonempty = true })),
  strict_challenges = S.bool(),
  defaults = S.record({
    perspective_count = S.int(1, 64),
    quorum_count = S.int(1, 64),
    max_attempts = S.int(1, 10),
    timeout_ms = S.int(1, 600000),
    dns_timeout_ms = S.int(1, 60000),
    dns_tries = S.int(1, 10),
    dns_lifetime_ms = S.int(1, 120000),
    user_agent = S.string({ nonempty = true }),
    legacy_caa_critical_bit = S.bool(),
    enforce_sunset = S.bool(),
  }),
  network = S.record({
    allow_reserved_ips = S.bool(),
    http_port = S.int(1, 65535),
    tls_port = S.int(1, 65535),
    -- connections the coordinator keeps open to one agent at once (more
    -- checks in flight wait for one)
    agent_connections = S.int(1, 100000),
  }),
  -- signing_key: the coordinator's Ed25519 key (PEM): signs the log's
  -- checkpoints, among them the seal written after every batch of lines,
  -- which covers the local perspectives' results (docs/EVIDENCE.md);
  -- seal_ms: under load, at most one seal per seal_ms (lines wait for it);
  -- public_keys: the coordinator's own public keys still valid (rotation);
  -- policy_store: folder keeping every policy run, by its SHA-256
  audit = S.record({
    path = S.string({ nonempty = true }),
    fsync = S.bool(),
    signing_key = S.string({ nonempty = true }),
    public_keys = S.list(S.string({ nonempty = true })),
    checkpoint_interval_s = S.int(1, 86400),
    seal_ms = S.int(0, 1000),
    policy_store = S.string({ nonempty = true }),
  }),
  -- lab-only switches; each one in use is logged when the configuration is
  -- first used (policy_floor = false: no BR floor under the policy's verdict)
  lab = S.record({ policy_floor = S.bool() }),
  -- perspective health (mpic.service.health): canary probes that the CA controls
  health = S.record({
    interval_s = S.number(0.1, 3600),
    timeout_ms = S.int(1, 60000),
    failures = S.int(1, 100),
    canary_dns = S.record({
      name = S.string({ nonempty = true }),
      type = S.string({ oneof = { A = true, AAAA = true, TXT = true, CAA = true, SOA = true, NS = true } }),
    }, { "name" }),
    canary_http = S.string({ nonempty = true }),
  }),
  -- the TLS identity of `mpic agent` when run with this file (flags override)
  agent_server = S.record({
    cert = S.string({ nonempty = true }),
    key = S.string({ nonempty = true }),
    client_ca = S.string({ nonempty = true }),
    -- the agent's Ed25519 key (PEM) signing every answer (docs/EVIDENCE.md)
    signing_key = S.string({ nonempty = true }),
  }, { "cert", "key", "client_ca" }),
  primary = S.string({ nonempty = true }),
  -- the start-up proof that the primary's resolver validates DNSSEC (mpic.dnssec_check)
  primary_dnssec = S.record({
    signed_name = S.string({ nonempty = true }),
    bogus_name = S.string({ nonempty = true }),
    type = S.string({ oneof = { A = true, AAAA = true, TXT = true, CAA = true, SOA = true } }),
  }, { "signed_name", "bogus_name" }),
  perspectives = S.list(
    S.record({
      id = S.string({ nonempty = true }),
      rir = S.string({ oneof = rir_names }),
      location = location,
      provider = S.string(),
      resolvers = S.list(S.string({ nonempty = true }), { nonempty = true }),
      -- PEM CA file the certificates of tls:// and https:// resolvers must
      -- chain to (default: the system trust store)
      resolver_ca = S.string({ nonempty = true }),
      source_ipv4 = S.string({ nonempty = true }),
      source_ipv6 = S.string({ nonempty = true }),
      interface = S.string({ nonempty = true }),
      user_agent = S.string({ nonempty = true }),
      dns_timeout_ms = S.int(1, 60000),
      dns_tries = S.int(1, 10),
      dns_lifetime_ms = S.int(1, 120000),
      dns_tcp_only = S.bool(),
      verify_tls = S.bool(),
      agent = S.record({
        url = S.string({ nonempty = true }),
        address = S.string({ nonempty = true }),
        ca = S.string({ nonempty = true }),
        cert = S.string({ nonempty = true }),
        key = S.string({ nonempty = true }),
        -- the agent's public key: "sha256//BASE64" (several joined with ";")
        pinned_key = S.string({ nonempty = true }),
        timeout_ms = S.int(1, 600000),
        -- the agent's Ed25519 public keys (PEM files; several while a key
        -- rotates): once set, an answer without a valid signature fails
        public_keys = S.list(S.string({ nonempty = true }), { nonempty = true }),
      }, { "url", "ca", "cert", "key" }),
    }, { "id", "rir", "location" }),
    { nonempty = true }
  ),
}, { "issuer", "perspectives" })

local DEFAULTS = {
  policy = "policies/br.lua",
  defaults = {
    perspective_count = 5,
    max_attempts = 2,
    timeout_ms = 10000,
    dns_timeout_ms = 2000,
    dns_tries = 3,
    dns_lifetime_ms = 5000,
    user_agent = "mpic/0.1 (+multi-perspective validation)",
    legacy_caa_critical_bit = false,
    enforce_sunset = true,
  },
  network = { allow_reserved_ips = false, http_port = 80, tls_port = 443 },
  audit = { path = "audit.jsonl", fsync = true, checkpoint_interval_s = 300, seal_ms = 10 },
  health = { interval_s = 10, timeout_ms = 2000, failures = 2 },
}

local function is_abs(p) return p:sub(1, 1) == "/" end

-- A plain resolver address: "IP", "IPv4:PORT", "[IPv6]" or "[IPv6]:PORT",
-- the address read by the C parser (netaddr.c, through mpic.core.http) and
-- the port 1..65535. Returns true or nil, message.
local check_address
local function check_resolver(s)
  if #s > 512 then return nil, string_format("%q...: longer than 512 bytes", s:sub(1, 40)) end
  local http = require "mpic.core.http"
  if s:find("^[Tt][Ll][Ss]://") then
    -- DNS-over-TLS: tls://IP[:PORT][#NAME], NAME the name its certificate carries
    local addr, name = s:sub(7):match("^([^#]*)#?(.*)$")
    local form = "tls://IP[:PORT][#NAME] or tls://[IPv6]:PORT[#NAME]"
    if addr == "" then return nil, string_format("%q: expected %s", s, form) end
    if
      s:find("#", 1, true)
      and not (
        name:match("^[%w_%-]+[%w_%-%.]*$")
        and not name:find("..", 1, true)
        and #name <= 253
        and not name:find("^%.")
      )
    then
      return nil,
        string_format(
          "%q: the name after '#' (the name the resolver's certificate carries)" .. " is not a host name",
          s
        )
    end
    if not check_address(addr) then
      return nil,
        string_format(
          "%q: expected %s (an IP address and a port 1-65535, then the name the" .. " resolver's certificate carries)",
          s,
          form
        )
    end
    return true
  elseif s:find("^[Hh][Tt][Tt][Pp][Ss]://") then
    -- DNS-over-HTTPS: https://HOST[:PORT]/PATH[#IP], IP the address to connect to
    local url, pin = s:match("^([^#]*)#?(.*)$")
    local form = "https://HOST[:PORT]/PATH[#IP]"
    if s:find("#", 1, true) and not http.parse_ip(pin) then
      return nil, string_format("%q: the part after '#' (the address to connect to) is not an IP address", s)
    end
    local u = http.url_parse(url)
    if not u or u.scheme ~= "https" or not u.host or u.host == "" then
      return nil, string_format("%q: expected %s", s, form)
    end
    if u.query or not u.path or u.path == "" or u.path == "/" then
      return nil, string_format("%q: a DoH URL names the query path (e.g. /dns-query) and no query string", s)
    end
    return true
  elseif s:find("^%a[%w+.-]*://") then
    return nil,
      string_format(
        "%q: unknown scheme (resolvers are IP[:PORT], tls://IP[:PORT][#NAME]" .. " or https://HOST[:PORT]/PATH[#IP])",
        s
      )
  end
  return check_address(s)
end
function check_address(s)
  local host, port
  local inner, rest = s:match("^%[(.-)%](.*)$")
  if inner then
    host = inner
    port = rest:match("^:(.*)$")
    if rest ~= "" and not port then return nil, string_format("%q: expected [IPv6]:PORT", s) end
  else
    local colons = select(2, s:gsub(":", ""))
    if colons == 1 then
      host, port = s:match("^(.*):(.*)$")
    else
      host = s
    end
  end
  if port ~= nil then
    local n = port:match("^%d+$") and tonumber(port)
    if not n or n < 1 or n > 65535 then
      return nil, string_format("%q: port %q is not a port number (1-65535)", s, port)
    end
  end
  local http = require "mpic.core.http"
  do
    local canon, family = http.parse_ip(host)
    if not canon then
      return nil,
        string_format(
          "%q is not an IP address (IP, IPv4:PORT or [IPv6]:PORT; resolvers are"
            .. " addresses, not names; encrypted ones tls://IP[:PORT][#NAME] or https://HOST[:PORT]/PATH[#IP])",
          s
        )
    end
    if inner and family ~= 6 then return nil, string_format("%q: brackets are for IPv6 addresses", s) end
  end
  return true
end
M.check_resolver = check_resolver

--- Cross-field rules that a schema cannot say.
local function semantic(cfg, errs)
  local ids = {}
  for i, p in ipairs(cfg.perspectives) do
    local path = join("perspectives", i)
    if ids[p.id] then
      errs[#errs + 1] = {
        path .. ".id",
        string_format("duplicate perspective id %q (also perspectives[%d])", p.id, ids[p.id] - 1),
      }
    end
    ids[p.id] = i
    for j, r in ipairs(p.resolvers or {}) do
      local rok, rwhy = check_resolver(r)
      if not rok then errs[#errs + 1] = { join(path .. ".resolvers", j), rwhy } end
    end
    if p.resolvers and p.agent then
      errs[#errs + 1] = { path, "a perspective is either local (resolvers) or remote (agent), not both" }
    elseif not p.resolvers and not p.agent then
      errs[#errs + 1] = { path, "needs resolvers (a local perspective) or agent (a remote one)" }
    end
    if p.agent then
      if not p.agent.url:match("^https://[^/]") then
        errs[#errs + 1] = { path .. ".agent.url", "must be an https:// URL (agents speak mutual TLS)" }
      end
      local pin = p.agent.pinned_key
      if pin then
        for part in (pin .. ";"):gmatch("([^;]*);") do
          if not part:match("^sha256//[A-Za-z0-9+/]+=*$") or #part ~= 52 then
            errs[#errs + 1] = {
              path .. ".agent.pinned_key",
              "must be sha256//BASE64 (the SHA-256 of the agent's public key), several joined with ;",
            }
            break
          end
        end
      end
    end
  end
  local canary = cfg.health and cfg.health.canary_http
  if canary and not canary:match("^https?://[^/]") then
    errs[#errs + 1] = { "health.canary_http", "must be an http:// or https:// URL" }
  end
  if cfg.primary and not ids[cfg.primary] then
    errs[#errs + 1] = { "primary", string_format("no perspective has id %q", cfg.primary) }
  end
  if cfg.primary_dnssec then
    local prim = cfg.primary and ids[cfg.primary] and cfg.perspectives[ids[cfg.primary]]
    if not prim then
      errs[#errs + 1] = { "primary_dnssec", "needs a primary perspective (primary: ID)" }
    elseif prim.agent then
      errs[#errs + 1] = { "primary_dnssec", "the primary must be a local perspective to check its resolver" }
    end
  end
end

local function merge_defaults(cfg)
  for section, vals in pairs(DEFAULTS) do
    if type(vals) == "table" then
      cfg[section] = cfg[section] or {}
      for k, v in pairs(vals) do
        if cfg[section][k] == nil then cfg[section][k] = v end
      end
    elseif cfg[section] == nil then
      cfg[section] = vals
    end
  end
end

--- Validate a config table. Returns cfg (with defaults filled) or nil, errors
--- (a list of {path, message}).
function M.validate(cfg, base_dir, root_dir)
  local errs = {}
  check(M.CONFIG, cfg, "", errs)
  if #errs == 0 then semantic(cfg, errs) end
  if #errs > 0 then return nil, errs end
  merge_defaults(cfg)
  for _, p in ipairs(cfg.perspectives) do
    p.rir = M.rir(p.rir)
  end
  -- relative paths: to the config file; the policy falls back to the mpic root
  local function rel(p) return (is_abs(p) or not base_dir) and p or (base_dir .. "/" .. p) end
  local function exists(p)
    local f = io.open(p, "r")
    if f then
      f:close()
      return true
    end
    return false
  end
  if not is_abs(cfg.policy) and not exists(rel(cfg.policy)) and root_dir then
    cfg.policy = root_dir .. "/" .. cfg.policy
  else
    cfg.policy = rel(cfg.policy)
  end
  cfg.audit.path = rel(cfg.audit.path)
  if cfg.audit.signing_key then cfg.audit.signing_key = rel(cfg.audit.signing_key) end
  for i, k in ipairs(cfg.audit.public_keys or {}) do
    cfg.audit.public_keys[i] = rel(k)
  end
  cfg.audit.policy_store = rel(cfg.audit.policy_store or (cfg.audit.path .. ".policies"))
  -- a worker of `serve --workers N` writes its own chain (mpic.service.workers)
  if M.audit_suffix then cfg.audit.path = cfg.audit.path .. M.audit_suffix end
  for i, d in ipairs(cfg.challenge_dirs or {}) do
    cfg.challenge_dirs[i] = rel(d)
  end
  for i, d in ipairs(cfg.shadow_policies or {}) do
    cfg.shadow_policies[i] = rel(d)
  end
  if cfg.agent_server then
    for _, k in ipairs({ "cert", "key", "client_ca" }) do
      cfg.agent_server[k] = rel(cfg.agent_server[k])
    end
    if cfg.agent_server.signing_key then cfg.agent_server.signing_key = rel(cfg.agent_server.signing_key) end
  end
  for _, p in ipairs(cfg.perspectives) do
    if p.resolver_ca then p.resolver_ca = rel(p.resolver_ca) end
    if p.agent then
      for _, k in ipairs({ "ca", "cert", "key" }) do
        p.agent[k] = rel(p.agent[k])
      end
      for i, k in ipairs(p.agent.public_keys or {}) do
        p.agent.public_keys[i] = rel(k)
      end
    end
  end
  return cfg
end

local function format_errors(file, errs)
  local lines = {}
  for _, e in ipairs(errs) do
    lines[#lines + 1] = string_format("%s: %s: %s", file, e[1], e[2])
  end
  return table_concat(lines, "\n")
end

--- Parse YAML text and validate it. file names the source in messages.
function M.parse(text, file, root_dir)
  file = file or "(config)"
  local cfg, err = yaml.load(text)
  if err then return nil, string_format("%s: %s", file, err) end
  if cfg == nil then return nil, file .. ": empty configuration" end
  local base = file:match("^(.*)/[^/]*$") or "."
  local ok, errs = M.validate(cfg, base, root_dir)
  if not ok then return nil, format_errors(file, errs) end
  cfg.file = file
  return cfg
end

--- Load a configuration file.
function M.load(file)
  local f, err = io.open(file, "rb")
  if not f then return nil, string_format("%s: cannot read: %s", file, err) end
  local text = f:read(4 * 1024 * 1024 + 1)
  f:close()
  if text and #text > 4 * 1024 * 1024 then return nil, file .. ": larger than 4 MiB" end
  local paths = package.loaded["mpic.paths"]
  return M.parse(text or "", file, paths and paths.root)
end

return M
