-- mpic.agent_client: the coordinator's side of the channel to a remote
-- perspective's agent. check() POSTs the Open MPIC checker body to
-- <agent.url>/dcv or /caa over mutual TLS (client certificate agent.cert /
-- agent.key, the agent verified against agent.ca only), within the deadline,
-- and parses the check_response whatever the HTTP status (REFERENCE §8.4).
-- A transport failure, a timeout, a body that is not a check_response, or an
-- answer from another perspective (perspective_code / rir differ from the
-- configuration: the identity check of §1.5) is a failed, not completed
-- check with mpic_error:coordinator:remote_check.
local mpic = require "mpic"
local util = require "mpic.core.util"
local http = require "mpic.core.http"

local M = {}
local type, tostring, ipairs, math_type = type, tostring, ipairs, math.type
local string_format = string.format

M.MAX_ANSWER_BYTES = 4 * 1024 * 1024

local function failure(check_type, fmt, ...)
  return { passed = false, completed = false, check_type = check_type, details = {},
           errors = { { error_type = "mpic_error:coordinator:remote_check",
                        error_message = "The remote check failed to complete: " .. string_format(fmt, ...) } } }
end

local function canon_rir(r)
  return type(r) == "string" and require("mpic.config").rir(r) or nil
end

local function request_opts(p, timeout_ms, body)
  local a = p.agent
  return { method = body and "POST" or "GET", body = body,
           headers = body and { ["Content-Type"] = "application/json" } or nil,
           ca = a.ca, cert = a.cert, key = a.key, pinned_key = a.pinned_key, verify_tls = true, keepalive = true,
           connect_ip = a.address, system_resolver = a.address == nil,
           timeout_ms = timeout_ms, connect_timeout_ms = timeout_ms < 5000 and timeout_ms or 5000,
           max_bytes = M.MAX_ANSWER_BYTES }
end

local function url_for(p, path)
  return (p.agent.url:gsub("/+$", "")) .. path
end

--- The checker body for one request (orchestrator's normalised request).
function M.body(req)
  local b = { domain_or_ip_target = req.target_text, trace_identifier = req.trace_identifier or util.null }
  if req.check_type == "dcv" then
    b.dcv_check_parameters = req.echo_params
  else
    b.caa_check_parameters = req.echo_params or util.null
  end
  return util.json_encode(b)
end

--- Turn an agent's answer into a check result, or a failure.
function M.parse(p, check_type, res)
  local doc = util.json_decode(res.body or "")
  if type(doc) ~= "table" then
    return failure(check_type, "the agent's answer (HTTP %d) is not JSON", res.status or 0)
  end
  if type(doc.check_passed) ~= "boolean" or type(doc.check_completed) ~= "boolean" then
    local why = type(doc.error) == "string" and (": " .. doc.error) or ""
    return failure(check_type, "the agent's answer (HTTP %d) is not a check_response%s", res.status or 0, why)
  end
  if doc.perspective_code ~= p.id then
    return failure(check_type, "the answer comes from perspective %s, not %s", tostring(doc.perspective_code), p.id)
  end
  if canon_rir(doc.rir) ~= p.rir then
    return failure(check_type, "the agent reports RIR %s where %s is configured for %s", tostring(doc.rir), p.rir, p.id)
  end
  if doc.check_type ~= check_type then
    return failure(check_type, "the agent answered a %s check for a %s request", tostring(doc.check_type), check_type)
  end
  local errors = doc.errors
  if errors == util.null or errors == nil then errors = {} end
  if type(errors) ~= "table" then return failure(check_type, "the agent's errors field is malformed") end
  local clean = {}
  for i, e in ipairs(errors) do
    if type(e) ~= "table" or type(e.error_type) ~= "string" then
      return failure(check_type, "the agent's errors field is malformed")
    end
    -- keep only the documented fields, as strings
    clean[i] = { error_type = e.error_type,
                 error_message = type(e.error_message) == "string" and e.error_message or util.null }
  end
  errors = clean
  local details = type(doc.details) == "table" and doc.details or {}
  return { passed = doc.check_passed and doc.check_completed, completed = doc.check_completed,
           errors = errors, details = details, check_type = check_type,
           timestamp_ns = math_type(doc.timestamp_ns) == "integer" and doc.timestamp_ns or nil }
end

--- check(p, req, deadline_ms) -> check result (never raises on a network outcome).
function M.check(p, req, deadline_ms)
  local ct = req.check_type
  local body, eerr = M.body(req)
  if not body then return failure(ct, "cannot encode the request: %s", tostring(eerr)) end
  local timeout = deadline_ms
  if p.agent.timeout_ms and p.agent.timeout_ms < timeout then timeout = p.agent.timeout_ms end
  if timeout < 1 then timeout = 1 end
  local url = url_for(p, "/" .. ct)
  local ok, res, kind, detail = pcall(mpic.with_timeout, timeout + 250, http.request, url,
    request_opts(p, timeout, body))
  if not ok then return failure(ct, "%s", tostring(res)) end
  if not res then
    local f = failure(ct, "%s: %s", tostring(kind), tostring(detail))
    f.agent_unreachable = true -- asks for an early health probe (mpic.health.suspect)
    return f
  end
  require("mpic.metrics").agent_request(p.id, res.reused)
  return M.parse(p, ct, res)
end

--- healthy(p, timeout_ms) -> true | false, reason
function M.healthy(p, timeout_ms)
  local ok, res, kind, detail = pcall(mpic.with_timeout, timeout_ms + 250, http.request,
    url_for(p, "/healthz"), request_opts(p, timeout_ms, nil))
  if not ok then return false, tostring(res) end
  if not res then return false, tostring(kind) .. ": " .. tostring(detail) end
  local doc = util.json_decode(res.body or "")
  if res.status ~= 200 or type(doc) ~= "table" or doc.status ~= "healthy" then
    local why = type(doc) == "table" and type(doc.reason) == "string" and (": " .. doc.reason:sub(1, 300)) or ""
    return false, "unhealthy answer (HTTP " .. tostring(res.status) .. ")" .. why
  end
  return true
end

return M
