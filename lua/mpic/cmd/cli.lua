-- mpic.cmd.cli: the subcommands run as the root task (main.c hands over argv).
-- Returns exit statuses: 0 success/valid, 1 failure/not valid, 2 usage or
-- configuration error.
local M = {}
local io_stderr, string_format = io.stderr, string.format

local function die(code, fmt, ...)
  io_stderr:write(string_format(fmt, ...), "\n")
  return code
end

-- option parsing is shared with the service entry points (mpic.args)
local parse_opts = require("mpic.args").parse
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

-- Usage of each subcommand (`mpic CMD --help`, `mpic help CMD`); a module
-- that exports USAGE is asked first.
local USAGE = {
  validate = "mpic.cmd.validate",
  explain = "mpic.cmd.explain",
  simulate = "mpic.cmd.simulate",
  serve = [[
usage: mpic serve --config FILE --listen ADDR:PORT [--tls-cert F --tls-key F] [--client-ca F]
                  [--token T] [--max-inflight N] [--max-body BYTES] [--health-interval S]
                  [--max-connections N] [--max-connections-per-ip N] [--header-timeout S]
                  [--workers N]
  The coordinator: the Open MPIC API (POST /mpic), /healthz and /metrics.
  --workers N: N processes on the one port (default: the CPUs; 1: one process).]],
  agent = [[
usage: mpic agent --config FILE --listen ADDR:PORT --perspective ID
                  --tls-cert F --tls-key F --client-ca F [--max-inflight N] [--max-body BYTES]
                  [--health-interval S] [--max-connections N] [--max-connections-per-ip N]
                  [--header-timeout S] [--signing-key F] [--workers N]
  A remote perspective answering the coordinator over mutual TLS.
  --workers N: N processes on the one port (default: the CPUs; 1: one process).]],
  run = [[
usage: mpic run [--config FILE] FILE.lua [ARGS]
  Runs a Lua script as the root task with mpic loaded; --config loads the
  configuration first (mpic.config). Options after FILE.lua are the script's
  (arg[1]...). Exit status: the script's return value (nil or true 0,
  false 1, an integer itself).]],
  test = [[
usage: mpic test [--config FILE] [--filter TEXT] FILE|DIR ...
  Runs Lua test files (*_test.lua under each DIR); each case is a task with a
  time limit. --config loads a configuration first; --filter runs the cases
  whose name contains TEXT. Exit 0 when something ran and nothing failed.]],
  ["check-config"] = [[
usage: mpic check-config [--config FILE]
  Loads the configuration (default ./perspectives.yaml), its policy and shadow
  policies (each must accept the perspective set and refuse a validation in
  which every perspective failed) and every challenge type, and runs the
  primary's DNSSEC check. Exit 0 when all is well, 2 otherwise.]],
  repl = [[
usage: mpic repl [--config FILE]
  Interactive Lua with mpic loaded (default config ./perspectives.yaml when it
  exists). :help lists the commands; help(mpic.validate) documents a function.]],
  demo = [[
usage: mpic demo
  Starts a small loopback lab (two Knot DNS servers), runs an honest and a
  hijacked validation through the default policy, prints both, stops the lab.]],
  audit = [[
usage: mpic audit verify FILE... [--config F] [--key PEM ...] [--open]
       mpic audit replay FILE... [--config F] [--trace ID] [--policy-store DIR] [--key PEM ...]
  verify: the audit log's chain, checkpoints and signatures; replay: every
  verdict judged again from its signed evidence.]],
  help = [[
usage: mpic help [COMMAND]
  The list of commands (mpic --help), or the usage of one.]],
}

local function usage_of(cmd)
  local u = USAGE[cmd]
  if u == nil then u = string_format("usage: mpic %s ... (see mpic --help)", cmd) end
  if u:sub(1, 5) == "mpic." then
    local mod = require(u)
    u = type(mod) == "table" and type(mod.USAGE) == "string" and mod.USAGE or nil
    if not u then
      -- modules that keep their usage to themselves: the summary line
      u = string_format("usage: mpic %s ... (see mpic --help)", cmd)
    end
  end
  return u
end
M.usage_of = usage_of

local function is_help(a) return a == "--help" or a == "-h" end

-- Does `mpic CMD ...` ask for help? For run, only before the script file
-- (what follows it is the script's).
local function wants_help(cmd, args)
  local i = 2
  while i <= #args do
    local a = args[i]
    if is_help(a) then return true end
    if cmd == "run" then
      if a == "--config" then
        i = i + 1
      elseif a:sub(1, 2) ~= "--" then
        return false
      end
    end
    i = i + 1
  end
  return false
end

local function command_list()
  local names = {}
  for k in pairs(commands) do
    names[#names + 1] = k
  end
  table.sort(names)
  return table.concat(names, ", ")
end

function commands.help(args)
  local cmd = args[2]
  if is_help(cmd) then cmd = "help" end
  if cmd == nil then return die(2, "mpic help: which command? (%s)", command_list()) end
  if not commands[cmd] then return die(2, "mpic help: unknown command %q (commands: %s)", cmd, command_list()) end
  print(usage_of(cmd))
  return 0
end

-- Load --config FILE for run and test. Returns true or nil, message.
local function load_named_config(path)
  if not path then return true end
  local cfg, err = require("mpic").load_config(path)
  if not cfg then return nil, err end
  return true
end

function commands.run(args)
  local opts = {}
  local i = 2
  while args[i] == "--config" do
    if not args[i + 1] then return die(2, "mpic run: option --config needs a value\n%s", USAGE.run) end
    opts.config = args[i + 1]
    i = i + 2
  end
  local file = args[i]
  if not file then return die(2, "%s", USAGE.run) end
  if file:sub(1, 2) == "--" then return die(2, "mpic run: unknown option %s\n%s", file, USAGE.run) end
  local lok, lerr = load_named_config(opts.config)
  if not lok then return die(2, "%s", lerr) end
  args = { args[1], table.unpack(args, i) }
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
  local rest, i = {}, 2
  local config
  while i <= #args do
    if args[i] == "--config" then
      if not args[i + 1] then return die(2, "mpic test: option --config needs a value\n%s", USAGE.test) end
      config = args[i + 1]
      i = i + 1
    else
      rest[#rest + 1] = args[i]
    end
    i = i + 1
  end
  local lok, lerr = load_named_config(config)
  if not lok then return die(2, "%s", lerr) end
  return require("mpic.cmd.testrunner").run(rest)
end

-- `mpic repl` runs its own line loop (core/repl.c); only `mpic repl --help`
-- comes here.
function commands.repl()
  print(USAGE.repl)
  return 0
end

commands["check-config"] = function(args)
  local opts, err = parse_opts(args, { config = "value" }, 2)
  if not opts then return die(2, "mpic check-config: %s\n%s", err, USAGE["check-config"]) end
  if #err > 0 then return die(2, "mpic check-config: unexpected argument %s\n%s", err[1], USAGE["check-config"]) end
  local cfg
  cfg, err = load_config(opts.config, true)
  if not cfg then return die(2, "%s", err) end
  local ok, extra = require("mpic.checks").all(cfg)
  if not ok then return die(2, "%s", extra) end
  print(
    string_format(
      "%s: ok (%d perspectives%s)",
      cfg.file,
      #cfg.perspectives,
      cfg.primary and (", primary " .. cfg.primary) or ", no primary"
    )
  )
  if extra then print(extra) end
  return 0
end

local function delegate(modname)
  return function(args) return require(modname).main(args) end
end
commands.validate = delegate("mpic.cmd.validate")
commands.demo = delegate("mpic.cmd.demo")
commands.serve = delegate("mpic.service.serve")
commands.agent = delegate("mpic.service.agent")
commands.explain = delegate("mpic.cmd.explain")
commands.simulate = delegate("mpic.cmd.simulate")
commands.audit = delegate("mpic.cmd.audit")

-- Every command may validate with remote perspectives (serve, validate, run,
-- test, the REPL): the domain reaches agents through the transport that the
-- process installs (mpic.remote), here the service's agent client.
local function install_transport()
  local remote = require "mpic.remote"
  if not remote.installed() then remote.install(require "mpic.service.agent_client") end
end
M.install_transport = install_transport

function M.main(args)
  install_transport()
  local cmd = commands[args[1]]
  if not cmd then
    return die(2, "mpic: unknown command %q (commands: %s; see mpic --help)", tostring(args[1]), command_list())
  end
  if args[1] ~= "help" and wants_help(args[1], args) then
    print(usage_of(args[1]))
    return 0
  end
  return cmd(args)
end

-- REPL support (main.c runs the line loop) ------------------------------------

function M.repl_setup(args)
  install_transport()
  return require("mpic.cmd.repl").setup(args, parse_opts, load_config)
end

function M.repl_command(line) return require("mpic.cmd.repl").command(line) end

return M
