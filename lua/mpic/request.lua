-- mpic.request: validation of an Open MPIC request (REFERENCE §8.1, §8.3).
-- Returns a normalised request, or nil plus the list of issues
-- {issue_type, message} that becomes a 400 response.
local target_mod = require "mpic.target"
local challenges = require "mpic.challenges"
local quorum = require "mpic.quorum"

local M = {}
local type, pairs, ipairs, tostring, math_type = type, pairs, ipairs, tostring, math.type
local string_format = string.format

M.ABSOLUTE_MAX_ATTEMPTS = 3

local TOP_FIELDS = {
  check_type = true, domain_or_ip_target = true, trace_identifier = true,
  orchestration_parameters = true, caa_check_parameters = true, dcv_check_parameters = true,
}
local ORCH_FIELDS = { perspective_count = true, quorum_count = true, max_attempts = true,
                      cohort_for_single_attempt = true }

local function is_null(v) return v == nil or v == require("mpic.core.util").null end

local function issue(list, kind, fmt, ...)
  list[#list + 1] = { issue_type = kind, message = string_format(fmt, ...) }
end

--- Open MPIC quorum rule: n-1 <= q <= n <= 5, or 4 <= n-2 <= q <= n.
function M.quorum_ok(n, q)
  return (n - 1 <= q and q <= n and n <= 5) or (4 <= n - 2 and n - 2 <= q and q <= n)
end

local function opt_int(orch, key, issues, kind)
  local v = orch[key]
  if is_null(v) then return nil end
  if math_type(v) ~= "integer" then
    issue(issues, kind, "orchestration_parameters.%s must be an integer", key)
    return nil
  end
  return v
end

--[[
ctx = { cfg = config, registry = challenge registry, remotes = number of
remote perspectives, date = "YYYY-MM-DD", now = unix seconds,
min_remotes = number (the policy's minimum for the date) }
]]
function M.validate(req, ctx)
  local issues = {}
  if type(req) ~= "table" then
    issue(issues, "invalid-request", "the request body must be a JSON object")
    return nil, issues
  end
  for k in pairs(req) do
    if not TOP_FIELDS[k] then issue(issues, "invalid-request", "unknown field %s", tostring(k)) end
  end
  local out = { trace_identifier = not is_null(req.trace_identifier) and req.trace_identifier or nil }
  if out.trace_identifier ~= nil and type(out.trace_identifier) ~= "string" then
    issue(issues, "invalid-request", "trace_identifier must be a string or null")
  end

  local ct = req.check_type
  if ct ~= "caa" and ct ~= "dcv" then
    issue(issues, "invalid-check-type", "check_type must be \"caa\" or \"dcv\", got %s", tostring(ct))
    return nil, issues
  end
  out.check_type = ct

  -- parameters and method
  local params, ch
  if ct == "dcv" then
    if not is_null(req.caa_check_parameters) then
      issue(issues, "invalid-request", "caa_check_parameters given for a dcv check")
    end
    params = req.dcv_check_parameters
    if type(params) ~= "table" then
      issue(issues, "invalid-request", "dcv_check_parameters is required for a dcv check")
      return nil, issues
    end
    local method = params.validation_method
    ch = ctx.registry.by_name[method]
    if type(method) ~= "string" or not ch or ch.check_type ~= "dcv" then
      issue(issues, "invalid-validation-method", "unknown validation_method %s", tostring(method))
      return nil, issues
    end
  else
    if not is_null(req.dcv_check_parameters) then
      issue(issues, "invalid-request", "dcv_check_parameters given for a caa check")
    end
    params = is_null(req.caa_check_parameters) and {} or req.caa_check_parameters
    if type(params) ~= "table" then
      issue(issues, "invalid-request", "caa_check_parameters must be an object or null")
      return nil, issues
    end
    ch = ctx.registry.by_name["caa"]
    if not ch then
      issue(issues, "invalid-request", "no CAA checker is loaded")
      return nil, issues
    end
  end
  out.challenge = ch
  out.method = ch.name
  local plain = {}
  for k, v in pairs(params) do
    if k ~= "validation_method" and not is_null(v) then plain[k] = v end
  end
  for _, i in ipairs(challenges.validate_params(ch, plain)) do issues[#issues + 1] = i end
  out.params = plain
  out.echo_params = params

  if ctx.cfg.defaults.enforce_sunset and challenges.is_retired(ch, ctx.now) then
    issue(issues, "validation-method-retired", "%s may not be used after %s (BR %s)", ch.name,
      ch.sunset, ch.br_section or "?")
  end

  -- target
  local t = req.domain_or_ip_target
  local target, _, why = target_mod.normalise(t, { allow_reserved = ctx.cfg.network.allow_reserved_ips })
  if target then target, _, why = target_mod.for_method(target, ch) end
  if not target then
    issue(issues, "invalid-target", "%s", why or "invalid target")
  end
  out.target = target
  out.target_text = t

  -- orchestration parameters
  local orch = is_null(req.orchestration_parameters) and {} or req.orchestration_parameters
  if type(orch) ~= "table" then
    issue(issues, "invalid-request", "orchestration_parameters must be an object or null")
    orch = {}
  end
  for k in pairs(orch) do
    if not ORCH_FIELDS[k] then issue(issues, "invalid-request", "unknown orchestration parameter %s", tostring(k)) end
  end
  local n = opt_int(orch, "perspective_count", issues, "invalid-perspective-count")
    or ctx.cfg.defaults.perspective_count
  if n < 2 or n > ctx.remotes then
    issue(issues, "invalid-perspective-count",
      "perspective_count %d must be between 2 and the %d configured remote perspectives", n, ctx.remotes)
  elseif ctx.min_remotes and n < ctx.min_remotes then
    issue(issues, "invalid-perspective-count",
      "perspective_count %d is below the BR minimum of %d remote perspectives on %s", n, ctx.min_remotes, ctx.date)
  end
  local q = opt_int(orch, "quorum_count", issues, "invalid-quorum-count")
  if q ~= nil and not M.quorum_ok(n, q) then
    issue(issues, "invalid-quorum-count",
      "quorum_count %d is not allowed with %d perspectives (n-1 <= q <= n <= 5, or 4 <= n-2 <= q <= n)", q, n)
  end
  local attempts = opt_int(orch, "max_attempts", issues, "invalid-request")
  if attempts == nil then attempts = ctx.cfg.defaults.max_attempts
  elseif attempts <= 0 then attempts = 1 end
  if attempts > M.ABSOLUTE_MAX_ATTEMPTS then attempts = M.ABSOLUTE_MAX_ATTEMPTS end
  local cohort = opt_int(orch, "cohort_for_single_attempt", issues, "invalid-request")
  if cohort ~= nil then
    if cohort < 1 then issue(issues, "invalid-request", "cohort_for_single_attempt must be >= 1") end
    attempts = 1
  end
  out.perspective_count, out.quorum_count, out.max_attempts, out.cohort = n, q, attempts, cohort
  out.echo_orchestration = not is_null(req.orchestration_parameters) and req.orchestration_parameters or nil

  if #issues > 0 then return nil, issues end
  -- only now is n known to be a valid perspective count (quorum raises otherwise)
  out.required = q or quorum.effective(n, nil)
  return out
end

return M
