-- mpic.repl: the Lua side of `mpic repl` (core/repl.c runs the line loop):
-- the banner and configuration loading, the ':' commands, and tab
-- completion candidates (dotted names found by walking the global tables,
-- perspective ids inside a string literal after `perspective =`, and the
-- ':' commands themselves).
local M = {}
local type, pairs, ipairs, tostring, pcall, require, getmetatable, print =
  type, pairs, ipairs, tostring, pcall, require, getmetatable, print
local string_format, table_sort, table_concat = string.format, table.sort, table.concat
local _G = _G

--- The last validation response printed (for :explain).
M.last_response = nil

-- Commands -----------------------------------------------------------------

local commands, order = {}, {}
local function command(name, help, fn)
  commands[name] = { help = help, fn = fn }
  order[#order + 1] = name
end

command("help", "this text", function()
  for _, name in ipairs(order) do
    print(string_format(":%-14s %s", name, commands[name].help))
  end
  print([[
Any other line is Lua, run as a task: probes and validations work directly,
an expression's value is printed, an unfinished statement continues on the
next line (">>"). Tab completes mpic.* names and perspective ids inside
`perspective = "..."`. Ctrl-C cancels the running line; Ctrl-D leaves.
  mpic.dns.query("example.test", "TXT", {perspective = "fra"})
  mpic.validate{check_type = "caa", domain_or_ip_target = "example.test"}]])
end)

command("perspectives", "probe every perspective's canary now; RIR, location, kind, health, latency, why", function()
  local mpic = require "mpic"
  if not mpic.config then print("no configuration loaded (mpic repl --config FILE)") return end
  require("mpic.health").round() -- the canary probes (mpic.health), bounded by health.timeout_ms
  local ok, list = pcall(mpic.perspectives)
  if not ok then print(list) return end
  print(string_format("%-14s %-8s %-18s %-7s %-9s %-8s %s", "id", "rir", "location", "kind", "health", "latency", "why"))
  for _, p in ipairs(list) do
    print(string_format("%-14s %-8s %-18s %-7s %-9s %-8s %s", p.id .. (p.is_primary and " *" or ""), p.rir,
      string_format("%.2f,%.2f", p.location.lat, p.location.lon), p.remote and "agent" or "local",
      p.health, p.latency_ms and string_format("%.0f ms", p.latency_ms) or "-", p.health_error or ""))
  end
  print("* primary")
end)

command("reload", "reload the configuration, its policy, shadow policies and challenge types", function()
  local mpic = require "mpic"
  if not mpic.config then print("no configuration loaded (mpic repl --config FILE)") return end
  local cfg, err = mpic.load_config(mpic.config.file)
  if not cfg then print(err) return end
  local ok, orch = pcall(require, "mpic.orchestrator")
  if ok then orch.reset() end
  print(string_format("reloaded %s (%d perspectives, policy %s%s)", cfg.file, #cfg.perspectives, cfg.policy,
    cfg.shadow_policies and #cfg.shadow_policies > 0 and (", shadow " .. table_concat(cfg.shadow_policies, ", ")) or ""))
end)

-- The last audit line of the current configuration when it records the last
-- response shown (it also holds every attempt's reason and the shadow
-- verdicts), else nil.
local function last_audit_line(resp)
  local cfg = require("mpic.perspectives").config()
  local path = cfg and cfg.audit and cfg.audit.path
  local f = path and io.open(path, "rb")
  if not f then return nil end
  local size = f:seek("end")
  f:seek("set", size > 1048576 and size - 1048576 or 0)
  local text = f:read("a") or ""
  f:close()
  local line = require("mpic.explain").pick(text)
  if type(line) == "table" and line.target == resp.domain_or_ip_target and line.is_valid == resp.is_valid
      and (resp.trace_identifier == nil or line.trace_identifier == resp.trace_identifier) then
    return line
  end
  return nil
end

command("explain", "which rule decided the last validation shown, with shadow verdicts", function()
  if not M.last_response then print("no validation yet: run mpic.validate{...} first") return end
  local explain = require "mpic.explain"
  local line = last_audit_line(M.last_response)
  io.write(line and explain.audit_line(line) or explain.response(M.last_response))
end)

--- Run a ':' command line.
function M.command(line)
  local name = line:match("^:(%w+)")
  local c = name and commands[name]
  if not c then print("unknown command " .. line .. " (:help)") return end
  c.fn(line)
end

--- The command names (for completion and tests).
function M.command_names()
  local out = {}
  for _, n in ipairs(order) do out[#out + 1] = ":" .. n end
  return out
end

-- Completion ---------------------------------------------------------------

local function is_ident(s) return type(s) == "string" and s:match("^[%a_][%w_]*$") ~= nil end

local function starts(s, prefix) return s:sub(1, #prefix) == prefix end

-- Keys of t (and of tables reachable through __index) that are identifiers.
local function fields(t)
  local out, seen, depth = {}, {}, 0
  while type(t) == "table" and depth < 4 and not seen[t] do
    seen[t] = true
    for k, v in pairs(t) do
      if is_ident(k) and out[k] == nil then out[k] = v end
    end
    local mt = getmetatable(t)
    t = type(mt) == "table" and mt.__index or nil
    depth = depth + 1
  end
  return out
end

local function complete_name(word)
  local path, partial = word:match("^(.*)%.([%w_]*)$")
  local t = _G
  if path then
    for part in path:gmatch("[^.]+") do
      if not is_ident(part) or type(t) ~= "table" then return {} end
      local ok, v = pcall(function() return t[part] end)
      if not ok then return {} end
      t = v
    end
    if type(t) ~= "table" then return {} end
    path = path .. "."
  else
    path, partial = "", word
  end
  local out = {}
  for k, v in pairs(fields(t)) do
    if starts(k, partial) and not (path == "" and k:sub(1, 1) == "_") then
      local suffix = (type(v) == "table" and ".") or (type(v) == "function" and "(") or ""
      out[#out + 1] = path .. k .. suffix
    end
  end
  table_sort(out)
  return out
end

local function perspective_ids(partial)
  local ok, list = pcall(function() return require("mpic").perspectives() end)
  local out = {}
  if not ok then return out end
  for _, p in ipairs(list) do
    if starts(p.id, partial) then out[#out + 1] = p.id end
  end
  table_sort(out)
  return out
end

--[[ complete(line, start) -> list of replacements for line:sub(start), the
word under the cursor (line holds the text before the cursor; start is
1-based). ]]
function M.complete(line, start)
  if type(line) ~= "string" then return {} end
  start = start or (#line + 1)
  local before, word = line:sub(1, start - 1), line:sub(start)
  if before:match("^%s*$") and word:sub(1, 1) == ":" then
    local out = {}
    for _, n in ipairs(M.command_names()) do if starts(n, word) then out[#out + 1] = n end end
    return out
  end
  -- a perspective id inside a string literal after `perspective =`
  local quote = before:match("perspective%s*=%s*([\"'])$")
  if quote then
    local out = {}
    for _, id in ipairs(perspective_ids(word)) do out[#out + 1] = id end
    return out
  end
  if before:match("[\"']$") then return {} end
  -- a dotted name: the word may follow other text (libedit splits at spaces
  -- and brackets; take the name at the end of the word)
  local lead, name = word:match("^(.-)([%a_][%w_%.]*)$")
  if not name or (lead ~= "" and lead:match("[%w_]$")) then return {} end
  local out = {}
  for i, c in ipairs(complete_name(name)) do out[i] = lead .. c end
  return out
end

-- Set-up --------------------------------------------------------------------

--- Load the configuration named by --config (or ./perspectives.yaml when it
--- exists), make `mpic` a global, return the banner.
function M.setup(args, parse_opts, load_config)
  local opts, err = parse_opts(args, { config = "value" })
  if not opts then error(err, 0) end
  local mpic = require "mpic"
  _G.mpic = mpic
  local cfg
  cfg, err = load_config(opts.config, opts.config ~= nil)
  if err then error(err, 0) end
  local paths = package.loaded["mpic.paths"]
  return string_format("mpic %s%s -- :help for commands, Tab completes, Ctrl-D leaves", tostring(paths.version),
    cfg and (" (" .. cfg.file .. ", " .. #cfg.perspectives .. " perspectives, policy " .. cfg.policy .. ")")
      or " (no config)")
end

return M
