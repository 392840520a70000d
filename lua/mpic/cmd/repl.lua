-- mpic.cmd.repl: the Lua side of `mpic repl` (core/repl.c runs the line loop):
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
help() lists mpic's functions; help(mpic.validate) shows one's signature and doc.
Any other line is Lua, run as a task: probes and validations work directly,
an expression's value is printed, an unfinished statement continues on the
next line (">>"). Tab completes mpic.* names and perspective ids inside
`perspective = "..."`. Ctrl-C cancels the running line; Ctrl-D leaves.
  mpic.dns.query("example.test", "TXT", {perspective = "fra"})
  mpic.validate{check_type = "caa", domain_or_ip_target = "example.test"}]])
end)

command("perspectives", "probe every perspective's canary now; RIR, location, kind, health, latency, why", function()
  local mpic = require "mpic"
  if not mpic.config then
    print("no configuration loaded (mpic repl --config FILE)")
    return
  end
  require("mpic.service.health").round() -- the canary probes (mpic.service.health), bounded by health.timeout_ms
  local ok, list = pcall(mpic.perspectives)
  if not ok then
    print(list)
    return
  end
  print(
    string_format("%-14s %-8s %-18s %-7s %-9s %-8s %s", "id", "rir", "location", "kind", "health", "latency", "why")
  )
  for _, p in ipairs(list) do
    print(
      string_format(
        "%-14s %-8s %-18s %-7s %-9s %-8s %s",
        p.id .. (p.is_primary and " *" or ""),
        p.rir,
        string_format("%.2f,%.2f", p.location.lat, p.location.lon),
        p.remote and "agent" or "local",
        p.health,
        p.latency_ms and string_format("%.0f ms", p.latency_ms) or "-",
        p.health_error or ""
      )
    )
  end
  print("* primary")
end)

command("reload", "reload the configuration, its policy, shadow policies and challenge types", function()
  local mpic = require "mpic"
  if not mpic.config then
    print("no configuration loaded (mpic repl --config FILE)")
    return
  end
  local cfg, err = mpic.load_config(mpic.config.file)
  if not cfg then
    print(err)
    return
  end
  local orch = require "mpic.orchestrator"
  orch.reset()
  -- the new context reports broken challenge files (or refuses them)
  local ctx, cerr = orch.context()
  if not ctx then print(cerr) end
  print(
    string_format(
      "reloaded %s (%d perspectives, policy %s%s)",
      cfg.file,
      #cfg.perspectives,
      cfg.policy,
      cfg.shadow_policies and #cfg.shadow_policies > 0 and (", shadow " .. table_concat(cfg.shadow_policies, ", "))
        or ""
    )
  )
end)

command("explain", "which rule decided the last validation shown, with shadow verdicts", function()
  if not M.last_response then
    print("no validation yet: run mpic.validate{...} first")
    return
  end
  io.write(require("mpic.cmd.explain").response_with_audit(M.last_response))
end)

-- help(fn) -------------------------------------------------------------------

-- The public functions of `mpic`: signature and one line of doc each.
M.DOCS = {
  {
    "mpic.validate",
    "mpic.validate(request) -> response, status",
    "One validation of an Open MPIC request table through the configured policy (a fresh trace_identifier when it has none).",
  },
  {
    "mpic.load_config",
    "mpic.load_config(path) -> cfg | nil, err",
    "Load and check a configuration file; it becomes the current one.",
  },
  {
    "mpic.perspectives",
    "mpic.perspectives() -> list",
    "The configured perspectives: id, rir, location, provider, health.",
  },
  {
    "mpic.dns.query",
    "mpic.dns.query(name, rtype [, {perspective = ID}]) -> result | nil, kind, detail",
    "A DNS query from one perspective's resolvers (rtype: one of mpic.dns.TYPES).",
  },
  {
    "mpic.http.get",
    "mpic.http.get(url [, {perspective = ID}]) -> response | nil, kind, detail",
    "One HTTP request (no redirects) from a perspective.",
  },
  {
    "mpic.http.fetch",
    "mpic.http.fetch(url [, {perspective = ID}]) -> response | nil, kind, detail",
    "An HTTP fetch following redirects under the http-01 rules.",
  },
  {
    "mpic.tls.alpn",
    "mpic.tls.alpn(host [, {perspective = ID, sni = NAME}]) -> handshake | nil, kind, detail",
    "A TLS handshake offering acme-tls/1; the peer certificate's facts.",
  },
  { "mpic.spawn", "mpic.spawn(fn, ...) -> task", "Run fn(...) as a child task of the current one." },
  { "mpic.wait", "mpic.wait(task [, timeout_ms]) -> results | nil, kind, msg", "Wait for a task's results." },
  {
    "mpic.wait_first",
    "mpic.wait_first(tasks, k [, timeout_ms]) -> finished tasks",
    "Wait until k of the tasks finished.",
  },
  { "mpic.wait_all", "mpic.wait_all(tasks [, timeout_ms])", "Wait until every task finished." },
  {
    "mpic.with_timeout",
    'mpic.with_timeout(ms, fn, ...) -> results | nil, "timeout", msg',
    "Run fn(...) as a child task with a deadline; cancelled when it passes.",
  },
  { "mpic.map", "mpic.map(items, fn) -> list of packed results", "Run fn(item) for every item concurrently." },
  { "mpic.sleep", "mpic.sleep(ms)", "Suspend the current task for ms milliseconds." },
  { "mpic.cancel", "mpic.cancel(task)", "Cancel a task and everything it started." },
  { "mpic.current", "mpic.current() -> task", "The running task." },
  { "mpic.now", "mpic.now() -> ms", "Monotonic milliseconds." },
  { "mpic.stats", "mpic.stats() -> table", "Scheduler counters (tasks, pending operations)." },
  { "mpic.sha256", "mpic.sha256(s) -> bytes", "SHA-256 digest (raw bytes; mpic.hex for text)." },
  { "mpic.hex", "mpic.hex(bytes) -> string", "Lower-case hexadecimal." },
  { "mpic.base64", "mpic.base64(bytes) -> string", "Base64 with padding." },
  { "mpic.base64url", "mpic.base64url(bytes) -> string", "Base64url without padding (ACME's encoding)." },
  { "mpic.base32", "mpic.base32(bytes) -> string", "Base32 (RFC 4648)." },
  { "mpic.distance_km", "mpic.distance_km(lat1, lon1, lat2, lon2) -> km", "Great-circle distance." },
  {
    "mpic.json.encode",
    "mpic.json.encode(value [, {pretty = true, sort = true}]) -> text | nil, err",
    "JSON text of a Lua value.",
  },
  {
    "mpic.json.decode",
    "mpic.json.decode(text) -> value | nil, err",
    "A Lua value from JSON (null is mpic.json.null).",
  },
  { "mpic.json.array", "mpic.json.array([t]) -> t", "Mark a table to encode as a JSON array (even when empty)." },
}

