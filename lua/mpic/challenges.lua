-- mpic.challenges: the challenge-type registry. Discovers `*.lua` files in
-- the configured folders (files starting with "_" are helpers and skipped),
-- runs each in its own environment, validates the declaration it returns and
-- reports a broken file (syntax error, runtime error, bad declaration,
-- duplicate name) with its path and line without stopping the others.
-- Also: parameter validation against a declared schema, the sunset rule
-- (REFERENCE §1.9) and a fail-closed wrapper around check().
--
-- The sandbox. A challenge file is untrusted code: it runs in its own
-- environment holding only assert, error, ipairs, next, pairs, pcall,
-- select, tonumber, tostring, type, xpcall, rawequal, rawget, rawset,
-- rawlen, _VERSION, a getmetatable that only looks at tables, a
-- setmetatable that refuses __gc, copies of string (the bounded one of
-- mpic.core.sandbox: no dump, rep capped, pattern work charged), table
-- (loops in C capped, as for policies), math and utf8, `mpic` (time(),
-- the encodings and json) and a require that gives private copies of the
-- challenge helpers (mpic.challenge._*), private copies of mpic.target and
-- mpic.caa, and the hashing/encoding/IDNA/regex part of mpic.core.util.
-- No io, os, load, loadfile, dofile, debug, coroutine or print.
-- The file's main chunk, every check() and validate_params() run under an
-- instruction limit and a memory limit (mpic.core.sandbox); a check may
-- wait on its probes (they yield to the event loop with the check's limits
-- paused, and the limits follow the check across the yields). Data crosses
-- the boundary as copies made with raw access (arguments in, probe
-- arguments and results, the check's result out), so no function of the
-- file ever runs outside its limits. A limit, an error or a malformed
-- result is a failed, not-completed check (mpic_error:<dcv|caa>_checker:script).
local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local pcall, next, select, error, rawequal = pcall, next, select, error, rawequal
local setmetatable, getmetatable, loadfile, require = setmetatable, getmetatable, loadfile, require
local sfmt, concat, sort = string.format, table.concat, table.sort
local table_unpack = table.unpack
local G = _G
local io_popen, os_time = io.popen, os.time
local package, debug, math_type = package, debug, math.type
local sandbox = require "mpic.core.sandbox"
local sandbox_call = sandbox.call

M.LOAD_INSTRUCTION_LIMIT = 20000000   -- a file's main chunk (and its helpers)
M.LOAD_MEMORY_LIMIT = 32 << 20
M.CHECK_INSTRUCTION_LIMIT = 10000000  -- one check() (probes not counted)
M.CHECK_MEMORY_LIMIT = 64 << 20       -- bytes allocated by one check() itself
M.PARAMS_INSTRUCTION_LIMIT = 5000000  -- one validate_params()
M.PARAMS_MEMORY_LIMIT = 16 << 20
M.MAX_STRING_BYTES = 16 << 20         -- string.rep cap in the sandbox
M.MAX_COPY_ITEMS = 200000
M.MAX_COPY_DEPTH = 32

local CHECK_TYPES = {dcv = true, caa = true}
local PARAM_TYPES = {string = true, boolean = true, number = true, integer = true, table = true,
                     list = true, string_or_list = true}

-- The folder holding the built-in challenge files (beside this module).
function M.builtin_folder()
  local path = package.searchpath("mpic.challenges", package.path)
  if not path then return nil end
  return (path:gsub("challenges%.lua$", "challenge"))
end

local function shell_quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- File names (not paths) in a folder, sorted. Uses mpic.core.util.listdir when
-- the binary provides it, else `ls`.
function M.list_dir(folder)
  local ok, util = pcall(require, "mpic.core.util")
  if ok and type(util) == "table" and type(util.listdir) == "function" then
    local names, err = util.listdir(folder)
    if not names then return nil, err end
    sort(names)
    return names
  end
  local p = io_popen("ls -1A -- " .. shell_quote(folder) .. " 2>/dev/null")
  if not p then return nil, "cannot list " .. folder end
  local names = {}
  for line in p:lines() do names[#names + 1] = line end
  local okc = p:close()
  if not okc and #names == 0 then return nil, "cannot list " .. folder end
  sort(names)
  return names
end

local function valid_date(s)
  local y, m, d = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  m, d = tonumber(m), tonumber(d)
  return m >= 1 and m <= 12 and d >= 1 and d <= 31
end

-- Check a declaration table; returns true or false, message.
function M.validate_declaration(ch)
  if type(ch) ~= "table" then return false, "file must return a table, got " .. type(ch) end
  if type(ch.name) ~= "string" or not ch.name:match("^[a-z0-9][a-z0-9%-]*$") then
    return false, "missing or malformed field 'name'"
  end
  if not CHECK_TYPES[ch.check_type] then return false, "field 'check_type' must be \"dcv\" or \"caa\"" end
  if type(ch.br_section) ~= "string" then return false, "missing field 'br_section'" end
  if type(ch.identifiers) ~= "table" or not (ch.identifiers.dns or ch.identifiers.ip) then
    return false, "field 'identifiers' must accept dns and/or ip"
  end
  if ch.wildcard ~= "strip" and ch.wildcard ~= "reject" then
    return false, "field 'wildcard' must be \"strip\" or \"reject\""
  end
  if ch.sunset ~= nil and not valid_date(ch.sunset) then
    return false, "field 'sunset' must be a YYYY-MM-DD date"
  end
  if ch.caa_method_label ~= nil and (type(ch.caa_method_label) ~= "string"
      or not ch.caa_method_label:match("^[A-Za-z0-9%-]+$")) then
    return false, "field 'caa_method_label' must be an RFC 8657 label"
  end
  if type(ch.params) ~= "table" then return false, "missing field 'params' (the parameter schema)" end
  for k, spec in pairs(ch.params) do
    if type(k) ~= "string" or type(spec) ~= "table" or not PARAM_TYPES[spec.type] then
      return false, sfmt("params.%s: needs {type=<%s>}", tostring(k), "string|boolean|number|table|list|string_or_list")
    end
  end
  if type(ch.check) ~= "function" then return false, "missing function 'check'" end
  return true
end

-- "path:line: message" -> line (number) or nil.
local function line_of(msg, path)
  local s = tostring(msg)
  local i = s:find(path, 1, true)
  if i then
    local line = s:match("^:(%d+):", i + #path)
    if line then return tonumber(line) end
  end
  return tonumber(s:match(":(%d+):"))
end

local util_ok, util = pcall(require, "mpic.core.util")
if not util_ok then util = {} end
local ARRAY_MT, NULL = util.array_mt, util.null

-- Deep copy of data with raw access only (no metamethod runs): strings,
-- numbers, booleans, util.null and tables of them; a table keeps only the
-- JSON array metatable. Returns the copy or raises "what: reason".
local function copy_data(v, what)
  local count = 0
  local function copy(x, depth)
    local t = type(x)
    if t == "string" or t == "number" or t == "boolean" or t == "nil" or (NULL ~= nil and rawequal(x, NULL)) then
      return x
    end
    if t ~= "table" then error(sfmt("%s holds a %s", what, t), 0) end
    if depth > M.MAX_COPY_DEPTH then error(what .. " is nested too deeply", 0) end
    local out = {}
    local k, val = next(x)
    while k ~= nil do
      count = count + 1
      if count > M.MAX_COPY_ITEMS then error(what .. " is too large", 0) end
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then error(sfmt("%s has a %s key", what, kt), 0) end
      out[k] = copy(val, depth + 1)
      k, val = next(x, k)
    end
    if ARRAY_MT and rawequal(getmetatable(x), ARRAY_MT) then setmetatable(out, ARRAY_MT) end
    return out
  end
  return copy(v, 1)
end
M.copy_data = copy_data

-- Copies of a trusted module's fields for one sandbox: functions shared,
-- data copied, so a file cannot change what other code sees.
local function module_copy(mod)
  local out = {}
  for k, v in next, mod do
    if type(v) == "function" or type(v) ~= "table" then
      out[k] = v
    else
      local ok, c = pcall(copy_data, v, "module field")
      if ok then out[k] = c end
    end
  end
  return out
end

local UTIL_FUNCS = {"sha256", "hex", "base64", "base64url", "base64_decode", "base32", "regex_search",
                    "idna_to_ascii", "idna_check_alabel", "utf8_sanitize", "null", "array_mt"}
local SHARED = {["mpic.target"] = true, ["mpic.caa"] = true}

local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "number" or type(e) == "boolean" or e == nil then return tostring(e) end
  return "(error object of type " .. type(e) .. ")"
end

-- The environment of one challenge file (see the header).
function M.new_env()
  local policy = require "mpic.policy"
  local env = {}
  for _, k in ipairs({"assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                      "tostring", "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen"}) do
    env[k] = G[k]
  end
  env._VERSION = G._VERSION
  env.string = sandbox.strings(M.MAX_STRING_BYTES)
  env.table = policy.sandbox_table()
  local m = {}
  for k, v in pairs(math) do if k ~= "randomseed" then m[k] = v end end
  env.math = m
  local u = {}
  for k, v in pairs(utf8) do u[k] = v end
  env.utf8 = u
  env.getmetatable = function(x)
    if type(x) == "table" then return getmetatable(x) end
    return nil
  end
  env.setmetatable = function(x, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("setmetatable: __gc metamethods are not allowed in challenge files", 2)
    end
    return setmetatable(x, mt)
  end
  local u2 = {}
  for _, k in ipairs(UTIL_FUNCS) do u2[k] = util[k] end
  env.mpic = {time = function() return os_time() end, sha256 = util.sha256, hex = util.hex,
              base64 = util.base64, base64url = util.base64url, base32 = util.base32,
              json = {encode = util.json_encode, decode = util.json_decode, null = util.null}}
  local loaded = {}
  env.require = function(name)
    if loaded[name] ~= nil then return loaded[name] end
    local mod
    if name == "mpic.core.util" then
      mod = u2
    elseif SHARED[name] then
      mod = module_copy(require(name))
    elseif type(name) == "string" and name:match("^mpic%.challenge%._[%w_]+$") then
      local path = package.searchpath(name, package.path)
      local chunk, err
      if path then chunk, err = loadfile(path, "t", env) end
      if not chunk then error(sfmt("require %q: %s", name, describe(err or "module not found")), 2) end
      mod = chunk(name, path)
      if mod == nil then mod = true end
    else
      error(sfmt("require %s: not available to challenge files (only mpic.challenge._*, mpic.target, "
        .. "mpic.caa and mpic.core.util)", describe(name)), 2)
    end
    loaded[name] = mod
    return mod
  end
  env._G = env
  return env
end

local ENV_OF = setmetatable({}, {__mode = "k"}) -- declaration -> its file's env

-- The declaration's fields read with raw access (functions kept, data copied).
local function raw_declaration(ch)
  if type(ch) ~= "table" then return ch end
  local out = {}
  local k, v = next(ch)
  while k ~= nil do
    if type(v) == "table" then
      local ok, c = pcall(copy_data, v, "field " .. tostring(k))
      if not ok then error(c, 0) end
      v = c
    end
    out[k] = v
    k, v = next(ch, k)
  end
  return out
end

-- Load one file; returns the declaration or nil, {path=, line=, message=}.
function M.load_file(path)
  sandbox.install_string_index()
  local env = M.new_env()
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    return nil, {path = path, line = line_of(err, path), message = tostring(err)}
  end
  local box = sandbox.new{instructions = M.LOAD_INSTRUCTION_LIMIT, memory = M.LOAD_MEMORY_LIMIT,
                          strings = env.string}
  local ok, ch, msg = sandbox_call(box, function() return raw_declaration(chunk()) end)
  if not ok then
    return nil, {path = path, line = line_of(msg, path), message = describe(msg)}
  end
  local good, why = M.validate_declaration(ch)
  if not good then
    -- point at the line of the returned table's check function when there is one
    local line
    if type(ch) == "table" and type(ch.check) == "function" then
      line = debug.getinfo(ch.check, "S").linedefined
    end
    return nil, {path = path, line = line, message = path .. ": " .. why}
  end
  ch.path = path
  ENV_OF[ch] = env
  return ch
end

-- Load every challenge file from the folders (list of paths; default: the
-- built-in folder). Returns a registry:
--   {by_name = {[name]=decl}, list = {decl...}, errors = { {path=, line=, message=} ... }}
function M.load(folders)
  folders = folders or {M.builtin_folder()}
  local reg = {by_name = {}, list = {}, errors = {}}
  for _, folder in ipairs(folders) do
    local names, lerr = M.list_dir(folder)
    if not names then
      reg.errors[#reg.errors + 1] = {path = folder, message = tostring(lerr)}
    else
      for _, n in ipairs(names) do
        if n:match("%.lua$") and n:sub(1, 1) ~= "_" and n:sub(1, 1) ~= "." then
          local path = folder:gsub("/$", "") .. "/" .. n
          local ch, err = M.load_file(path)
          if not ch then
            reg.errors[#reg.errors + 1] = err
          elseif reg.by_name[ch.name] then
            reg.errors[#reg.errors + 1] = {path = path, message = sfmt(
              "%s: challenge name %q already defined by %s", path, ch.name, reg.by_name[ch.name].path)}
          else
            reg.by_name[ch.name] = ch
            reg.list[#reg.list + 1] = ch
          end
        end
      end
    end
  end
  return reg
end

-- Human-readable lines for the load errors ("path:line: message").
function M.format_errors(reg)
  local out = {}
  for _, e in ipairs(reg.errors) do
    local m = e.message
    if e.line and not tostring(m):find(e.path .. ":" .. e.line, 1, true) then
      m = sfmt("%s:%d: %s", e.path, e.line, m)
    end
    out[#out + 1] = m
  end
  return concat(out, "\n")
end

local function type_ok(spec, v)
  local t = spec.type
  if t == "string" then return type(v) == "string" end
  if t == "boolean" then return type(v) == "boolean" end
  if t == "number" then return type(v) == "number" end
  if t == "integer" then return math_type(v) == "integer" end
  if t == "table" then return type(v) == "table" end
  if t == "list" then return type(v) == "table" end
  if t == "string_or_list" then return type(v) == "string" or type(v) == "table" end
  return false
end

-- Validate request parameters against the schema and the challenge's own
-- validate_params hook. Returns a list of issues {issue_type=, message=} (empty if fine).
function M.validate_params(ch, params)
  local issues = {}
  params = params or {}
  if type(params) ~= "table" then
    return {{issue_type = "invalid-parameters", message = "parameters must be an object"}}
  end
  local keys = {}
  for k in pairs(ch.params) do keys[#keys + 1] = k end
  sort(keys)
  for _, k in ipairs(keys) do
    local spec, v = ch.params[k], params[k]
    if v == nil then
      if spec.required then
        issues[#issues + 1] = {issue_type = "invalid-parameters", message = "missing required parameter " .. k}
      end
    elseif not type_ok(spec, v) then
      issues[#issues + 1] = {issue_type = "invalid-parameters",
                             message = sfmt("parameter %s must be of type %s", k, spec.type)}
    elseif spec.enum then
      local found = false
      for _, e in ipairs(spec.enum) do if e == v then found = true end end
      if not found then
        local it = k == "dns_record_type" and "invalid-validation-method-record-type-combination"
          or (k == "certificate_type" and "invalid-certificate-type" or "invalid-parameters")
        issues[#issues + 1] = {issue_type = it,
                               message = sfmt("parameter %s must be one of %s", k, concat(spec.enum, ", "))}
      end
    end
  end
  if #issues == 0 and type(ch.validate_params) == "function" then
    local env = ENV_OF[ch]
    local box = sandbox.new{instructions = M.PARAMS_INSTRUCTION_LIMIT, memory = M.PARAMS_MEMORY_LIMIT,
                            strings = env and env.string or sandbox.strings(M.MAX_STRING_BYTES)}
    local ok, more, msg = sandbox_call(box, function(p)
      return copy_data(ch.validate_params(copy_data(p, "parameters")), "validate_params result")
    end, params)
    if not ok then
      issues[#issues + 1] = {issue_type = "invalid-parameters", message = describe(msg)}
    elseif type(more) == "table" then
      for _, i in ipairs(more) do
        if type(i) == "table" and type(i.message) == "string" then
          issues[#issues + 1] = {issue_type = type(i.issue_type) == "string" and i.issue_type or "invalid-parameters",
                                 message = i.message}
        end
      end
    end
  end
  return issues
end

-- True when the method may no longer be used for new requests at time now
-- (Unix seconds, default os.time()): from 00:00 UTC on the sunset date on.
function M.is_retired(ch, now)
  if not ch.sunset then return false end
  local y, m, d = ch.sunset:match("^(%d+)%-(%d+)%-(%d+)$")
  -- seconds since the epoch of that UTC midnight (days-from-civil)
  y, m, d = tonumber(y), tonumber(m), tonumber(d)
  if m <= 2 then y = y - 1 end
  local era = y // 400
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = (153 * mp + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  local days = era * 146097 + doe - 719468
  return (now or os_time()) >= days * 86400
end

-- The probe as a check sees it: data fields copied, each function wrapped
-- so that its arguments are copied in (no function of the file reaches the
-- probe's code), it runs with the check's limits paused (it is trusted and
-- yields to the event loop) and its results are copied out.
local function sandbox_probe(probe)
  local out = {}
  if type(probe) ~= "table" then return out end
  local k, v = next(probe)
  while k ~= nil do
    if type(v) == "function" then
      local fn = sandbox.unbounded(v)
      local name = "probe." .. tostring(k)
      out[k] = function(...)
        local n = select("#", ...)
        local args = {...}
        for i = 1, n do args[i] = copy_data(args[i], name .. " argument " .. i) end
        local r = table.pack(fn(table_unpack(args, 1, n)))
        for i = 1, r.n do r[i] = copy_data(r[i], name .. " result") end
        return table_unpack(r, 1, r.n)
      end
    elseif type(v) == "table" then
      local ok, c = pcall(copy_data, v, "probe." .. tostring(k))
      if ok then out[k] = c end
    else
      out[k] = v
    end
    k, v = next(probe, k)
  end
  return out
end

local function script_failure(ch, prefix, message)
  return {passed = false, completed = false, details = {validation_method = ch.name},
          errors = {{error_type = prefix .. "script", error_message = message}}}
end

-- Run a check in the sandbox, failing closed on a script error, a limit or
-- a malformed result.
function M.run(ch, target, params, probe)
  local prefix = ch.check_type == "caa" and "mpic_error:caa_checker:" or "mpic_error:dcv_checker:"
  local env = ENV_OF[ch]
  local box = sandbox.new{instructions = M.CHECK_INSTRUCTION_LIMIT, memory = M.CHECK_MEMORY_LIMIT,
                          strings = env and env.string or sandbox.strings(M.MAX_STRING_BYTES),
                          yieldable = true}
  local ok, res, msg = sandbox_call(box, function(t, p, pr)
    return ch.check(copy_data(t, "target"), copy_data(p, "parameters"), sandbox_probe(pr))
  end, target, params or {}, probe)
  if not ok then
    local what = res == "instructions" and "check stopped: " .. describe(msg) .. " (the challenge file's code ran too long)"
      or res == "memory" and "check stopped: " .. describe(msg) .. " (the challenge file's code allocated too much)"
      or "check failed: " .. describe(msg)
    return script_failure(ch, prefix, what)
  end
  local cok, copy = pcall(copy_data, res, "check result")
  if not cok then return script_failure(ch, prefix, "check returned a malformed result: " .. describe(copy)) end
  res = copy
  if type(res) ~= "table" or type(res.passed) ~= "boolean" then
    return script_failure(ch, prefix, "check returned no result table")
  end
  if res.completed == nil then res.completed = false end
  res.passed = res.passed == true and res.completed == true
  res.details = type(res.details) == "table" and res.details or {}
  return res
end

return M
