-- mpic.cli: the subcommands run as the root task (main.c hands over argv).
-- Returns exit statuses: 0 success/valid, 1 failure/not valid, 2 usage or
-- configuration error.
local M = {}
local io_stderr, string_format = io.stderr, string.format

local function die(code, fmt, ...)
  io_stderr:write(string_format(fmt, ...), "\n")
  return code
end

--- Parse "--flag value" / "--flag" options. spec: name -> "value" | "flag" | "list".
local function parse_opts(args, spec, first)
  local opts, rest = {}, {}
  local i = first or 1
  while i <= #args do
    local a = args[i]
    local name = a:match("^%-%-([%w-]+)$")
    if name and spec[name] then
      if spec[name] == "flag" then opts[name] = true
      else
        if i == #args then return nil, "option --" .. name .. " needs a value" end
        i = i + 1
        if spec[name] == "list" then
          opts[name] = opts[name] or {}
          opts[name][#opts[name] + 1] = args[i]
        else opts[name] = args[i] end
      end
    elseif name then
      return nil, "unknown option --" .. name
    else
      rest[#rest + 1] = a
    end
    i = i + 1
  end
  return opts, rest
end
M.parse_opts = parse_opts

local function load_config(path, required)
  local mpic = require "mpic"
  path = path or "perspectives.yaml"
  local f = io.open(path, "r")
  if not f and not required then return nil end
  if f then f:close() end
  local cfg, err = mpic.load_config(path)
  if not cfg then return nil, err end
  return cfg
end

local commands = {}

function commands.run(args)
  local file = args[2]
  if not file then return die(2, "usage: mpic run FILE.lua [ARGS]") end
  local chunk, err = loadfile(file)
  if not chunk then return die(2, "mpic: %s", err) end
  local script_args = { table.unpack(args, 3) }
  script_args[0] = file
  _G.arg = script_args
  local r = chunk(table.unpack(script_args))
  if r == nil or r == true then return 0 end
  if r == false then return 1 end
  if math.type(r) == "integer" then return r end
  return 0
end

function commands.test(args)
  return require("mpic.testrunner").run({ table.unpack(args, 2) })
end

commands["check-config"] = function(args)
  local opts, err = parse_opts(args, { config = "value" }, 2)
  if not opts then return die(2, "mpic check-config: %s", err) end
  local cfg
  cfg, err = load_config(opts.config, true)
  if not cfg then return die(2, "%s", err) end
  local ok, extra = true, nil
  local okc, checks = pcall(require, "mpic.checks")
  if okc then ok, extra = checks.all(cfg) end
  if not ok then return die(2, "%s", extra) end
  print(string_format("%s: ok (%d perspectives%s)", cfg.file, #cfg.perspectives,
    cfg.primary and (", primary " .. cfg.primary) or ", no primary"))
  if extra then print(extra) end
  return 0
end

local function delegate(modname)
  return function(args)
    local ok, mod = pcall(require, modname)
    if not ok then return die(2, "mpic %s: not available in this build (%s)", args[1], mod) end
    return mod.main(args)
  end
end
commands.validate = delegate("mpic.validate_cmd")
commands.demo = delegate("mpic.demo")
commands.serve = delegate("mpic.serve")
commands.agent = delegate("mpic.agent")
commands.explain = delegate("mpic.explain")
commands.simulate = delegate("mpic.simulate")
commands.audit = delegate("mpic.audit_cmd")

function M.main(args)
  local cmd = commands[args[1]]
  if not cmd then
    return die(2, "mpic: unknown command %q (see mpic --help)", tostring(args[1]))
  end
  local status = cmd(args)
  -- the audit logs written to end with a signed checkpoint (mpic.evidence)
  local orch = package.loaded["mpic.orchestrator"]
  if type(orch) == "table" and orch.close_audit then orch.close_audit() end
  return status
end

-- REPL support (main.c runs the line loop) ------------------------------------

function M.repl_setup(args)
  return require("mpic.repl").setup(args, parse_opts, load_config)
end

function M.repl_command(line)
  return require("mpic.repl").command(line)
end

return M
