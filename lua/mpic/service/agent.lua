-- mpic.service.agent: a remote perspective (`mpic agent`). Serves the Open MPIC
-- checker API (REFERENCE §8.4) over HTTPS with mutual TLS: a client without a
-- certificate issued by the configured CA never reaches a handler.
--   POST /dcv  {domain_or_ip_target, dcv_check_parameters, trace_identifier}
--   POST /caa  {domain_or_ip_target, caa_check_parameters, trace_identifier}
--     -> check_response (+ perspective_code, rir, trace_identifier):
--        200 when errors is empty, else 500 with the same body
--   GET /healthz -> 200 {"status":"healthy"} while the canary probes of its
--     perspective answer (mpic.service.health), else 503 {"status":"unavailable",
--     "reason":...}; the coordinator judges the perspective's health by it
-- Bad JSON or a malformed body: 400 {"error": reason}. The checks run the
-- same challenge scripts as a local perspective, with the agent's own local
-- perspective (its resolvers and addresses) from its configuration file.
-- --workers N (default: the CPUs): N processes behind one master (mpic.service.workers),
-- each probing its perspective's health itself.
local mpic = require "mpic"
local util = require "mpic.core.util"
local server = require "mpic.core.server"
local serve = require "mpic.service.serve"

local M = {}
local io_stderr, type, tostring, ipairs, tonumber = io.stderr, type, tostring, ipairs, tonumber
local table_concat = table.concat
local string_format = string.format

local JSON = { ["Content-Type"] = "application/json" }

local function is_null(v) return v == nil or v == util.null end

local function error_result(ch, check_type, kind, msg)
  local prefix = check_type == "caa" and "mpic_error:caa_checker:" or "mpic_error:dcv_checker:"
  return {
    passed = false,
    completed = false,
    details = { validation_method = ch and ch.name or nil },
    errors = { { error_type = prefix .. kind, error_message = msg } },
  }
end

--[[ Run one checker request. env = {cfg, registry, perspective (config entry)}.
Returns status, body table. ]]
function M.check(env, check_type, body_text)
  local challenges = require "mpic.challenges"
  local target_mod = require "mpic.target"
  local perspectives = require "mpic.perspectives"
  local req, jerr = util.json_decode(body_text)
  if req == nil then return 400, { error = "the body is not valid JSON: " .. tostring(jerr) } end
  if type(req) ~= "table" then return 400, { error = "the body must be a JSON object" } end
  if type(req.domain_or_ip_target) ~= "string" or req.domain_or_ip_target == "" then
    return 400, { error = "domain_or_ip_target must be a non-empty string" }
  end
  if not is_null(req.trace_identifier) and type(req.trace_identifier) ~= "string" then
    return 400, { error = "trace_identifier must be a string or null" }
  end
  local pkey = check_type .. "_check_parameters"
  local other = (check_type == "dcv" and "caa" or "dcv") .. "_check_parameters"
  if not is_null(req[other]) then
    return 400, { error = other .. " does not belong in a " .. check_type .. " check" }
  end
  local params = req[pkey]
  local ch
  if check_type == "dcv" then
    if type(params) ~= "table" then return 400, { error = "dcv_check_parameters must be an object" } end
    ch = env.registry.by_name[params.validation_method]
    if type(params.validation_method) ~= "string" or not ch or ch.check_type ~= "dcv" then
      return 400, { error = "unknown validation_method " .. tostring(params.validation_method) }
    end
  else
    if is_null(params) then params = {} end
    if type(params) ~= "table" then return 400, { error = "caa_check_parameters must be an object or null" } end
    ch = env.registry.by_name["caa"]
    if not ch then return 400, { error = "no CAA checker is loaded" } end
  end
  -- the coordinator's own parameter rules (schema, limits, CAA method label)
  local plain, issues = require("mpic.request").check_params(ch, params, env.registry)
  if #issues > 0 then
    local msgs = {}
    for i, is in ipairs(issues) do
      msgs[i] = is.message
    end
    return 400, { error = "invalid parameters: " .. table_concat(msgs, "; "), validation_issues = issues }
  end
  local target, _, why =
    target_mod.normalise(req.domain_or_ip_target, { allow_reserved = env.cfg.network.allow_reserved_ips })
  if target then
    target, _, why = target_mod.for_method(target, ch)
  end
  if not target then return 400, { error = "invalid target: " .. tostring(why) } end

  local p = env.perspective
  local deadline = env.cfg.defaults.timeout_ms
  local res, kind, msg = mpic.with_timeout(
    deadline,
    function() return challenges.run(ch, target, plain, perspectives.probe(p.id)) end
  )
  if not res then
    res = error_result(
      ch,
      check_type,
      "lookup",
      kind == "timeout" and string_format("check did not finish within %d ms", deadline) or tostring(msg)
    )
  end
  local errors = res.errors
  if type(errors) ~= "table" or #errors == 0 then errors = nil end
  local out = {
    check_type = check_type,
    check_passed = res.passed == true,
    check_completed = res.completed == true,
    timestamp_ns = util.time_ns(),
    errors = errors or util.null,
    details = res.details or {},
    perspective_code = p.id,
    rir = p.rir,
    trace_identifier = not is_null(req.trace_identifier) and req.trace_identifier or util.null,
  }
  if env.signer then -- the answer's signature over request, result, time and evidence (mpic.evidence)
    local ev = require "mpic.evidence"
    local st, serr = ev.statement(
      ev.request_of(check_type, req),
      p,
      { passed = out.check_passed, completed = out.check_completed, errors = errors, details = out.details },
      out.timestamp_ns
    )
    local sig = st and ev.sign(env.signer, st)
    if not sig then return 500, { error = "cannot sign the answer: " .. tostring(serr or "encoding") } end
    out.signature = sig
  end
  return errors and 500 or 200, out
