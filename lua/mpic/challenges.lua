-- mpic.challenges: the challenge-type registry. Discovers `*.lua` files in
-- the configured folders (files starting with "_" are helpers and skipped),
-- runs each in its own environment, validates the declaration it returns and
-- reports a broken file (syntax error, runtime error, bad declaration,
-- duplicate name) with its path and line without stopping the others.
-- Also: parameter validation against a declared schema, the sunset rule
-- (REFERENCE §1.9) and a fail-closed wrapper around check().
local M = {}

local type, pairs, ipairs, tostring, tonumber = type, pairs, ipairs, tostring, tonumber
local pcall, xpcall = pcall, xpcall
local setmetatable, loadfile, require = setmetatable, loadfile, require
local sfmt, concat, sort = string.format, table.concat, table.sort
local G = _G
local io_popen, os_time = io.popen, os.time
local package, debug, math_type = package, debug, math.type

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

-- Load one file; returns the declaration or nil, {path=, line=, message=}.
function M.load_file(path)
  local env = setmetatable({}, {__index = G})
  local chunk, err = loadfile(path, "t", env)
  if not chunk then
    return nil, {path = path, line = line_of(err, path), message = tostring(err)}
  end
  local ok, ch = xpcall(chunk, function(e) return e end)
  if not ok then
    return nil, {path = path, line = line_of(ch, path), message = tostring(ch)}
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
    local ok, more = pcall(ch.validate_params, params)
    if not ok then
      issues[#issues + 1] = {issue_type = "invalid-parameters", message = tostring(more)}
    elseif type(more) == "table" then
      for _, i in ipairs(more) do issues[#issues + 1] = i end
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

-- Run a check, failing closed on a script error or a malformed result.
function M.run(ch, target, params, probe)
  local prefix = ch.check_type == "caa" and "mpic_error:caa_checker:" or "mpic_error:dcv_checker:"
  local ok, res = pcall(ch.check, target, params or {}, probe)
  if not ok then
    return {passed = false, completed = false, details = {validation_method = ch.name},
            errors = {{error_type = prefix .. "script", error_message = "check failed: " .. tostring(res)}}}
  end
  if type(res) ~= "table" or type(res.passed) ~= "boolean" then
    return {passed = false, completed = false, details = {validation_method = ch.name},
            errors = {{error_type = prefix .. "script", error_message = "check returned no result table"}}}
  end
  if res.completed == nil then res.completed = false end
  res.passed = res.passed == true and res.completed == true
  res.details = res.details or {}
  return res
end

return M
