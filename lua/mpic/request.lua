-- mpic.request: validation of an Open MPIC request (REFERENCE §8.1, §8.3).
-- Returns a normalised request, or nil plus the list of issues
-- {issue_type, message} that becomes a 400 response.
local target_mod = require "mpic.target"
local challenges = require "mpic.challenges"
local quorum = require "mpic.quorum"
local bounds = require "mpic.bounds"

local M = {}
local type, pairs, ipairs, tostring, math_type = type, pairs, ipairs, tostring, math.type
local string_format, table_sort = string.format, table.sort
local clip = bounds.clip

M.ABSOLUTE_MAX_ATTEMPTS = 3

--[[ What one request may carry (REFERENCE §8.3, SECURITY.md). Every string
that is echoed or written to the audit log is bounded, and so is every
parameter: a request's size buys a bounded amount of memory, and anything
over a limit is a 400 naming the field. ]]
M.LIMITS = {
  trace_identifier = 512, -- bytes
  target = 1024, -- bytes of domain_or_ip_target as sent (a name is at most 253 octets)
  param_keys = 16, -- keys of dcv_check_parameters / caa_check_parameters
  -- one parameter value: nesting levels (the value is level 1), values,
  -- bytes of one string, bytes of one object key
  param = { depth = 3, nodes = 64, string = 4096, key = 256 },
  params_total = 16384, -- bytes of text of all parameter values together
  named = 5, -- unknown names listed, one issue each; the rest are counted
}
local LIMITS = M.LIMITS

local TOP_FIELDS = {
  check_type = true,
  domain_or_ip_target = true,
  trace_identifier = true,
  orchestration_parameters = true,
  caa_check_parameters = true,
  dcv_check_parameters = true,
}
local ORCH_FIELDS = {
  perspective_count = true,
  quorum_count = true,
  max_attempts = true,
  cohort_for_single_attempt = true,
}

local NULL = require("mpic.core.util").null
local function is_null(v) return v == nil or v == NULL end

