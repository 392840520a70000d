-- mpic.service.agent_client: the coordinator's side of the channel to a remote
-- perspective's agent. check() POSTs the Open MPIC checker body to
-- <agent.url>/dcv or /caa over mutual TLS (client certificate agent.cert /
-- agent.key, the agent verified against agent.ca only), within the deadline,
-- and parses the check_response whatever the HTTP status (REFERENCE §8.4).
-- A transport failure, a timeout, a body that is not a check_response, or an
-- answer from another perspective (perspective_code / rir differ from the
-- configuration: the identity check of §1.5) is a failed, not completed
-- check with mpic_error:coordinator:remote_check. So is an answer outside
-- the strict schema of parse() (fields, error types from the closed
-- vocabulary of mpic.error_types, bounded sizes): one lying agent fails its
-- own check and nothing more.
local mpic = require "mpic"
local util = require "mpic.core.util"
local http = require "mpic.core.http"
local bounds = require "mpic.bounds"
local error_types = require "mpic.error_types"
local remote = require "mpic.remote"

local M = {}
local type, tostring, ipairs, pairs, math_type, getmetatable = type, tostring, ipairs, pairs, math.type, getmetatable
local string_format = string.format
local clip = bounds.clip

M.MAX_ANSWER_BYTES = 1024 * 1024

--[[ What an agent's answer may hold (REFERENCE §8.2 check_response, plus the
agent's perspective_code, rir and trace_identifier). details is level 1 of
its nesting: an HTTP check's response_history entries are level 3, their
fields level 4. ]]
M.ANSWER_LIMITS = {
  errors = 16, -- entries of errors
  error_message = 4096, -- bytes of one error_message
  trace_identifier = 512,
  details = { depth = 4, nodes = 4096, string = 65536, key = 128 },
}
local AL = M.ANSWER_LIMITS
local ANSWER_FIELDS = {
  check_type = true,
  check_passed = true,
  check_completed = true,
  timestamp_ns = true,
  errors = true,
  details = true,
  perspective_code = true,
  rir = true,
  trace_identifier = true,
  signature = true, -- mpic.evidence: {alg, key_id, value}
}
local ERROR_FIELDS = { error_type = true, error_message = true }

local function failure(check_type, fmt, ...)
  return error_types.failure(
    "mpic_error:coordinator:remote_check",
    "The remote check failed to complete: " .. string_format(fmt, ...),
    check_type
  )
end

local function canon_rir(r) return type(r) == "string" and require("mpic.config").rir(r) or nil end

local function request_opts(p, timeout_ms, body)
  local a = p.agent
  return {
    method = body and "POST" or "GET",
    body = body,
    headers = body and { ["Content-Type"] = "application/json" } or nil,
    ca = a.ca,
    cert = a.cert,
    key = a.key,
    pinned_key = a.pinned_key,
    verify_tls = true,
    keepalive = true,
    connect_ip = a.address,
    system_resolver = a.address == nil,
    timeout_ms = timeout_ms,
    connect_timeout_ms = timeout_ms < 5000 and timeout_ms or 5000,
    max_bytes = M.MAX_ANSWER_BYTES,
  }
end

local function url_for(p, path) return (p.agent.url:gsub("/+$", "")) .. path end

