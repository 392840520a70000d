-- mpic.service.serve: the coordinator service (`mpic serve`), and the request loop
-- shared with the agent (M.run_loop).
--
-- POST /mpic answers the Open MPIC API through mpic.orchestrator (200, 400
-- and 500 bodies as it returns them). GET /healthz (outside the in-flight
-- limit), GET /metrics (Prometheus text; the API's token when one is set).
-- Optional TLS, optional bearer token / x-api-key and
-- optional client certificates for API clients. Every perspective is
-- health-checked by canary probes (mpic.service.health: the resolvers answer the
-- canary name, an agent's /healthz over mutual TLS), so that selection skips
-- perspectives that cannot observe; validation outcomes never move health.
-- SIGTERM: stop accepting, finish the validations in flight, exit 0.
-- SIGHUP: reload the configuration, policies and challenge types; a reload
-- that does not load is refused and the running set is kept.
-- --workers N (default: the CPUs): N processes behind one master (mpic.service.workers).
local mpic = require "mpic"
local util = require "mpic.core.util"
local server = require "mpic.core.server"

local M = {}
local io_stderr, os_date = io.stderr, os.date
local pcall, type, tostring, ipairs, pairs, tonumber = pcall, type, tostring, ipairs, pairs, tonumber
local string_format = string.format

local JSON = { ["Content-Type"] = "application/json" }

local function log(fmt, ...) io_stderr:write(os_date("!%Y-%m-%dT%H:%M:%SZ "), string_format(fmt, ...), "\n") end
M.log = log

local function encode(v)
  local s, err = util.json_encode(v)
  if not s then return '{"error":"response encoding failed: ' .. tostring(err):gsub('["\\]', "") .. '"}' end
  return s .. "\n"
end
M.encode = encode

--- "ADDR:PORT" / "[v6]:PORT" -> address, port (or nil, message).
function M.parse_listen(s)
  if type(s) ~= "string" then return nil, "--listen ADDR:PORT is required" end
  local a, p = s:match("^%[(.-)%]:(%d+)$")
  if not a then
    a, p = s:match("^([^:]+):(%d+)$")
  end
  p = tonumber(p)
  if not a or not p or p > 65535 then return nil, "bad --listen value " .. s .. " (ADDR:PORT)" end
  return a, p
end

--[[ Run handler(req) -> status, headers, body for every request of srv,
each as its own task. Returns when the server stops accepting, after the
requests in flight have been answered (or drain_ms passed). A handler that
raises gets a 500; on_answer(req, status, ms) is called after each answer. ]]
function M.run_loop(srv, handler, opts)
  opts = opts or {}
  local live, nlive = {}, 0
  local function serve_one(req, self_ref)
    local t0 = mpic.now()
    local ok, status, headers, body = pcall(handler, req)
    if not ok then
      log("handler error on %s %s: %s", tostring(req.method), tostring(req.path), tostring(status))
      status, headers, body = 500, JSON, encode({ error = "internal error" })
    end
    req:respond(status, headers, body)
    if opts.on_answer then pcall(opts.on_answer, req, status, mpic.now() - t0) end
    local t = self_ref[1]
    if t and live[t] then
      live[t] = nil
      nlive = nlive - 1
    end
  end
  while true do
    local req = srv:next()
    if not req then break end
    local ref = {}
    local t = mpic.spawn(serve_one, req, ref)
    if t:status() ~= "done" and t:status() ~= "error" then
      ref[1] = t
      live[t] = true
      nlive = nlive + 1
    end
  end
  if nlive > 0 then
    local tasks = {}
    for t in pairs(live) do
      tasks[#tasks + 1] = t
    end
    mpic.wait_all(tasks, opts.drain_ms or 30000)
  end
  -- let the last answers reach their clients before the server is freed
  local until_ms = mpic.now() + 2000
  while srv:sending() > 0 and mpic.now() < until_ms do
    mpic.sleep(10)
  end
end

--[[ Watch SIGTERM / SIGHUP: on TERM, stop accepting (run_loop then drains
and returns); on HUP, call on_hup(). ]]
function M.watch_signals(srv, on_hup)
  local sig = server.signals({ "TERM", "HUP", "INT" })
  local stopping = false
  return mpic.spawn(function()
    while true do
      local name = sig:next()
      if not name then return end
      if name == "HUP" and on_hup then
        local ok, err = pcall(on_hup)
        if not ok then log("reload failed: %s", tostring(err)) end
      elseif (name == "TERM" or name == "INT") and not stopping then
        stopping = true
        log("SIG%s: no new requests; finishing %d in flight", name, srv:inflight())
        srv:stop_accepting()
      end -- a repeated TERM changes nothing: the drain is bounded
    end
  end)
end

-- Coordinator ------------------------------------------------------------------

local function reload(path)
  local config = require "mpic.config"
  local policy = require "mpic.policy"
  local challenges = require "mpic.challenges"
  local cfg, err = config.load(path)
  if not cfg then return nil, err end
  local pol, perr = policy.load(cfg.policy)
  if not pol then return nil, perr end
  for _, sp in ipairs(cfg.shadow_policies or {}) do
    local ok, serr = policy.load(sp)
    if not ok then return nil, "shadow " .. tostring(serr) end
  end
  -- with strict_challenges a broken challenge file refuses the reload;
  -- without, it is reported (by the new context) and skipped
  local reg, rerr = challenges.load_configured(cfg, false)
  if not reg then return nil, rerr end
  -- the DNSSEC proof at the primary, mandatory in production (its outcome in the audit log)
  local dok, derr = require("mpic.dnssec_check").prove(
    cfg,
    "reload",
    cfg.primary_dnssec and require("mpic.perspectives").probe_of(cfg, cfg.primary) or nil
  )
  if not dok then return nil, derr end
  -- everything loads: switch. Validations in flight keep their context.
  require("mpic.perspectives").configure(cfg)
  mpic.config = cfg
  require("mpic.orchestrator").reset()
  local ctx, cerr = require("mpic.orchestrator").context()
  if not ctx then return nil, cerr end
  return cfg
end
M.reload = reload

local function authorised(req, opts)
  if not opts.token then return true end
  local h = req.headers
  local bearer = h.authorization and h.authorization:match("^[Bb]earer%s+(.-)%s*$")
  return bearer == opts.token or h["x-api-key"] == opts.token
end

local KNOWN_PATHS = { ["/mpic"] = true, ["/healthz"] = true, ["/metrics"] = true }

local function coordinator_handler(opts)
  local metrics = require "mpic.service.metrics"
  local orchestrator = require "mpic.orchestrator"
  local in_flight = 0
  return function(req)
    local path, method = req.path, req.method
    local status, headers, body
    if path == "/healthz" and (method == "GET" or method == "HEAD") then
      status, headers, body = M.healthz()
    elseif path == "/metrics" and method == "GET" and not authorised(req, opts) then
      -- the metrics name perspectives, agents and traffic: the API's token rule
      status, headers, body =
        401,
        { ["Content-Type"] = "application/json", ["WWW-Authenticate"] = "Bearer" },
        encode({ error = "unauthorized" })
    elseif path == "/metrics" and method == "GET" then
      metrics.inflight(in_flight)
      status, headers, body = 200, { ["Content-Type"] = "text/plain; version=0.0.4" }, metrics.render()
    elseif path == "/mpic" then
      if method ~= "POST" then
        status, headers, body =
          405,
          { ["Content-Type"] = "application/json", Allow = "POST" },
          encode({ error = "method not allowed; use POST" })
      elseif not authorised(req, opts) then
        status, headers, body =
          401,
          { ["Content-Type"] = "application/json", ["WWW-Authenticate"] = "Bearer" },
          encode({ error = "unauthorized" })
      else
        local raw, jerr = util.json_decode(req.body)
        local resp, text -- text: the response's JSON when the orchestrator made it
        if raw == nil then
          resp, status =
            { error = "request-validation-failed", validation_issues = {
              { issue_type = "invalid-json", message = "the body is not valid JSON: " .. tostring(jerr) },
            } }, 400
        else
          in_flight = in_flight + 1
          local ok, r, st, extra = pcall(orchestrator.validate, raw)
          in_flight = in_flight - 1
          local shadow
          if ok then
            resp, status, shadow = r, st, type(extra) == "table" and extra.shadow or nil
            text = type(extra) == "table" and extra.text or nil
          else
            log("validation error: %s", tostring(r))
            resp, status = { error = "internal error during validation" }, 500
          end
          metrics.validation(resp, status, raw, shadow)
        end
        headers, body = JSON, text and text .. "\n" or encode(resp)
        if status == 503 and type(resp) == "table" and resp.retry_after_s then
          headers = { ["Content-Type"] = "application/json", ["Retry-After"] = tostring(resp.retry_after_s) }
        end
      end
    else
      status, headers, body = 404, JSON, encode({ error = "not found" })
    end
    metrics.request(KNOWN_PATHS[path] and path or "other", status)
    return status, headers, body
  end
end

--[[ GET /healthz of a coordinator or an agent: 200 {"status":"healthy"}
when every perspective can observe, 200 "degraded" with the ones that
cannot (and why) while validations can still be served, 503 "unavailable"
(with Retry-After) when they cannot. ]]
function M.healthz(only)
  local health = require "mpic.service.health"
  local status, out = health.summary(nil, only)
  local doc = { status = status }
  if #out > 0 then
    doc.unhealthy = {}
    for i, o in ipairs(out) do
      doc.unhealthy[i] = { perspective_code = o.id, reason = o.reason }
    end
    doc.reason = string_format("%s: %s", out[1].id, tostring(out[1].reason))
  end
  if status == "unavailable" then
    local cfg = require("mpic.perspectives").config()
    local s = cfg and health.settings(cfg)
    return 503,
      {
        ["Content-Type"] = "application/json",
        ["Retry-After"] = tostring(s and math.max(1, math.ceil(s.interval_ms / 1000)) or 10),
      },
      encode(doc)
  end
  return 200, JSON, encode(doc)
end

--[[ The health loop of serve and agent (mpic.service.health.run): canary probes
of every perspective, changes logged with their cause, the outcome of
every probe in the metrics. interval_ms overrides health.interval_s; only
(a set of ids) limits the probes (an agent probes its own perspective). ]]
function M.start_health(interval_ms, only)
  local perspectives = require "mpic.perspectives"
  local metrics = require "mpic.service.metrics"
  perspectives.on_health_change = function(id, healthy, why)
    log("perspective %s is %s: %s", id, healthy and "healthy" or "unhealthy", why)
  end
  return mpic.spawn(require("mpic.service.health").run, interval_ms, function(p, ok, ms, _, h)
    metrics.perspective_health(p.id, h.status, h.last_error, ms)
    if p.agent then metrics.agent_health(p.id, ok, ms) end
  end, only)
end

local USAGE = "usage: mpic serve --config FILE --listen ADDR:PORT [--tls-cert F --tls-key F] [--client-ca F]\n"
  .. "                  [--token T] [--max-inflight N] [--max-body BYTES] [--health-interval S]\n"
  .. "                  [--max-connections N] [--max-connections-per-ip N] [--header-timeout S]\n"
  .. "                  [--workers N]"

--[[ The connection guards of `serve` and `agent` from their options:
--max-connections (open connections), --max-connections-per-ip (from one
client address), --header-timeout (seconds from accept to a whole request,
TLS handshake included). Returns the server.listen fields, or nil, message. ]]
function M.listen_limits(opts)
  local out = { health_path = "/healthz" }
  for opt, f in pairs({
    ["max-connections"] = { "max_connections", 1000000 },
    ["max-connections-per-ip"] = { "max_connections_per_address", 1000000 },
    ["header-timeout"] = { "header_timeout_s", 3600 },
  }) do
    local field, max, v = f[1], f[2], opts[opt]
    if v ~= nil then
      local n = tonumber(v)
      if not n or n ~= math.floor(n) or n < 1 or n > max then
        return nil, string_format("--%s must be a whole number from 1 to %d, not %s", opt, max, tostring(v))
      end
      out[field] = math.tointeger(n)
    end
  end
  return out
end

-- The options `serve` and `agent` share (a listener, its TLS and limits).
local LISTENER_OPTIONS = {
  config = "value",
  listen = "value",
  ["tls-cert"] = "value",
  ["tls-key"] = "value",
  ["client-ca"] = "value",
  ["max-inflight"] = "value",
  ["max-body"] = "value",
  ["health-interval"] = "value",
  ["drain-ms"] = "value",
  ["max-connections"] = "value",
  ["max-connections-per-ip"] = "value",
  ["header-timeout"] = "value",
}

--[[ The command line of a listening command (`mpic serve`, `mpic agent`):
the shared options plus extra, --workers, the listener's limits and its
address. Returns {opts, nworkers, wk, limits, addr, port}, or nil after
writing "mpic CMD: why" and usage to stderr. ]]
function M.listener_args(cmd, args, extra, usage)
  local workers = require "mpic.service.workers"
  local spec = {}
  for k, v in pairs(LISTENER_OPTIONS) do
    spec[k] = v
  end
  for k, v in pairs(extra) do
    spec[k] = v
  end
  local function bad(why)
    io_stderr:write("mpic ", cmd, ": ", tostring(why), "\n", usage, "\n")
    return nil
  end
  local opts, err = require("mpic.args").parse(args, workers.options(spec), 2)
  if not opts then return bad(err) end
  local nworkers, nerr = workers.count(opts.workers)
  local wk, werr = workers.worker_of(opts)
  if not nworkers or werr then return bad(nerr or werr) end
  local limits, lerr = M.listen_limits(opts)
  if not limits then return bad(lerr) end
  local addr, port = M.parse_listen(opts.listen)
  if not addr then return bad(port) end
  return { opts = opts, nworkers = nworkers, wk = wk, limits = limits, addr = addr, port = port }
end

function M.main(args)
  local a = M.listener_args("serve", args, { token = "value" }, USAGE)
  if not a then return 2 end
  local opts, nworkers, wk, limits, addr, port = a.opts, a.nworkers, a.wk, a.limits, a.addr, a.port
  local workers = require "mpic.service.workers"
  if (opts["tls-cert"] == nil) ~= (opts["tls-key"] == nil) or (opts["client-ca"] and not opts["tls-cert"]) then
    io_stderr:write("mpic serve: --tls-cert and --tls-key go together; --client-ca needs them\n")
    return 2
  end
  if not wk and nworkers > 1 then -- the master of N workers (mpic.service.workers)
    return workers.supervise({
      command = "serve",
      args = args,
      n = nworkers,
      address = addr,
      port = port,
      drain_ms = tonumber(opts["drain-ms"]) or 30000,
      log = log,
    })
  end
  -- worker k > 0 writes its own audit chain, PATH.wk (reloads too)
  require("mpic.config").audit_suffix = wk and workers.audit_suffix(wk.index) or nil
  local path = opts.config or "perspectives.yaml"
  local cfg, cerr = mpic.load_config(path)
  if not cfg then
    io_stderr:write(cerr, "\n")
    return 2
  end
  local ctx, xerr = require("mpic.orchestrator").context()
  if not ctx then
    io_stderr:write(tostring(xerr), "\n")
    return 2
  end
  if opts.token == nil then opts.token = os.getenv("MPIC_API_TOKEN") end
  local dnssec = require "mpic.dnssec_check"
  local dok, dmsg = dnssec.prove(cfg, "start")
  if not dok then
    io_stderr:write("mpic serve: refusing to start: ", tostring(dmsg), "\n")
    return 2
  end
  log("%s", dmsg)
  -- the proof again with every health probe of the primary (a failure: 503 until one passes)
  require("mpic.service.health").primary_proof = function(probe, c, budget_ms)
    return dnssec.periodic(probe, c, budget_ms, log)
  end

  local tls
  if opts["tls-cert"] then
    tls = {
      cert = opts["tls-cert"],
      key = opts["tls-key"],
      client_ca = opts["client-ca"],
      require_client_cert = opts["client-ca"] ~= nil,
    }
  end
  limits.address, limits.port, limits.tls = addr, port, tls
  limits.max_inflight = tonumber(opts["max-inflight"]) or 1000
  -- 256 KiB: the largest request the request limits allow is far smaller,
  -- and decoding a hostile body costs about 100 times its size at peak
  limits.max_body = tonumber(opts["max-body"]) or 262144
  limits.fd = wk and wk.fd
  local srv, kind, detail = server.listen(limits)
  if not srv then
    io_stderr:write("mpic serve: ", tostring(kind), ": ", tostring(detail), "\n")
    return 2
  end
  log(
    "mpic serve: %s, %d perspectives, listening on %s:%d%s%s",
    cfg.file,
    #cfg.perspectives,
    addr,
    srv:port(),
    tls and " (TLS)" or "",
    wk and string_format(" (worker %d of %d)", wk.index, nworkers) or ""
  )
  if wk then require("mpic.service.metrics").share(wk.dir, "w" .. wk.index) end

  local metrics = require "mpic.service.metrics"
  M.watch_signals(srv, function()
    local ncfg, rerr = reload(path)
    metrics.reload(ncfg ~= nil)
    if ncfg then
      log("SIGHUP: reloaded %s", path)
    else
      log("SIGHUP: reload refused, keeping the running configuration: %s", tostring(rerr))
    end
  end)
  local hi = tonumber(opts["health-interval"])
  M.start_health(hi and hi * 1000 or nil)
  M.run_loop(srv, coordinator_handler(opts), { drain_ms = tonumber(opts["drain-ms"]) or 30000 })
  srv:close()
  require("mpic.service.metrics").share(nil)
  log("mpic serve: stopped")
  return 0
end

return M