end

local function handler(env)
  return function(req)
    local path, method = req.path, req.method
    if path == "/healthz" and (method == "GET" or method == "HEAD") then
      -- from the canary probes of this agent's own perspective (mpic.service.health)
      return serve.healthz({ [env.perspective.id] = true })
    end
    if path == "/dcv" or path == "/caa" then
      if method ~= "POST" then
        return 405, { ["Content-Type"] = "application/json", Allow = "POST" }, serve.encode({ error = "use POST" })
      end
      local status, body = M.check(env, path:sub(2), req.body)
      return status, JSON, serve.encode(body)
    end
    if path == "/configz" and method == "GET" then
      local paths = package.loaded["mpic.paths"]
      return 200,
        JSON,
        serve.encode({
          app_version = paths and paths.version or "?",
          perspective_code = env.perspective.id,
          rir = env.perspective.rir,
          timeout_ms = env.cfg.defaults.timeout_ms,
          caa_domains = env.cfg.issuer.caa_domains,
        })
    end
    return 404, JSON, serve.encode({ error = "not found: " .. tostring(path) })
  end
end

local USAGE = "usage: mpic agent --config FILE --listen ADDR:PORT --perspective ID\n"
  .. "                  --tls-cert F --tls-key F --client-ca F [--max-inflight N] [--max-body BYTES]\n"
  .. "                  [--health-interval S] [--max-connections N] [--max-connections-per-ip N]\n"
  .. "                  [--header-timeout S] [--signing-key F] [--workers N]"

function M.main(args)
  local a = serve.listener_args("agent", args, { perspective = "value", ["signing-key"] = "value" }, USAGE)
  if not a then return 2 end
  local opts, nworkers, wk, limits, addr, port = a.opts, a.nworkers, a.wk, a.limits, a.addr, a.port
  local workers = require "mpic.service.workers"
  if not opts.perspective then
    io_stderr:write("mpic agent: --perspective ID is required\n")
    return 2
  end
  if not wk and nworkers > 1 then -- the master of N workers (mpic.service.workers)
    return workers.supervise({
      command = "agent",
      args = args,
      n = nworkers,
      address = addr,
      port = port,
      drain_ms = tonumber(opts["drain-ms"]) or 15000,
      log = serve.log,
    })
  end
  local cfg, cerr = mpic.load_config(opts.config or "perspectives.yaml")
  if not cfg then
    io_stderr:write(cerr, "\n")
    return 2
  end
  local as = cfg.agent_server or {}
  opts["tls-cert"] = opts["tls-cert"] or as.cert
  opts["tls-key"] = opts["tls-key"] or as.key
  opts["client-ca"] = opts["client-ca"] or as.client_ca
  local signer
  if opts["signing-key"] or as.signing_key then
    local serr
    signer, serr = require("mpic.evidence").load_private(opts["signing-key"] or as.signing_key)
    if not signer then
      io_stderr:write("mpic agent: ", serr, "\n")
      return 2
    end
  end
  if not (opts["tls-cert"] and opts["tls-key"] and opts["client-ca"]) then
    io_stderr:write(
      "mpic agent: mutual TLS is required: give --tls-cert, --tls-key and --client-ca ",
      "(or agent_server: {cert, key, client_ca} in the config)\n",
      USAGE,
      "\n"
    )
    return 2
  end
  local p = require("mpic.perspectives").get(opts.perspective)
  if not p then
    local ids = {}
    for _, q in ipairs(cfg.perspectives) do
      if not q.agent then ids[#ids + 1] = q.id end
    end
    io_stderr:write(
      "mpic agent: no perspective ",
      opts.perspective,
      " in ",
      cfg.file,
      " (local perspectives: ",
      table_concat(ids, ", "),
      ")\n"
    )
    return 2
  end
  if p.agent then
    io_stderr:write("mpic agent: perspective ", p.id, " is remote in ", cfg.file, "; an agent serves a local one\n")
    return 2
  end
  local challenges = require "mpic.challenges"
  local registry, rerr = challenges.load_configured(cfg)
  if not registry then
    io_stderr:write("mpic agent: ", rerr, "\n")
    return 2
  end
  limits.address, limits.port = addr, port
  limits.tls =
    { cert = opts["tls-cert"], key = opts["tls-key"], client_ca = opts["client-ca"], require_client_cert = true }
  limits.max_inflight = tonumber(opts["max-inflight"]) or 1000
  limits.max_body = tonumber(opts["max-body"]) or 65536
  limits.fd = wk and wk.fd
  local srv, kind, detail = server.listen(limits)
  if not srv then
    io_stderr:write("mpic agent: ", tostring(kind), ": ", tostring(detail), "\n")
    return 2
  end
  serve.log(
    "mpic agent: perspective %s (%s), listening on %s:%d%s",
    p.id,
    p.rir,
    addr,
    srv:port(),
    wk and string_format(" (worker %d of %d)", wk.index, nworkers) or ""
  )
  serve.watch_signals(srv, nil)
  local hi = tonumber(opts["health-interval"])
  serve.start_health(hi and hi * 1000 or nil, { [p.id] = true })
  serve.run_loop(
    srv,
    handler({ cfg = cfg, registry = registry, perspective = p, signer = signer }),
    { drain_ms = tonumber(opts["drain-ms"]) or 15000 }
  )
  srv:close()
  serve.log("mpic agent: stopped")
  return 0
end

return M