-- The value at a dotted name under _G, or nil.
local function lookup(name)
  local t = _G
  for part in name:gmatch("[^.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

--- The help text for a value (a function of mpic or its dotted name), or
--- the list of documented functions when v is nil.
function M.help_text(v)
  if v == nil then
    local out = { "mpic's functions (help(mpic.validate) for one; :help for the REPL's commands):" }
    for _, d in ipairs(M.DOCS) do
      out[#out + 1] = "  " .. d[2]
    end
    return table_concat(out, "\n")
  end
  for _, d in ipairs(M.DOCS) do
    if v == d[1] or (type(v) == "function" and lookup(d[1]) == v) then return d[2] .. "\n  " .. d[3] end
  end
  return string_format("no help for %s: help() lists mpic's functions", type(v) == "string" and v or type(v))
end

--- help([fn]): print the signature and a line of doc.
function M.help(v) print(M.help_text(v)) end

--- Run a ':' command line.
function M.command(line)
  local name = line:match("^:(%w+)")
  local c = name and commands[name]
  if not c then
    print("unknown command " .. line .. " (:help)")
    return
  end
  c.fn(line)
end

--- The command names (for completion and tests).
function M.command_names()
  local out = {}
  for _, n in ipairs(order) do
    out[#out + 1] = ":" .. n
  end
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
    for _, n in ipairs(M.command_names()) do
      if starts(n, word) then out[#out + 1] = n end
    end
    return out
  end
  -- a perspective id inside a string literal after `perspective =`
  local quote = before:match("perspective%s*=%s*([\"'])$")
  if quote then
    local out = {}
    for _, id in ipairs(perspective_ids(word)) do
      out[#out + 1] = id
    end
    return out
  end
  if before:match("[\"']$") then return {} end
  -- a dotted name: the word may follow other text (libedit splits at spaces
  -- and brackets; take the name at the end of the word)
  local lead, name = word:match("^(.-)([%a_][%w_%.]*)$")
  if not name or (lead ~= "" and lead:match("[%w_]$")) then return {} end
  local out = {}
  for i, c in ipairs(complete_name(name)) do
    out[i] = lead .. c
  end
  return out
end

-- Set-up --------------------------------------------------------------------

--- Load the configuration named by --config (or ./perspectives.yaml when it
--- exists), make `mpic` a global, return the banner.
function M.setup(args, parse_opts, load_config)
  local opts, err = parse_opts(args, { config = "value" })
  if not opts then error(err .. "\n" .. require("mpic.cmd.cli").usage_of("repl"), 0) end
  local mpic = require "mpic"
  _G.mpic = mpic
  _G.help = M.help
  local cfg
  cfg, err = load_config(opts.config, opts.config ~= nil)
  if err then error(err, 0) end
  if cfg then
    -- the context at start: broken challenge files are reported now, not
    -- at the first validation
    local ctx, cerr = require("mpic.orchestrator").context()
    if not ctx then io.stderr:write(tostring(cerr), "\n") end
  end
  local paths = package.loaded["mpic.paths"]
  return string_format(
    "mpic %s%s -- :help for commands, Tab completes, Ctrl-D leaves",
    tostring(paths.version),
    cfg and (" (" .. cfg.file .. ", " .. #cfg.perspectives .. " perspectives, policy " .. cfg.policy .. ")")
      or " (no config)"
  )
end

return M
