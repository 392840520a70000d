-- mpic.cmd.explain: `mpic explain`, and the explanation of a validation for the
-- REPL's :explain. Given an audit line (or a validation response) it says,
-- per attempt, which rule decided: the primary's failure, the quorum
-- (k of n corroborated against the number required), RIR diversity, the
-- BR minimum perspective count, a requested quorum_count the rules refuse,
-- the deadline, a policy error, or a policy's own rule; then the shadow
-- policies' verdicts beside the live one.
-- The rule is read from what the decision recorded (info.rule, a name of
-- mpic.rules, in the audit line and mpic_decision), never from the reason's
-- words.
local util = require "mpic.core.util"
local rules = require "mpic.rules"

local M = {}
local type, ipairs, tostring, string_format, table_concat, table_sort =
  type, ipairs, tostring, string.format, table.concat, table.sort
local io_stderr = io.stderr

local function present(v) return v ~= nil and v ~= util.null end

-- Rules ------------------------------------------------------------------------

--- The rule that decided, as recorded (info.rule: mpic.rules) -> its name
--- and a short sentence; "unknown" when none was recorded.
function M.rule(name) return rules.describe(name) end

--- The rule that decided a response's final attempt (mpic_decision.rule).
function M.response_rule(resp)
  local d = type(resp) == "table" and type(resp.mpic_decision) == "table" and resp.mpic_decision or {}
  return M.rule(d.rule)
end

-- Normalised view ---------------------------------------------------------------
-- { policy, policy_sha256, target, check_type, method, br_section, trace, ts,
--   is_valid, mpic_completed, shadow, attempts = { {verdict, reason, quorum,
--   passed_rirs, primary = {id, passed, completed, err}, remotes = {{id, rir,
--   passed, completed, cancelled, err}}} } }

local function first_error(errors)
  if type(errors) ~= "table" or not errors[1] then return nil end
  local e = errors[1]
  return tostring(present(e.error_message) and e.error_message or e.error_type)
end

local function from_audit_entry(p)
  return {
    id = p.perspective_code,
    rir = p.rir,
    passed = p.check_passed == true,
    completed = p.check_completed == true,
    cancelled = p.cancelled == true,
    err = first_error(p.errors),
  }
end

local function view_audit(line)
  local v = {
    policy = line.policy,
    policy_sha256 = line.policy_sha256,
    target = line.target,
    check_type = line.check_type,
    method = line.validation_method,
    br_section = line.br_section,
    trace = line.trace_identifier,
    ts = line.ts,
    is_valid = line.is_valid,
    mpic_completed = line.mpic_completed,
    shadow = line.shadow,
    shadow_errors = line.shadow_errors,
    attempts = {},
  }
  local atts = type(line.attempts) == "table" and line.attempts
    or {
      {
        perspectives = line.perspectives,
        quorum = line.quorum,
        passed_rirs = line.passed_rirs,
        verdict = line.is_valid and "valid" or "invalid",
        reason = line.reason,
        rule = line.rule,
      },
    }
  for i, a in ipairs(atts) do
    local remotes = {}
    for j, p in ipairs(type(a.perspectives) == "table" and a.perspectives or {}) do
      remotes[j] = from_audit_entry(p)
    end
    v.attempts[i] = {
      verdict = a.verdict,
      reason = a.reason,
      rule = a.rule,
      quorum = a.quorum,
      passed_rirs = a.passed_rirs,
      required = a.required,
      remotes = remotes,
      primary = type(a.primary) == "table" and from_audit_entry(a.primary) or nil,
    }
  end
  return v
end

local function from_response_entry(e)
  local cr = type(e.check_response) == "table" and e.check_response or {}
  local err = first_error(cr.errors)
  if not err and cr.check_passed ~= true and type(cr.details) == "table" and type(cr.details.reason) == "string" then
    err = cr.details.reason
  end
  return {
    id = e.perspective_code,
    rir = e.rir,
    passed = cr.check_passed == true,
    completed = cr.check_completed == true,
    err = err,
    cancelled = err ~= nil and err:find("cancelled after outcome decided", 1, true) ~= nil,
  }
end

local function view_response(resp)
  local d = type(resp.mpic_decision) == "table" and resp.mpic_decision or {}
  local v = {
    policy = d.policy,
    target = resp.domain_or_ip_target,
    check_type = resp.check_type,
    method = d.method,
    trace = resp.trace_identifier,
    is_valid = resp.is_valid,
    mpic_completed = resp.mpic_completed,
    shadow = resp.shadow,
    attempts = {},
  }
  local prev = type(resp.previous_attempt_results) == "table" and resp.previous_attempt_results or {}
  for i, list in ipairs(prev) do
    local remotes = {}
    for j, e in ipairs(list) do
      remotes[j] = from_response_entry(e)
    end
    v.attempts[i] = { verdict = "invalid", remotes = remotes }
  end
  local remotes = {}
  for j, e in ipairs(type(resp.perspectives) == "table" and resp.perspectives or {}) do
    remotes[j] = from_response_entry(e)
  end
  v.attempts[#v.attempts + 1] = {
    verdict = d.verdict or (resp.is_valid and "valid" or "invalid"),
    reason = d.reason,
    rule = d.rule,
    quorum = d.quorum,
    required = d.required,
    passed_rirs = d.passed_rirs,
    remotes = remotes,
    primary = type(resp.primary_perspective) == "table" and from_response_entry(resp.primary_perspective) or nil,
  }
  return v
