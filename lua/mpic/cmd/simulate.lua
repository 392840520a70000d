-- mpic.cmd.simulate: the `mpic simulate` command: options, the
-- configuration, and the result of the engine (mpic.simulate, which policy
-- authors also reach through mpic.testing) printed as text or JSON.
local simulate = require "mpic.simulate"

local M = {}
local type, tostring, pcall, error, string_format = type, tostring, pcall, error, string.format

M.USAGE = [[
usage: mpic simulate [--config FILE] [--policy FILE ...] [--model NAME|FILE] [--trials N]
                     [--seed S] [--date YYYY-MM-DD] [--count N] [--json]
Measure policies against an adversary model and an outage model, offline: the
share of attacks in which the attacker's validation is accepted (per attack
kind), the share of legitimate validations refused (per outage kind), and the
mean number of perspectives contacted, with 95% Wilson score intervals.
  --config FILE   configuration (default perspectives.yaml)
  --policy FILE   a policy to measure; repeat to compare (default: the config's)
  --model M       adversary and outage model: a name in lua/mpic/models/ or a
                  file (default "default"; the contract is in docs/POLICIES.md)
  --trials N      trials per attack and outage kind (default 1000, at most 1000000)
  --seed S        seed of every random draw (default 1): same seed, same numbers
  --date D        the validation date policies judge on (default today, UTC)
  --count N       remote perspectives per attempt (default defaults.perspective_count)
  --json          the result as JSON
Exit status: 0 done, 2 usage, configuration, policy or model error.]]

function M.main(args)
  local cli = require "mpic.cmd.cli"
  for i = 2, #args do
    if args[i] == "--help" or args[i] == "-h" then
      io.stdout:write(M.USAGE, "\n")
      return 0
    end
  end
  local o, rest = cli.parse_opts(args, {
    config = "value",
    policy = "list",
    model = "value",
    trials = "value",
    seed = "value",
    date = "value",
    count = "value",
    json = "flag",
  }, 2)
  if not o then
    io.stderr:write("mpic simulate: ", rest, "\n", M.USAGE, "\n")
    return 2
  end
  if #rest > 0 then
    io.stderr:write("mpic simulate: unexpected argument ", rest[1], "\n", M.USAGE, "\n")
    return 2
  end
  local function int(name)
    if o[name] == nil then return nil end
    local n = math.tointeger(tonumber(o[name]))
    if not n then error({ string_format("--%s: expected an integer, got %q", name, o[name]) }) end
    return n
  end
  local okn, trials, count = pcall(function() return int("trials"), int("count") end)
  if not okn then
    io.stderr:write("mpic simulate: ", type(trials) == "table" and trials[1] or tostring(trials), "\n")
    return 2
  end
  local cfg, err = require("mpic.config").load(o.config or "perspectives.yaml")
  if not cfg then
    io.stderr:write("mpic simulate: ", tostring(err), "\n")
    return 2
  end
  local r
  r, err = simulate.run {
    cfg = cfg,
    policies = o.policy,
    model = o.model,
    trials = trials,
    seed = o.seed,
    date = o.date,
    count = count,
  }
  if not r then
    io.stderr:write("mpic simulate: ", tostring(err), "\n")
    return 2
  end
  if o.json then
    local util = require "mpic.core.util"
    local text, jerr = util.json_encode(r)
    if not text then
      io.stderr:write("mpic simulate: ", tostring(jerr), "\n")
      return 2
    end
    io.stdout:write(text, "\n")
  else
    io.stdout:write(simulate.format(r))
  end
  return 0
end

return M