local function issue(list, kind, fmt, ...) list[#list + 1] = { issue_type = kind, message = string_format(fmt, ...) } end

-- One issue per unknown name (the first LIMITS.named, sorted, each clipped),
-- then one counting the rest (more: names not even collected).
local function unknown_names(list, kind, names, fmt, more)
  table_sort(names)
  for i = 1, #names do
    if i > LIMITS.named then break end
    issue(list, kind, fmt, clip(names[i]))
  end
  local rest = #names - LIMITS.named + (more or 0)
  if rest > 0 then issue(list, kind, "and %d more unknown names", rest) end
end

-- Keys of t, counting at most max + 1 of them (nil when there are more than max).
local function keys_upto(t, max)
  local out = {}
  for k in pairs(t) do
    if #out >= max then return nil end
    out[#out + 1] = k
  end
  return out
end

local function by_text(a, b)
  if type(a) == "string" and type(b) == "string" then return a < b end
  return tostring(a) < tostring(b)
end

--[[ check_params(ch, params, registry) -> plain, issues.
The parameters of a check against ch's declared schema (ch.params) and
LIMITS: unknown keys, too many keys and over-long or over-deep values are
issues. plain holds the non-null known values (for a dcv check without its
selector validation_method); for a CAA check, validation_method is kept and
given as its RFC 8657 label (mpic.caa.method_label: the declaration's
caa_method_label of a named validation method). Shared by the coordinator
and the agent. ]]
function M.check_params(ch, params, registry)
  local issues, plain = {}, {}
  local what = ch.check_type .. "_check_parameters"
  local keys = keys_upto(params, LIMITS.param_keys)
  if not keys then
    issue(issues, "invalid-parameters", "%s has more than %d keys", what, LIMITS.param_keys)
    return plain, issues
  end
  if #keys > 1 then table_sort(keys, by_text) end
  local unknown, total = {}, 0
  for _, k in ipairs(keys) do
    local v = params[k]
    if k == "validation_method" and ch.check_type == "dcv" then -- the selector, already matched
      if type(v) ~= "string" then unknown[#unknown + 1] = tostring(k) end
    elseif type(k) ~= "string" or not ch.params[k] then
      unknown[#unknown + 1] = tostring(k)
    elseif type(v) == "string" and #v <= LIMITS.param.string then -- the common case, as bounds.check would
      total = total + #v
      plain[k] = v
    elseif not is_null(v) then
      local good, why, text = bounds.check(v, LIMITS.param, "parameter " .. k)
      if not good then
        issue(issues, "invalid-parameters", "%s", why)
      else
        total = total + text
        plain[k] = v
      end
    end
  end
  unknown_names(
    issues,
    "invalid-parameters",
    unknown,
    "unknown parameter %s for " .. (ch.check_type == "dcv" and ch.name or "a caa check")
  )
  if total > LIMITS.params_total then
    issue(issues, "invalid-parameters", "the parameters hold more than %d bytes of text", LIMITS.params_total)
  end
  if #issues > 0 then return plain, issues end
  issues = challenges.validate_params(ch, plain)
  local m = plain.validation_method
  if ch.check_type == "caa" and type(m) == "string" then
    if not m:match("^[A-Za-z0-9][A-Za-z0-9%-]*$") or #m > 63 then
      issue(
        issues,
        "invalid-parameters",
        "caa_check_parameters.validation_method %s is neither a validation method nor an RFC 8657 label",
        clip(m)
      )
    else
      plain.validation_method = require("mpic.caa").method_label(m, registry)
    end
  end
  return plain, issues
end

--- Open MPIC quorum rule: n-1 <= q <= n <= 5, or 4 <= n-2 <= q <= n.
function M.quorum_ok(n, q) return (n - 1 <= q and q <= n and n <= 5) or (4 <= n - 2 and n - 2 <= q and q <= n) end

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
  local unknown, more = {}, 0
  for k in pairs(req) do
    if not TOP_FIELDS[k] then
      if #unknown < 100 then
        unknown[#unknown + 1] = tostring(k)
      else
        more = more + 1
      end
    end
  end
  unknown_names(issues, "invalid-request", unknown, "unknown field %s", more)
  local out = { trace_identifier = not is_null(req.trace_identifier) and req.trace_identifier or nil }
  if out.trace_identifier ~= nil and type(out.trace_identifier) ~= "string" then
    issue(issues, "invalid-request", "trace_identifier must be a string or null")
  elseif out.trace_identifier and #out.trace_identifier > LIMITS.trace_identifier then
    issue(
      issues,
      "invalid-request",
      "trace_identifier is %d bytes long; at most %d are allowed",
      #out.trace_identifier,
      LIMITS.trace_identifier
    )
  end
  if type(req.domain_or_ip_target) == "string" and #req.domain_or_ip_target > LIMITS.target then
    issue(
      issues,
      "invalid-target",
      "domain_or_ip_target is %d bytes long; at most %d are allowed",
      #req.domain_or_ip_target,
      LIMITS.target
    )
    return nil, issues
  end

  local ct = req.check_type
  if ct ~= "caa" and ct ~= "dcv" then
    issue(issues, "invalid-check-type", 'check_type must be "caa" or "dcv", got %s', clip(ct))
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
      local names = {}
      for _, c in ipairs(ctx.registry.list) do
        if c.check_type == "dcv" then names[#names + 1] = c.name end
      end
      table.sort(names)
      local others = #names > 24 and string_format(" and %d more", #names - 24) or ""
      issue(
        issues,
        "invalid-validation-method",
        "%s (one of: %s%s)",
        method == nil and "dcv_check_parameters.validation_method is missing"
          or ("unknown validation_method " .. clip(method)),
        table.concat(names, ", ", 1, math.min(#names, 24)),
        others
      )
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
  local plain, pissues = M.check_params(ch, params, ctx.registry)
  for _, i in ipairs(pissues) do
    issues[#issues + 1] = i
  end
  out.params = plain
  out.echo_params = params

  if ctx.cfg.defaults.enforce_sunset and challenges.is_retired(ch, ctx.now) then
    issue(
      issues,
      "validation-method-retired",
      "%s may not be used after %s (BR %s)",
      ch.name,
      ch.sunset,
      ch.br_section or "?"
    )
  end

  -- target
  local t = req.domain_or_ip_target
  local target, _, why = target_mod.normalise(t, { allow_reserved = ctx.cfg.network.allow_reserved_ips })
  if target then
    target, _, why = target_mod.for_method(target, ch)
  end
  if not target then issue(issues, "invalid-target", "%s", why or "invalid target") end
  out.target = target
  out.target_text = t

  -- orchestration parameters
  local orch = is_null(req.orchestration_parameters) and {} or req.orchestration_parameters
  if type(orch) ~= "table" then
    issue(issues, "invalid-request", "orchestration_parameters must be an object or null")
    orch = {}
  end
  local okeys = keys_upto(orch, LIMITS.param_keys)
  if not okeys then
    issue(issues, "invalid-request", "orchestration_parameters has more than %d keys", LIMITS.param_keys)
    return nil, issues
  end
  local ounknown = {}
  for _, k in ipairs(okeys) do
    if not ORCH_FIELDS[k] then ounknown[#ounknown + 1] = tostring(k) end
  end
  unknown_names(issues, "invalid-request", ounknown, "unknown orchestration parameter %s")
  local n = opt_int(orch, "perspective_count", issues, "invalid-perspective-count")
    or ctx.cfg.defaults.perspective_count
  if n < 2 or n > ctx.remotes then
    issue(
      issues,
      "invalid-perspective-count",
      "perspective_count %d must be between 2 and the %d configured remote perspectives",
      n,
      ctx.remotes
    )
  elseif ctx.min_remotes and n < ctx.min_remotes then
    issue(
      issues,
      "invalid-perspective-count",
      "perspective_count %d is below the BR minimum of %d remote perspectives on %s",
      n,
      ctx.min_remotes,
      ctx.date
    )
  end
  local q = opt_int(orch, "quorum_count", issues, "invalid-quorum-count")
  if q ~= nil and not M.quorum_ok(n, q) then
    issue(
      issues,
      "invalid-quorum-count",
      "quorum_count %d is not allowed with %d perspectives (n-1 <= q <= n <= 5, or 4 <= n-2 <= q <= n)",
      q,
      n
    )
  end
  local attempts = opt_int(orch, "max_attempts", issues, "invalid-request")
  if attempts == nil then
    attempts = ctx.cfg.defaults.max_attempts
  elseif attempts <= 0 then
    attempts = 1
  end
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
