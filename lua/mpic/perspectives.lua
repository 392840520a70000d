-- mpic.perspectives: the perspective registry of the current configuration,
-- and the probe interface bound to one local perspective's network identity
-- (its own DNS resolver channel, source addresses, interface, User-Agent).
-- Health and latency (from canary probes only, see M.observe) are tracked
-- per perspective for selection.
local M = {}
local error, ipairs, next, tostring, setmetatable = error, ipairs, next, tostring, setmetatable
local string_format = string.format

-- A registry state belongs to one configuration. Reloading makes a new one;
-- validations in flight keep the state they started with (M.snapshot), and
-- the old resolvers are released by the garbage collector once no check
-- uses them any more.
local state = { cfg = nil, list = {}, by_id = {}, probes = {}, health = {} }

M.AGENT_CONNECTIONS = 32

function M.configure(cfg)
  state = { cfg = cfg, list = {}, by_id = {}, probes = {}, health = {} }
  require("mpic.core.http").set_channel_connections(
    cfg.network and cfg.network.agent_connections or M.AGENT_CONNECTIONS
  )
  for _, p in ipairs(cfg.perspectives) do
    state.list[#state.list + 1] = p
    state.by_id[p.id] = p
    state.health[p.id] = { status = "unknown", probes = 0, failures = 0, last_error = nil, latency_ms = nil }
  end
end

function M.config() return state.cfg end

--- The current registry state, for a validation to keep across reloads.
function M.snapshot() return state end

--- Plain copies of the perspectives with their health, for policies and display.
function M.list(st)
  st = st or state
  local out = {}
  for _, p in ipairs(st.list) do
    local h = st.health[p.id]
    out[#out + 1] = {
      id = p.id,
      rir = p.rir,
      location = { lat = p.location.lat, lon = p.location.lon },
      provider = p.provider,
      remote = p.agent ~= nil,
      is_primary = st.cfg.primary == p.id,
      healthy = M.healthy(h),
      latency_ms = h.latency_ms,
      health = h.status,
      health_error = h.last_error,
    }
  end
  return out
end

function M.get(id, st) return (st or state).by_id[id] end

--[[ Health says whether a perspective can observe, never what a target did.
It moves only on canary probes (mpic.service.health): the perspective's resolvers
answering the operator's canary name, an optional canary HTTP fetch, and for
a remote perspective its agent's /healthz over the agent channel. A
validation's check result never changes it, so no requester can make a
perspective look down by asking for targets that fail. Status "unknown"
(never probed: `mpic validate`, the REPL before :perspectives) counts as
usable; "unhealthy" after `failures` consecutive failed probes; one
successful probe makes it healthy again. ]]
M.FAILURES_UNHEALTHY = 2

function M.healthy(h) return h.status ~= "unhealthy" end

--- The health settings of configuration cfg (its `health:` block with the
--- defaults): interval_ms, timeout_ms, failures, canary_dns, canary_http,
--- own_domain. The probing loop (mpic.service.health) runs by them; a 503
--- names interval_ms as the time to retry after.
function M.health_settings(cfg)
  local h = cfg.health or {}
  return {
    interval_ms = (h.interval_s or 10) * 1000,
    timeout_ms = h.timeout_ms or 2000,
    failures = h.failures or M.FAILURES_UNHEALTHY,
    canary_dns = h.canary_dns,
    canary_http = h.canary_http,
    own_domain = cfg.issuer and cfg.issuer.caa_domains[1] or "invalid",
  }
end

-- perspective id -> true: asked for an early probe (M.suspect)
local suspects = {}

--- A validation saw a sign that perspective id may be unable to observe
--- (e.g. its agent refused the connection): ask the probing loop to probe
--- it soon. The probe alone decides.
function M.suspect(id) suspects[id] = true end

--- The perspectives suspected since the last call (a set of ids, or nil),
--- for the probing loop; the set starts empty again.
function M.take_suspects()
  if next(suspects) == nil then return nil end
  local s = suspects
  suspects = {}
  return s
end

--- Called as on_health_change(id, healthy, why) when a perspective of the
--- current configuration turns unhealthy or healthy again (the service
--- logs it).
M.on_health_change = nil

--- Record one canary probe of perspective id: ok, its duration, and why it
--- failed (hard: unhealthy at once, whatever health.failures says). The
--- latency (an exponential moving average) comes from probes
--- only, so a slow target cannot make a perspective look slow.
function M.observe(id, ok, ms, why, st, hard)
  st = st or state
  local h = st.health[id]
  if not h then return end
  local was = h.status
  h.probes = h.probes + 1
  h.last_probe = require("mpic.core").now()
  if ok then
    h.failures = 0
    h.last_error = nil
    h.status = "healthy"
    if ms then h.latency_ms = h.latency_ms and (h.latency_ms * 0.8 + ms * 0.2) or ms end
  else
    h.failures = h.failures + 1
    h.last_error = tostring(why or "probe failed")
    local limit = st.cfg and st.cfg.health and st.cfg.health.failures or M.FAILURES_UNHEALTHY
    if h.failures >= limit or hard then h.status = "unhealthy" end
  end
  if h.status ~= was and (h.status == "unhealthy" or was == "unhealthy") and M.on_health_change and st == state then
    M.on_health_change(
      id,
      h.status ~= "unhealthy",
      h.status == "unhealthy" and string_format("%d consecutive failed probes, the last: %s", h.failures, h.last_error)
        or "the canary probe answers again"
    )
  end
end

--- The health record of perspective id: {status, failures, last_error,
--- last_probe, probes, latency_ms} (nil for an unknown id).
function M.health(id, st) return (st or state).health[id] end

local function host_port(hostport)
  local h, p = hostport:match("^%[(.-)%]:(%d+)$")
  if not h then
    h, p = hostport:match("^([^:]+):(%d+)$")
  end
  return h or hostport, tonumber(p)
end
M.host_port = host_port

local function make_probe(p, cfg)
  local dns = require("mpic.core.dns")
  local resolver = dns.resolver({
    servers = p.resolvers,
    timeout_ms = p.dns_timeout_ms or cfg.defaults.dns_timeout_ms,
    tries = p.dns_tries or cfg.defaults.dns_tries,
    source_ipv4 = p.source_ipv4,
    source_ipv6 = p.source_ipv6,
    interface = p.interface,
    tcp_only = p.dns_tcp_only,
    lifetime_ms = p.dns_lifetime_ms or cfg.defaults.dns_lifetime_ms,
    ca_file = p.resolver_ca, -- tls:// and https:// resolvers
  })
  local allow_reserved = cfg.network.allow_reserved_ips
  local ua = p.user_agent or cfg.defaults.user_agent
  local probe = {
    id = p.id,
    rir = p.rir,
    allow_reserved = allow_reserved,
    http_port = cfg.network.http_port,
    tls_port = cfg.network.tls_port,
  }

  function probe.dns(name, rtype) return resolver:query(name, rtype) end
  -- its answers are fresh plain tables built by the binding for this call:
  -- a check gets them without a copy (mpic.challenges)
  require("mpic.challenges").FRESH_RESULTS[probe.dns] = true

  --- true, why when this perspective's (validating) resolver proves name
  --- DNSSEC-Insecure (an authenticated denial of DS at an unsigned
  --- delegation at or above it); false, why otherwise (mpic.dnssec_insecure).
  function probe.dnssec_insecure(name) return require("mpic.dnssec_insecure").prove(probe.dns, name) end

  --- All usable addresses of host: AAAA first, then A; reserved ones dropped
  --- unless the lab allows them. Returns list or nil, kind, detail.
  function probe.resolve(host)
    local http = require("mpic.core.http")
    local mpic = require("mpic")
    -- AAAA in a child task while this task asks for A: both at once
    local t6 = mpic.spawn(resolver.query, resolver, host, "AAAA")
    local r4, k4, d4 = resolver:query(host, "A")
    local r6, k6, d6 = mpic.wait(t6)
    if not r6 and not r4 then return nil, k4 or k6, d4 or d6 end
    local out, dropped = {}, {}
    for _, r in ipairs({ r6 or { records = {} }, r4 or { records = {} } }) do
      for _, rr in ipairs(r.records) do
        local reserved, why = http.is_reserved(rr.address)
        if reserved and not allow_reserved then
          dropped[#dropped + 1] = rr.address .. " " .. why
        else
          out[#out + 1] = rr.address
        end
      end
    end
    if #out == 0 then
      return nil,
        "dns",
        string_format(
          "no valid A records found for %s; no valid AAAA records found for %s%s",
          host,
          host,
          #dropped > 0 and (" (reserved: " .. table.concat(dropped, ", ") .. ")") or ""
        )
    end
    return out
  end

  local function http_opts(opts, ip)
    opts = opts or {}
    return {
      connect_ip = ip,
      headers = opts.headers,
      user_agent = opts.user_agent or ua,
      connect_timeout_ms = opts.connect_timeout_ms,
      timeout_ms = opts.timeout_ms,
      max_bytes = opts.max_bytes,
      source_ip = opts.source_ip,
      connect_port = opts.connect_port,
      interface = p.interface,
      verify_tls = p.verify_tls,
      -- checked again in C at connect time (the lab switch travels with each request)
      allow_reserved = allow_reserved,
    }
  end

  -- One hop. A URL without an explicit port goes to the configured
  -- http_port/tls_port (80/443 unless a lab overrides them).
  local function get(url, opts)
    local http = require("mpic.core.http")
    local o = http_opts(opts, opts and opts.connect_ip)
    if o.connect_port == nil and (cfg.network.http_port ~= 80 or cfg.network.tls_port ~= 443) then
      local u = http.url_parse(url)
      if u and not u.port_explicit then
        o.connect_port = u.scheme == "https" and cfg.network.tls_port or cfg.network.http_port
      end
    end
    return http.get(url, o)
  end

  --- One hop to an address the caller chose (opts.connect_ip), or to the
  --- first address of the host resolved through this perspective.
  function probe.http_get(url, opts)
    local http = require("mpic.core.http")
    opts = opts or {}
    if not opts.connect_ip then
      local u = http.url_parse(url)
      if not u then return nil, "invalid_target", "cannot parse URL " .. url end
      if u.ip_family then
        opts = setmetatable({ connect_ip = u.host }, { __index = opts })
      else
        local addrs, kind, detail = probe.resolve(u.host)
        if not addrs then return nil, kind, detail end
        opts = setmetatable({ connect_ip = addrs[1] }, { __index = opts })
      end
    end
    return get(url, opts)
  end

  local fetch_env -- the same for every fetch of this probe
  function probe.fetch(url, opts)
    local fetch = require("mpic.fetch")
    opts = opts or {}
    local fo = setmetatable({ source_ipv4 = p.source_ipv4, source_ipv6 = p.source_ipv6 }, { __index = opts })
    if not fetch_env then
      fetch_env = {
        allow_reserved = allow_reserved,
        http_port = cfg.network.http_port,
        https_port = cfg.network.tls_port,
        now = require("mpic").now,
        resolve = probe.resolve,
        get = get,
      }
    end
    return fetch.fetch(url, fo, fetch_env)
  end

  function probe.tls_alpn(host, sni, opts)
    local tls = require("mpic.core.tls")
    opts = opts or {}
    local port = opts.port or cfg.network.tls_port
    local addrs, kind, detail
    if host:find("^[%d.]+$") or host:find(":") then
      addrs = { host }
    else
      addrs, kind, detail = probe.resolve(host)
    end
    if not addrs then return nil, kind, detail end
    local res
    for _, ip in ipairs(addrs) do
      res, kind, detail = tls.alpn(ip, port, {
        sni = sni or host,
        timeout_ms = opts.timeout_ms,
        -- the perspective's source address of the target's family
        source_ip = ip:find(":", 1, true) and p.source_ipv6 or p.source_ipv4,
        interface = p.interface,
        allow_reserved = allow_reserved,
      })
      if res then return res end
    end
    return nil, kind, detail
  end

  probe.config = {
    caa_domains = cfg.issuer.caa_domains,
    account_uri_prefixes = cfg.issuer.account_uri_prefixes or {},
    allow_reserved = allow_reserved,
    legacy_caa_critical_bit = cfg.defaults.legacy_caa_critical_bit,
  }
  -- made once and never changed: checks share its view (mpic.challenges)
  require("mpic.challenges").STABLE_PROBES[probe] = true
  return probe
end

--- A probe for perspective id of a configuration that is not (yet) the
--- current one (a reload checks the new primary before switching).
function M.probe_of(cfg, id)
  for _, p in ipairs(cfg.perspectives) do
    if p.id == id and not p.agent then return make_probe(p, cfg) end
  end
  error(string_format("no local perspective %q", tostring(id)), 2)
end

--- The probe interface of a local perspective (the primary, or the first
--- perspective, when id is nil).
function M.probe(id, st)
  st = st or state
  local cfg = st.cfg
  if not cfg then error("no configuration loaded (mpic.load_config(path) or --config FILE)", 3) end
  id = id or cfg.primary or st.list[1].id
  local p = st.by_id[id]
  if not p then error(string_format("unknown perspective %q", tostring(id)), 3) end
  if p.agent then
    error(string_format("perspective %q is remote (agent %s); probe it through its agent", id, p.agent.url), 3)
  end
  local probe = st.probes[id]
  if not probe then
    probe = make_probe(p, cfg)
    st.probes[id] = probe
  end
  return probe
end

return M