--- The checker body for one request (mpic.remote.body: the domain binds a
--- local perspective's statement to the same bytes).
M.body = remote.body

local function is_null(v) return v == nil or v == util.null end
local function is_array(t) return type(t) == "table" and getmetatable(t) == util.array_mt end

-- The first key of t outside fields, or nil.
local function stray_key(t, fields)
  for k in pairs(t) do
    if not fields[k] then return k end
  end
  return nil
end

-- The answer's errors as {error_type, error_message} entries, or nil and why.
local function answer_errors(errors)
  if is_null(errors) then return {} end
  if not is_array(errors) then return nil, "errors is not a list" end
  if #errors > AL.errors then return nil, string_format("errors has more than %d entries", AL.errors) end
  local clean = {}
  for i, e in ipairs(errors) do
    if type(e) ~= "table" or is_array(e) then return nil, "an errors entry is not an object" end
    local k = stray_key(e, ERROR_FIELDS)
    if k then return nil, "an errors entry has an unknown field " .. clip(k) end
    if not error_types.checker[e.error_type] then return nil, "unknown error_type " .. clip(e.error_type) end
    local msg = e.error_message
    if not is_null(msg) and type(msg) ~= "string" then return nil, "an error_message is not a string" end
    if type(msg) == "string" and #msg > AL.error_message then
      return nil, string_format("an error_message is %d bytes long, more than %d", #msg, AL.error_message)
    end
    clean[i] = { error_type = e.error_type, error_message = is_null(msg) and util.null or msg }
  end
  return clean
end

-- The answer's fields other than the verdict and identity, or nil and why.
local function answer_schema(doc)
  local k = stray_key(doc, ANSWER_FIELDS)
  if k then return nil, "unknown field " .. clip(k) end
  local errors, why = answer_errors(doc.errors)
  if not errors then return nil, why end
  local details = doc.details
  if is_null(details) then
    details = {}
  elseif type(details) ~= "table" or is_array(details) then
    return nil, "details is not an object"
  else
    local good, dwhy = bounds.check(details, AL.details, "details")
    if not good then return nil, dwhy end
  end
  if not is_null(doc.timestamp_ns) and math_type(doc.timestamp_ns) ~= "integer" then
    return nil, "timestamp_ns is not an integer"
  end
  local tr = doc.trace_identifier
  if not is_null(tr) and (type(tr) ~= "string" or #tr > AL.trace_identifier) then
    return nil, "trace_identifier is not a string of at most " .. AL.trace_identifier .. " bytes"
  end
  if not is_null(doc.signature) then
    local ok, swhy = require("mpic.evidence").signature_shape(doc.signature)
    if not ok then return nil, swhy end
  end
  return errors, details
end

-- The agent's configured public keys ({[key id] = pub}), loaded once per
-- perspective record; nil when none are configured.
local key_cache = setmetatable({}, { __mode = "k" })
local function agent_keys(p)
  local list = p.agent and p.agent.public_keys
  if not list or #list == 0 then return nil end
  local keys = key_cache[p]
  if not keys then
    local err
    keys, err = require("mpic.evidence").load_public(list)
    if not keys then return nil, err end
    key_cache[p] = keys
  end
  return keys
end

local function sig_failure(check_type, fmt, ...)
  return error_types.failure(
    "mpic_error:coordinator:signature",
    "The perspective's signature does not hold: " .. string_format(fmt, ...),
    check_type
  )
end

-- With the agent's public keys configured, the answer must carry a
-- signature over the statement built here from the request sent (sent: the
-- decoded checker body) and the answer: the result, its time and evidence.
local function check_signature(p, check_type, doc, result, sent)
  local keys, kerr = agent_keys(p)
  if kerr then return sig_failure(check_type, "%s", kerr) end
  if not keys then return result end -- no key configured: unsigned (audit verify says so)
  local ev = require "mpic.evidence"
  if is_null(doc.signature) then return sig_failure(check_type, "the answer carries no signature") end
  if type(sent) == "string" then sent = util.json_decode(sent) end -- decoded only when a key needs it
  if type(sent) ~= "table" then return sig_failure(check_type, "no request to bind the signature to") end
  local t = doc.timestamp_ns
  if math_type(t) ~= "integer" then return sig_failure(check_type, "the answer carries no timestamp_ns") end
  local skew = t - util.time_ns()
  if skew > ev.MAX_SKEW_NS or -skew > ev.MAX_SKEW_NS then
    return sig_failure(check_type, "the signed time is %d s away from the coordinator's clock", skew // 1000000000)
  end
  local st, serr = ev.statement(
    ev.request_of(check_type, sent),
    p,
    { passed = doc.check_passed, completed = doc.check_completed, errors = result.errors, details = doc.details },
    t
  )
  if not st then return sig_failure(check_type, "%s", serr) end
  local ok, why = ev.verify(keys, st, doc.signature)
  if not ok then return sig_failure(check_type, "%s", why) end
  result.statement, result.signature = st, doc.signature
  return result
end

--- Turn an agent's answer into a check result, or a failure (anything
--- outside the check_response schema and ANSWER_LIMITS is one). sent: the
--- checker body sent (decoded, or its JSON text), which a signature must be
--- bound to.
function M.parse(p, check_type, res, sent)
  local doc = util.json_decode(res.body or "")
  if type(doc) ~= "table" or is_array(doc) then
    return failure(check_type, "the agent's answer (HTTP %d) is not a JSON object", res.status or 0)
  end
  if type(doc.check_passed) ~= "boolean" or type(doc.check_completed) ~= "boolean" then
    local why = type(doc.error) == "string" and (": " .. clip(doc.error, 300)) or ""
    return failure(check_type, "the agent's answer (HTTP %d) is not a check_response%s", res.status or 0, why)
  end
  if doc.perspective_code ~= p.id then
    return failure(check_type, "the answer comes from perspective %s, not %s", clip(doc.perspective_code), p.id)
  end
  if canon_rir(doc.rir) ~= p.rir then
    return failure(check_type, "the agent reports RIR %s where %s is configured for %s", clip(doc.rir), p.rir, p.id)
  end
  if doc.check_type ~= check_type then
    return failure(check_type, "the agent answered a %s check for a %s request", clip(doc.check_type), check_type)
  end
  local errors, details = answer_schema(doc)
  if not errors then return failure(check_type, "the agent's answer breaks the check_response schema: %s", details) end
  return check_signature(p, check_type, doc, {
    passed = doc.check_passed and doc.check_completed,
    completed = doc.check_completed,
    errors = errors,
    details = details,
    check_type = check_type,
    timestamp_ns = math_type(doc.timestamp_ns) == "integer" and doc.timestamp_ns or nil,
  }, sent)
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
  -- bounded by the request's own timeout (the whole transfer, connection
  -- included), so it runs in the caller's task: no child task per request
  local ok, res, kind, detail = pcall(http.request, url, request_opts(p, timeout, body))
  if not ok then return failure(ct, "%s", tostring(res)) end
  if not res then
    local f = failure(ct, "%s: %s", tostring(kind), tostring(detail))
    f.agent_unreachable = true -- asks for an early health probe (mpic.perspectives.suspect)
    return f
  end
  require("mpic.service.metrics").agent_request(p.id, res.reused)
  return M.parse(p, ct, res, body)
end

--- healthy(p, timeout_ms) -> true | false, reason
function M.healthy(p, timeout_ms)
  local ok, res, kind, detail =
    pcall(mpic.with_timeout, timeout_ms + 250, http.request, url_for(p, "/healthz"), request_opts(p, timeout_ms, nil))
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
