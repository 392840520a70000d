-- mpic.cmd.validate: `mpic validate`. Reads an Open MPIC request (a file, or
-- - for stdin) or builds one from shorthand flags, runs it, and prints a
-- per-perspective table (or the Open MPIC response with --json).
-- Exit 0 valid, 1 not valid, 2 usage/config/request error.
local mpic = require "mpic"
local cli = require "mpic.cmd.cli"
local report = require "mpic.cmd.report"

local M = {}
local io_stderr = io.stderr

local USAGE = [==[
usage: mpic validate [--config FILE] (--request FILE|- | --check dcv|caa --target T
                     [--method M] [--param key=value ...]) [--count N] [--quorum Q]
                     [--attempts N] [--trace ID] [--date YYYY-MM-DD] [--json] [--explain]
  One validation through the configured policy (default ./perspectives.yaml).
  --check dcv needs --method (a validation method such as acme-dns-01); --trace
  names the validation in the audit log (a fresh identifier otherwise);
  --explain says which rule decided, with the shadow policies' verdicts.
  Exit 0 valid, 1 not valid, 2 usage, configuration or request error.]==]
M.USAGE = USAGE

local function read_all(path)
  local f, err
  if path == "-" then
    f = io.stdin
  else
    f, err = io.open(path, "rb")
  end
  if not f then return nil, err end
  local s = f:read(1024 * 1024 + 1)
  if path ~= "-" then f:close() end
  if s and #s > 1024 * 1024 then return nil, "request larger than 1 MiB" end
  return s or ""
end

-- A --param value typed by the method's parameter schema (the declaration's
-- params): returns the value or nil, reason.
local function typed(k, v, spec)
  local t = spec.type
  if t == "string" then return v end
  if t == "boolean" then
    if v == "true" then
      return true
    elseif v == "false" then
      return false
    end
    return nil, string.format("--param %s must be true or false, got %q", k, v)
  end
  if t == "integer" or t == "number" then
    local n = tonumber(v)
    if t == "integer" then n = n and math.tointeger(n) end
    if n == nil then
      return nil, string.format("--param %s must be %s, got %q", k, t == "integer" and "an integer" or "a number", v)
    end
    return n
  end
  if t == "string_or_list" and v:sub(1, 1) ~= "[" then return v end
  -- list, table, string_or_list given as JSON
  local j, jerr = mpic.json.decode(v)
  if type(j) ~= "table" then
    return nil,
      string.format(
        "--param %s must be JSON (%s), got %q%s",
        k,
        t == "table" and "an object" or "an array",
        v,
        jerr and (": " .. tostring(jerr)) or ""
      )
  end
  return j
end

--- Build a request table from shorthand flags. registry (optional: a
--- challenge registry) types each --param by the method's declared schema
--- and refuses a parameter the method does not declare; without it, or for
--- an unknown method, values stay strings (the request is then refused by
--- the orchestrator with the methods it knows).
function M.request_from_flags(o, registry)
  local req = { check_type = o.check, domain_or_ip_target = o.target, trace_identifier = o.trace }
  local ch = registry and registry.by_name[o.check == "caa" and "caa" or tostring(o.method)]
  local params = {}
  for _, kv in ipairs(o.param or {}) do
    local k, v = kv:match("^([%w_]+)=(.*)$")
    if not k then return nil, "--param needs key=value, got " .. kv end
    if ch then
      local spec = ch.params[k]
      if not spec then
        local known = {}
        for name in pairs(ch.params) do
          known[#known + 1] = name
        end
        table.sort(known)
        return nil,
          string.format(
            "--param %s: %s takes no parameter %s (it takes: %s)",
            k,
            ch.name,
            k,
            #known > 0 and table.concat(known, ", ") or "none"
          )
      end
      local val, terr = typed(k, v, spec)
      if val == nil then return nil, terr end
      params[k] = val
    else
      params[k] = v
    end
  end
  if o.check == "dcv" then
    params.validation_method = o.method
    req.dcv_check_parameters = params
  elseif next(params) then
    req.caa_check_parameters = params
  end
  local orch = {}
  if o.count then orch.perspective_count = math.tointeger(tonumber(o.count)) end
  if o.quorum then orch.quorum_count = math.tointeger(tonumber(o.quorum)) end
  if o.attempts then orch.max_attempts = math.tointeger(tonumber(o.attempts)) end
  if next(orch) then req.orchestration_parameters = orch end
  return req
end

function M.main(args)
  local o, err = cli.parse_opts(args, {
    config = "value",
    request = "value",
    json = "flag",
    check = "value",
    method = "value",
    target = "value",
    param = "list",
    count = "value",
    quorum = "value",
    attempts = "value",
    trace = "value",
    explain = "flag",
    date = "value",
    color = "flag",
    ["no-color"] = "flag",
  }, 2)
  if not o then
    io_stderr:write("mpic validate: ", err, "\n", USAGE, "\n")
    return 2
  end
  local cfg
  cfg, err = mpic.load_config(o.config or "perspectives.yaml")
  if not cfg then
    io_stderr:write(err, "\n")
    return 2
  end
  if o.check == "dcv" and not o.method and not o.request then
    local ctx = require("mpic.orchestrator").context()
    local names = {}
    for _, c in ipairs(ctx and ctx.registry.list or {}) do
      if c.check_type == "dcv" then names[#names + 1] = c.name end
    end
    table.sort(names)
    io_stderr:write("mpic validate: --check dcv needs --method M (one of: ", table.concat(names, ", "), ")\n")
    return 2
  end
  local dok, derr = require("mpic.dnssec_check").prove(cfg, "start")
  if not dok then
    io_stderr:write("mpic validate: refusing to run: ", tostring(derr), "\n")
    return 2
  end
  local req
  if o.request then
    local text
    text, err = read_all(o.request)
    if not text then
      io_stderr:write("mpic validate: ", tostring(err), "\n")
      return 2
    end
    req, err = mpic.json.decode(text)
    if req == nil then
      io_stderr:write("mpic validate: ", err, "\n")
      return 2
    end
  elseif o.check and o.target then
    local ctx, cerr = require("mpic.orchestrator").context()
    if not ctx then
      io_stderr:write("mpic validate: ", tostring(cerr), "\n")
      return 2
    end
    req, err = M.request_from_flags(o, ctx.registry)
    if not req then
      io_stderr:write("mpic validate: ", err, "\n")
      return 2
    end
  else
    io_stderr:write(USAGE, "\n")
    return 2
  end
  local orchestrator = require "mpic.orchestrator"
  local resp, status = orchestrator.validate(orchestrator.with_trace(req), { date = o.date })
  if o.json then
    local text, jerr = mpic.json.encode(resp, { pretty = true, sort = true })
    if not text then
      io_stderr:write("mpic validate: cannot encode the response: ", tostring(jerr), "\n")
      return 2
    end
    print(text)
  elseif status ~= 200 then
    io_stderr:write(report.problems(resp, status), "\n")
  else
    local color = o.color or (not o["no-color"] and report.is_tty())
    io.write(report.table(resp, { color = color, config = cfg }))
    if o.explain then io.write(report.explain(resp), "\n") end
  end
  if status ~= 200 then return 2 end
  return resp.is_valid and 0 or 1
end

return M