end

-- Rendering --------------------------------------------------------------------

--- "caa", "dcv acme-dns-01": the check type and the method when it says more.
function M.what(check_type, method)
  local ct = tostring(check_type)
  if not present(method) or method == "" or method == check_type then return ct end
  return ct .. " " .. tostring(method)
end

local function word(p)
  if p.passed then return "pass" end
  if p.cancelled then return "cancelled" end
  return p.completed and "fail" or "error"
end

local function rirs_of(remotes)
  local set, list = {}, {}
  for _, p in ipairs(remotes) do
    if p.passed and type(p.rir) == "string" and not set[p.rir] then
      set[p.rir] = true
      list[#list + 1] = p.rir
    end
  end
  table_sort(list)
  return list
end

local function explain_attempt(out, i, total, a)
  local k, n = 0, #a.remotes
  for _, p in ipairs(a.remotes) do
    if p.passed then k = k + 1 end
  end
  out[#out + 1] = string_format("attempt %d of %d: %s", i, total, a.verdict == "valid" and "VALID" or "NOT VALID")
  if a.primary then
    out[#out + 1] = string_format(
      "  primary %-10s %s%s",
      tostring(a.primary.id),
      word(a.primary),
      a.primary.err and (" -- " .. a.primary.err) or ""
    )
  end
  for _, p in ipairs(a.remotes) do
    out[#out + 1] = string_format(
      "  remote  %-10s %-8s %s%s",
      tostring(p.id),
      tostring(p.rir or "?"),
      word(p),
      (not p.passed and p.err) and (" -- " .. p.err) or ""
    )
  end
  local required = a.required
  local rirs = type(a.passed_rirs) == "table" and a.passed_rirs or rirs_of(a.remotes)
  out[#out + 1] = string_format(
    "  quorum %s corroborated%s; corroborating RIRs: %s",
    a.quorum or (k .. "/" .. n),
    required and string_format(" (%d required)", required) or "",
    #rirs > 0 and table_concat(rirs, ", ") or "none"
  )
  local rule, sentence = M.rule(a.rule)
  if a.reason then
    out[#out + 1] = string_format("  decided by: %s -- %s", rule, sentence)
    out[#out + 1] = "    " .. tostring(a.reason)
  else
    out[#out + 1] = "  decided by: not recorded in a response's earlier attempts (see the audit line)"
  end
end

local function explain_view(v)
  local out = {}
  out[#out + 1] = string_format(
    "%s %s for %s%s%s",
    v.is_valid and "VALID" or "NOT VALID",
    M.what(v.check_type, v.method),
    tostring(v.target),
    present(v.trace) and (" (trace " .. tostring(v.trace) .. ")") or "",
    v.ts and (" at " .. v.ts) or ""
  )
  out[#out + 1] = string_format(
    "policy %s%s%s",
    tostring(v.policy),
    v.policy_sha256 and (" sha256 " .. tostring(v.policy_sha256):sub(1, 16)) or "",
    v.mpic_completed == false and "; not every perspective completed (mpic_completed=false)" or ""
  )
  for i, a in ipairs(v.attempts) do
    explain_attempt(out, i, #v.attempts, a)
  end
  if type(v.shadow) == "table" and #v.shadow > 0 then
    out[#out + 1] = "shadow policies (judging the final attempt's results; never part of the answer):"
    local live = v.is_valid and "valid" or "invalid"
    for _, s in ipairs(v.shadow) do
      local rule = M.rule(s.rule)
      out[#out + 1] = string_format(
        "  %-28s %-8s %s -- %s: %s",
        tostring(s.policy),
        tostring(s.verdict),
        s.verdict == live and "(agrees)" or "(DISAGREES with live)",
        rule,
        tostring(s.reason)
      )
    end
  elseif type(v.shadow_errors) ~= "table" or #v.shadow_errors == 0 then
    out[#out + 1] = "shadow policies: none"
  end
  if type(v.shadow_errors) == "table" then
    for _, e in ipairs(v.shadow_errors) do
      out[#out + 1] =
        string_format("  shadow policy %s not loaded (skipped): %s", tostring(e.policy), tostring(e.error))
    end
  end
  return table_concat(out, "\n") .. "\n"
end

--- Explain one decoded audit line.
function M.audit_line(line)
  if type(line) ~= "table" then error("explain.audit_line: expects a decoded audit line", 2) end
  return explain_view(view_audit(line))
end

--- Explain a validation response (mpic.validate's first result).
function M.response(resp)
  if type(resp) ~= "table" then error("explain.response: expects a response table", 2) end
  if resp.perspectives == nil then return "not a validation response: " .. tostring(resp.error) .. "\n" end
  return explain_view(view_response(resp))
end

--- The audit line of a response just given, from the current
--- configuration's audit log (its last MiB): the line with the response's
--- trace_identifier, else the last line when it is for the same target and
--- verdict and has no trace of its own to contradict. nil when none.
function M.audit_for(resp)
  if type(resp) ~= "table" then return nil end
  local cfg = require("mpic.perspectives").config()
  local path = cfg and cfg.audit and cfg.audit.path
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:seek("set", size > 1048576 and size - 1048576 or 0)
  local text = f:read("a") or ""
  f:close()
  local trace = present(resp.trace_identifier) and resp.trace_identifier or nil
  local line = M.pick(text, trace)
  if
    type(line) == "table"
    and line.target == resp.domain_or_ip_target
    and line.is_valid == resp.is_valid
    and (trace == nil or line.trace_identifier == trace)
  then
    return line
  end
  return nil
end

--- Explain a response just given: from its audit line when found (it also
--- holds every attempt's reason and the shadow policies' verdicts, which
--- the response leaves out), else from the response.
function M.response_with_audit(resp)
  local line = M.audit_for(resp)
  if line then return M.audit_line(line) end
  return M.response(resp)
end

-- Command ------------------------------------------------------------------------

local USAGE = [[
usage: mpic explain [FILE|-] [--trace ID] [--config FILE]
  Explains one audit line: the last one of FILE, or the last one whose
  trace_identifier is ID. Without FILE: the audit log of --config (or of
  ./perspectives.yaml when it exists), else standard input (- reads it
  too; a terminal is not waited on).]]
M.USAGE = USAGE

--- Pick the audit line: the last one, or the last with trace_identifier ID.
--- Returns the decoded line or nil, reason.
function M.pick(text, trace)
  local last_err
  local lines = {}
  for l in text:gmatch("[^\n]+") do
    if l:find("%S") then lines[#lines + 1] = l end
  end
  for i = #lines, 1, -1 do
    local rec, err = util.json_decode(lines[i])
    if type(rec) == "table" then
      if not trace or rec.trace_identifier == trace then return rec end
    elseif not trace then
      return nil, string_format("the last line is not JSON: %s", tostring(err))
    else
      last_err = err
    end
  end
  if trace then
    return nil,
      string_format(
        "no audit line with trace_identifier %q%s",
        trace,
        last_err and (" (some lines were not JSON: " .. tostring(last_err) .. ")") or ""
      )
  end
  return nil, "no audit line found"
end

function M.main(args)
  local cli = require "mpic.cmd.cli"
  local o, rest = cli.parse_opts(args, { trace = "value", config = "value" }, 2)
  if not o then
    io_stderr:write("mpic explain: ", rest, "\n", USAGE, "\n")
    return 2
  end
  local file = rest[1]
  if #rest > 1 then
    io_stderr:write(USAGE, "\n")
    return 2
  end
  if not file then
    local cfgpath = o.config
    if not cfgpath then
      local f = io.open("perspectives.yaml", "r")
      if f then
        f:close()
        cfgpath = "perspectives.yaml"
      end
    end
    if cfgpath then
      local cfg, err = require("mpic.config").load(cfgpath)
      if not cfg then
        io_stderr:write(err, "\n")
        return 2
      end
      file = cfg.audit.path
    else
      if util.isatty(0) then
        io_stderr:write(
          "mpic explain: nothing to explain: no FILE, no --config and no ./perspectives.yaml, ",
          "and standard input is a terminal\n",
          USAGE,
          "\n"
        )
        return 2
      end
      file = "-"
    end
  end
  local text
  if file == "-" then
    if util.isatty(0) then io_stderr:write("mpic explain: reading audit lines from the terminal (Ctrl-D ends)\n") end
    text = io.stdin:read("a") or ""
  else
    local f, err = io.open(file, "rb")
    if not f then
      io_stderr:write("mpic explain: ", tostring(err), "\n")
      return 2
    end
    text = f:read("a") or ""
    f:close()
  end
  local rec, err = M.pick(text, o.trace)
  if not rec then
    io_stderr:write("mpic explain: ", file == "-" and "stdin" or file, ": ", err, "\n")
    return 2
  end
  io.write(M.audit_line(rec))
  return 0
end

return M
