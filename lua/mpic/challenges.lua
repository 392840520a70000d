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
-- challenge helpers (mpic.challenge._*), private copies of mpic.target,
-- mpic.caa and mpic.error_types, and the hashing/encoding/IDNA/regex part of
-- mpic.core.util.
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
local pcall, next, select, error = pcall, next, select, error
local setmetatable, loadfile, require = setmetatable, loadfile, require
local sfmt, concat, sort = string.format, table.concat, table.sort
local table_unpack = table.unpack
local os_time = os.time
local package, debug, math_type = package, debug, math.type
local sandbox = require "mpic.core.sandbox"
local util = require "mpic.core.util"
local sandbox_call = sandbox.call

M.LOAD_INSTRUCTION_LIMIT = 20000000 -- a file's main chunk (and its helpers)
M.LOAD_MEMORY_LIMIT = 32 << 20
M.CHECK_INSTRUCTION_LIMIT = 10000000 -- one check() (probes not counted)
M.CHECK_MEMORY_LIMIT = 64 << 20 -- bytes allocated by one check() itself
M.PARAMS_INSTRUCTION_LIMIT = 5000000 -- one validate_params()
M.PARAMS_MEMORY_LIMIT = 16 << 20
M.MAX_STRING_BYTES = 16 << 20 -- string.rep cap in the sandbox
M.MAX_COPY_ITEMS = 200000
M.MAX_COPY_DEPTH = 32

local CHECK_TYPES = { dcv = true, caa = true }
local PARAM_TYPES = {
  string = true,
  boolean = true,
  number = true,
  integer = true,
  table = true,
  list = true,
  string_or_list = true,
}

-- The folder holding the built-in challenge files (beside this module).
function M.builtin_folder()
  local path = package.searchpath("mpic.challenges", package.path)
  if not path then return nil end
  return (path:gsub("challenges%.lua$", "challenge"))
end

-- File names (not paths) in a folder, sorted (mpic.core.util.listdir).
function M.list_dir(folder) return util.listdir(folder) end

local function valid_date(s)
  local y, m, d = tostring(s):match("^(%d%d%d%d)%-(%d%d)%-(%d%d)$")
  if not y then return false end
  m, d = tonumber(m), tonumber(d)
  return m >= 1 and m <= 12 and d >= 1 and d <= 31
end

-- A short description of a value for "expected X, got Y".
local function got(v)
  local t = type(v)
  if v == nil then return "nothing" end
  if t == "string" then
    local s = #v > 40 and v:sub(1, 40) .. "..." or v
    return sfmt("the string %q", s)
  end
  if t == "number" or t == "boolean" then return sfmt("the %s %s", t, tostring(v)) end
  return "a " .. t
end

local function is_section(v)
  return type(v) == "string" and v:match("^%d+%.%d+[%d%.]*$") ~= nil and not v:find("..", 1, true) and v:sub(-1) ~= "."
end

local PARAM_TYPE_LIST = "string, boolean, number, integer, table, list or string_or_list"
local SPEC_KEYS = { type = true, required = true, enum = true, description = true }

-- The closed schema of a declaration: every field a challenge file may
-- return, whether it is required, what it must be (a predicate) and the
-- words for "expected". Order is the order of the report. See
-- docs/CHALLENGES.md.
M.SCHEMA = {
  {
    field = "name",
    required = true,
    expected = "a name of lowercase letters, digits and '-'",
    ok = function(v) return type(v) == "string" and v:match("^[a-z0-9][a-z0-9%-]*$") ~= nil and #v <= 64 end,
  },
  { field = "check_type", required = true, expected = '"dcv" or "caa"', ok = function(v) return CHECK_TYPES[v] end },
  {
    field = "br_section",
    required = true,
    expected = 'a BR section as a string, such as "3.2.2.4.7"',
    ok = is_section,
  },
  {
    field = "br_section_ip",
    expected = 'the BR section for IP address targets as a string, such as "3.2.2.5.6"',
    ok = is_section,
  },
  {
    field = "identifiers",
    required = true,
    expected = "{dns = <boolean>, ip = <boolean>} accepting at least one kind",
    ok = function(v)
      if type(v) ~= "table" then return false end
      for k, x in pairs(v) do
        if (k ~= "dns" and k ~= "ip") or type(x) ~= "boolean" then return false end
      end
      return v.dns == true or v.ip == true
    end,
  },
  {
    field = "wildcard",
    required = true,
    expected = '"strip" or "reject"',
    ok = function(v) return v == "strip" or v == "reject" end,
  },
  {
    field = "sunset",
    expected = "a YYYY-MM-DD date (the first day the method may not be used)",
    ok = function(v) return type(v) == "string" and valid_date(v) end,
  },
  {
    field = "caa_method_label",
    expected = "an RFC 8657 validationmethods label (letters, digits, '-')",
    ok = function(v) return type(v) == "string" and v:match("^[A-Za-z0-9%-]+$") ~= nil end,
  },
  {
    field = "params",
    required = true,
    expected = "the parameter schema: {name = {type = ..., required = ...}, ...}",
    ok = function(v) return type(v) == "table" end,
  },
  {
    field = "check",
    required = true,
    expected = "a function check(target, params, probe)",
    ok = function(v) return type(v) == "function" end,
  },
  {
    field = "validate_params",
    expected = "a function validate_params(params) returning a list of issues",
    ok = function(v) return type(v) == "function" end,
  },
  {
    field = "helpers",
    expected = "a table of functions (exported for unit tests)",
    ok = function(v)
      if type(v) ~= "table" then return false end
      for k, f in pairs(v) do
        if type(k) ~= "string" or type(f) ~= "function" then return false end
      end
      return true
    end,
  },
}
local SCHEMA_BY_FIELD = {}
for _, f in ipairs(M.SCHEMA) do
  SCHEMA_BY_FIELD[f.field] = f
end

-- Every problem of one parameter spec, appended to problems.
local function check_param_spec(k, spec, problems)
  local field = "params." .. tostring(k)
  if type(k) ~= "string" or not k:match("^[%a_][%w_]*$") then
    problems[#problems + 1] = {
      field = "params",
      expected = "parameter names of letters, digits and '_'",
      got = got(k),
    }
    return
  end
  if type(spec) ~= "table" then
    problems[#problems + 1] = { field = field, expected = "{type = <" .. PARAM_TYPE_LIST .. ">}", got = got(spec) }
    return
  end
  local keys = {}
  for sk in pairs(spec) do
    keys[#keys + 1] = tostring(sk)
  end
  sort(keys)
  for _, sk in ipairs(keys) do
    if not SPEC_KEYS[sk] then
      problems[#problems + 1] = {
        field = field .. "." .. sk,
        expected = "no such key (type, required, enum, description)",
        got = got(spec[sk]),
      }
    end
  end
  if not PARAM_TYPES[spec.type] then
    problems[#problems + 1] = { field = field .. ".type", expected = PARAM_TYPE_LIST, got = got(spec.type) }
  end
  if spec.required ~= nil and type(spec.required) ~= "boolean" then
    problems[#problems + 1] = { field = field .. ".required", expected = "a boolean", got = got(spec.required) }
  end
  if spec.description ~= nil and type(spec.description) ~= "string" then
    problems[#problems + 1] = { field = field .. ".description", expected = "a string", got = got(spec.description) }
  end
  if spec.enum ~= nil then
    local good = type(spec.enum) == "table" and #spec.enum > 0
    if good then
      for _, e in pairs(spec.enum) do
        local t = type(e)
        if t ~= "string" and t ~= "number" and t ~= "boolean" then good = false end
      end
    end
    if not good then
      problems[#problems + 1] = {
        field = field .. ".enum",
        expected = "a non-empty list of allowed values",
        got = got(spec.enum),
      }
    end
  end
end

--- Every problem of a declaration against M.SCHEMA, in the schema's order
--- then unknown fields: a list of {field=, expected=, got=} (empty when fine).
function M.declaration_problems(ch)
  if type(ch) ~= "table" then
    return { { field = "(file)", expected = "the file to return a declaration table", got = got(ch) } }
  end
  local problems = {}
  for _, f in ipairs(M.SCHEMA) do
    local v = ch[f.field]
    if v == nil then
      if f.required then
        problems[#problems + 1] = { field = f.field, expected = f.expected, got = "nothing (missing)" }
      end
    elseif not f.ok(v) then
      problems[#problems + 1] = { field = f.field, expected = f.expected, got = got(v) }
    end
  end
  if type(ch.params) == "table" then
    local keys = {}
    for k in pairs(ch.params) do
      keys[#keys + 1] = k
    end
    sort(keys, function(a, b) return tostring(a) < tostring(b) end)
    for _, k in ipairs(keys) do
      check_param_spec(k, ch.params[k], problems)
    end
  end
  if type(ch.identifiers) == "table" and ch.br_section_ip ~= nil and ch.identifiers.ip ~= true then
    problems[#problems + 1] = {
      field = "br_section_ip",
      expected = "no br_section_ip unless identifiers.ip is true",
      got = got(ch.br_section_ip),
    }
  end
  local unknown = {}
  for k in pairs(ch) do
    if not SCHEMA_BY_FIELD[k] then unknown[#unknown + 1] = tostring(k) end
  end
  sort(unknown)
  for _, k in ipairs(unknown) do
    problems[#problems + 1] = {
      field = k,
      expected = "no such field (known: " .. M.schema_fields() .. ")",
      got = got(ch[k]),
    }
  end
  return problems
end

--- The declaration's fields, comma-separated, in schema order.
function M.schema_fields()
  local out = {}
  for _, f in ipairs(M.SCHEMA) do
    out[#out + 1] = f.field
  end
  return concat(out, ", ")
end

--- One line of a problem: "field 'x': expected ..., got ...".
function M.format_problem(p) return sfmt("field '%s': expected %s, got %s", p.field, p.expected, p.got) end

-- Check a declaration table; returns true or false, message (every problem,
-- one per line).
function M.validate_declaration(ch)
  local problems = M.declaration_problems(ch)
  if #problems == 0 then return true end
  local lines = {}
  for _, p in ipairs(problems) do
    lines[#lines + 1] = M.format_problem(p)
  end
  return false, concat(lines, "\n"), problems
end

--- The BR section a validation of target (an mpic.target table) is made
--- under: br_section_ip for an IP address when the declaration has one.
function M.br_section_for(ch, target)
  if type(target) == "table" and target.kind == "ip" and ch.br_section_ip then return ch.br_section_ip end
  return ch.br_section
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

local ARRAY_MT, NULL = util.array_mt, util.null

-- Deep copy of data with raw access only (no metamethod runs): strings,
-- numbers, booleans, util.null and tables of them; a table keeps only the
-- JSON array metatable. Returns the copy or raises "what: reason". The copy
-- is made in C (mpic.core.sandbox.copy: tables created at their final size;
-- inside a bounded call the entries count against its instruction limit).
local sandbox_copy = sandbox.copy
local function copy_data(v, what)
  local ok, c = sandbox_copy(v, what, M.MAX_COPY_ITEMS, M.MAX_COPY_DEPTH, NULL, ARRAY_MT)
  if not ok then error(c, 0) end
  return c
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

local UTIL_FUNCS = {
  "sha256",
  "hex",
  "base64",
  "base64url",
  "base64_decode",
  "base32",
  "regex_search",
  "idna_to_ascii",
  "idna_check_alabel",
  "utf8_sanitize",
  "null",
  "array_mt",
}
local SHARED = { ["mpic.target"] = true, ["mpic.caa"] = true, ["mpic.error_types"] = true }

local function describe(e)
  if type(e) == "string" then return e end
  if type(e) == "number" or type(e) == "boolean" or e == nil then return tostring(e) end
  return "(error object of type " .. type(e) .. ")"
end

-- The environment of one challenge file (see the header).
function M.new_env()
  local policy = require "mpic.policy"
  local env = policy.base_env("challenge files", M.MAX_STRING_BYTES, { randomseed = true })
  local u2 = {}
  for _, k in ipairs(UTIL_FUNCS) do
    u2[k] = util[k]
  end
  env.mpic = {
    time = function() return os_time() end,
    sha256 = util.sha256,
    hex = util.hex,
    base64 = util.base64,
    base64url = util.base64url,
    base32 = util.base32,
    json = { encode = util.json_encode, decode = util.json_decode, null = util.null },
  }
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
      if path then
        chunk, err = loadfile(path, "t", env)
      end
      if not chunk then error(sfmt("require %q: %s", name, describe(err or "module not found")), 2) end
      mod = chunk(name, path)
      if mod == nil then mod = true end
    else
      error(
        sfmt(
          "require %s: not available to challenge files (only mpic.challenge._*, mpic.target, "
            .. "mpic.caa, mpic.error_types and mpic.core.util)",
          describe(name)
        ),
        2
      )
    end
    loaded[name] = mod
    return mod
  end
  env._G = env
  return env
end

local ENV_OF = setmetatable({}, { __mode = "k" }) -- declaration -> its file's env

-- The declaration's fields read with raw access (functions kept, data
-- copied; helpers: its functions kept). Returns the copy and the problems
-- met while copying ({field=, expected=, got=}).
local function raw_declaration(ch)
  if type(ch) ~= "table" then return ch, {} end
  local out, problems = {}, {}
  local k, v = next(ch)
  while k ~= nil do
    if type(k) ~= "string" then
      problems[#problems + 1] = { field = tostring(k), expected = "field names that are strings", got = got(k) }
    elseif k == "helpers" and type(v) == "table" then
      local h = {}
      local hk, hv = next(v)
      while hk ~= nil do
        h[hk] = type(hv) == "function" and hv or type(hv)
        hk, hv = next(v, hk)
      end
      out[k] = h
    elseif type(v) == "table" then
      local ok, c = pcall(copy_data, v, "field " .. k)
      if ok then
        out[k] = c
      else
        problems[#problems + 1] = {
          field = k,
          expected = "plain data (strings, numbers, booleans, tables)",
          got = describe(c),
        }
      end
    else
      out[k] = v
    end
    k, v = next(ch, k)
  end
  return out, problems
end

-- The first line of the file where field is set ("field =" at a line's
-- start or after "{" or ","), for the report; nil when not found.
local function field_line(lines, field)
  local pat1 = "^%s*" .. field:gsub("[%.%-]", "%%%0") .. "%s*="
  local pat2 = "[{,]%s*" .. field:gsub("[%.%-]", "%%%0") .. "%s*="
  for i, l in ipairs(lines) do
    if l:find(pat1) or l:find(pat2) then return i end
  end
  return nil
end

local function file_lines(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local text = f:read(1 << 20) or ""
  f:close()
  local lines = {}
  for l in (text .. "\n"):gmatch("([^\n]*)\n") do
    lines[#lines + 1] = l
  end
  return lines
end

-- Load one file; returns the declaration or nil, {path=, line=, message=}.
function M.load_file(path)
  sandbox.install_string_index()
  local env = M.new_env()
  local chunk, err = loadfile(path, "t", env)
  if not chunk then return nil, { path = path, line = line_of(err, path), message = tostring(err) } end
  local box = sandbox.new {
    instructions = M.LOAD_INSTRUCTION_LIMIT,
    memory = M.LOAD_MEMORY_LIMIT,
    strings = env.string,
  }
  -- success: true, declaration, copy problems; failure: nil, kind, message
  local ok, ch, msg = sandbox_call(box, function() return raw_declaration(chunk()) end)
  if not ok then return nil, { path = path, line = line_of(msg, path), message = describe(msg) } end
  local problems = M.declaration_problems(ch)
  for _, p in ipairs(msg or {}) do
    problems[#problems + 1] = p
  end
  if #problems > 0 then
    -- every problem at once, each with the line where its field is set
    -- (else the line of the check function, else none)
    local lines, out = file_lines(path), {}
    local fallback
    if type(ch) == "table" and type(ch.check) == "function" then fallback = debug.getinfo(ch.check, "S").linedefined end
    for _, p in ipairs(problems) do
      p.line = field_line(lines, (p.field:match("^[^%.]+%.([^%.]+)") or p.field:match("^[^%.]+")) or p.field)
        or field_line(lines, p.field:match("^[^%.]+") or p.field)
        or fallback
      out[#out + 1] = p.line and sfmt("%s:%d: %s", path, p.line, M.format_problem(p))
        or sfmt("%s: %s", path, M.format_problem(p))
    end
    return nil, { path = path, line = problems[1].line, message = concat(out, "\n"), problems = problems }
  end
  if ch.helpers then
    -- a helper is the file's code: called from outside it runs under the
    -- validate_params limits with its arguments and results copied
    local wrapped = {}
    for hname, fn in pairs(ch.helpers) do
      wrapped[hname] = function(...)
        local hbox = sandbox.new {
          instructions = M.PARAMS_INSTRUCTION_LIMIT,
          memory = M.PARAMS_MEMORY_LIMIT,
          strings = env.string,
        }
        local args = table.pack(...)
        for i = 1, args.n do
          args[i] = copy_data(args[i], "helper argument")
        end
        local r = table.pack(sandbox_call(hbox, fn, table_unpack(args, 1, args.n)))
        if not r[1] then error(sfmt("helper %s: %s", hname, describe(r[3])), 2) end
        for i = 2, r.n do
          r[i] = copy_data(r[i], "helper result")
        end
        return table_unpack(r, 2, r.n)
      end
    end
    ch.helpers = wrapped
  end
  ch.path = path
  ENV_OF[ch] = env
  return ch
end

-- Load every challenge file from the folders (list of paths; default: the
-- built-in folder). Returns a registry:
--   {by_name = {[name]=decl}, list = {decl...}, errors = { {path=, line=, message=} ... }}
function M.load(folders)
  folders = folders or { M.builtin_folder() }
  local reg = { by_name = {}, list = {}, errors = {} }
  for _, folder in ipairs(folders) do
    local names, lerr = M.list_dir(folder)
    if not names then
      reg.errors[#reg.errors + 1] = { path = folder, message = tostring(lerr) }
    else
      for _, n in ipairs(names) do
        -- helpers (_*.lua) and unit tests (*_test.lua) beside the methods are not methods
        if n:match("%.lua$") and n:sub(1, 1) ~= "_" and n:sub(1, 1) ~= "." and not n:match("_test%.lua$") then
          local path = folder:gsub("/$", "") .. "/" .. n
          local ch, err = M.load_file(path)
          if not ch then
            reg.errors[#reg.errors + 1] = err
          elseif reg.by_name[ch.name] then
            reg.errors[#reg.errors + 1] = {
              path = path,
              message = sfmt("%s: challenge name %q already defined by %s", path, ch.name, reg.by_name[ch.name].path),
            }
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

--- The folders of a configuration: the built-in one, then cfg.challenge_dirs.
function M.folders(cfg)
  local folders = { M.builtin_folder() }
  for _, d in ipairs(cfg and cfg.challenge_dirs or {}) do
    folders[#folders + 1] = d
  end
  return folders
end

--- Load the challenge types of a configuration. Returns the registry, or
--- nil, message when cfg.strict_challenges is set and a file is broken.
--- Without it a broken file is skipped (its method stays unknown) and each
--- problem is written to out (default io.stderr; false: nowhere).
function M.load_configured(cfg, out)
  local reg = M.load(M.folders(cfg))
  if #reg.errors == 0 then return reg end
  if cfg and cfg.strict_challenges then
    return nil,
      sfmt(
        "strict_challenges: refusing to start with %d broken challenge file(s):\n%s",
        #reg.errors,
        M.format_errors(reg)
      )
  end
  if out ~= false then
    out = out or io.stderr
    for line in (M.format_errors(reg) .. "\n"):gmatch("([^\n]*)\n") do
      out:write("mpic: challenge file skipped: ", line, "\n")
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
    return { { issue_type = "invalid-parameters", message = "parameters must be an object" } }
  end
  local keys = {}
  for k in pairs(ch.params) do
    keys[#keys + 1] = k
  end
  sort(keys)
  for _, k in ipairs(keys) do
    local spec, v = ch.params[k], params[k]
    if v == nil then
      if spec.required then
        issues[#issues + 1] = { issue_type = "invalid-parameters", message = "missing required parameter " .. k }
      end
    elseif not type_ok(spec, v) then
      issues[#issues + 1] = {
        issue_type = "invalid-parameters",
        message = sfmt("parameter %s must be of type %s", k, spec.type),
      }
    elseif spec.enum then
      local found = false
      for _, e in ipairs(spec.enum) do
        if e == v then found = true end
      end
      if not found then
        local it = k == "dns_record_type" and "invalid-validation-method-record-type-combination"
          or (k == "certificate_type" and "invalid-certificate-type" or "invalid-parameters")
        issues[#issues + 1] = {
          issue_type = it,
          message = sfmt("parameter %s must be one of %s", k, concat(spec.enum, ", ")),
        }
      end
    end
  end
  if #issues == 0 and type(ch.validate_params) == "function" then
    local env = ENV_OF[ch]
    local box = sandbox.new {
      instructions = M.PARAMS_INSTRUCTION_LIMIT,
      memory = M.PARAMS_MEMORY_LIMIT,
      strings = env and env.string or sandbox.strings(M.MAX_STRING_BYTES),
    }
    local ok, more, msg = sandbox_call(
      box,
      function(p) return copy_data(ch.validate_params(copy_data(p, "parameters")), "validate_params result") end,
      params
    )
    if not ok then
      issues[#issues + 1] = { issue_type = "invalid-parameters", message = describe(msg) }
    elseif type(more) == "table" then
      for _, i in ipairs(more) do
        if type(i) == "table" and type(i.message) == "string" then
          issues[#issues + 1] = {
            issue_type = type(i.issue_type) == "string" and i.issue_type or "invalid-parameters",
            message = i.message,
          }
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
-- yields to the event loop) and its results are copied out. A fresh table
-- per check; the wrappers (which hold nothing a check can change) are made
-- once per probe function and shared.
local WRAPPERS = setmetatable({}, { __mode = "k" }) -- probe function -> its wrapper

-- Probe functions whose results are built for each call and handed over
-- whole: plain tables (no metatable, no function) that no other code keeps
-- (the DNS binding's answers: mpic.perspectives marks probe.dns). The check
-- gets them without a copy; every other result is copied.
M.FRESH_RESULTS = setmetatable({}, { __mode = "k" })
local FRESH_RESULTS = M.FRESH_RESULTS

local function plain_scalar(t) return t == "string" or t == "number" or t == "boolean" or t == "nil" end

-- The wrapper of probe function v (field k), made once (sandbox.view keeps it).
local function make_wrapper(k, v)
  local fn = sandbox.unbounded(v)
  local name = "probe." .. tostring(k)
  local rname = name .. " result"
  -- a result that is not a plain scalar is copied (a table from a
  -- FRESH_RESULTS function is handed over)
  local function fix(x, fresh)
    local t = type(x)
    if plain_scalar(t) or (fresh and t == "table") then return x end
    return copy_data(x, rname)
  end
  local function out(...)
    local n = select("#", ...)
    if n == 0 then return end
    local fresh = FRESH_RESULTS[v]
    if n <= 4 then -- no table for the usual 1 to 4 results
      local r1, r2, r3, r4 = ...
      if n == 1 then return fix(r1, fresh) end
      if n == 2 then return fix(r1, fresh), fix(r2, fresh) end
      if n == 3 then return fix(r1, fresh), fix(r2, fresh), fix(r3, fresh) end
      return fix(r1, fresh), fix(r2, fresh), fix(r3, fresh), fix(r4, fresh)
    end
    local r = table.pack(...)
    for i = 1, n do
      r[i] = fix(r[i], fresh)
    end
    return table_unpack(r, 1, n)
  end
  return function(...)
    local n = select("#", ...)
    if n <= 2 then -- the usual call: up to 2 scalar arguments, passed as they are
      local a1, a2 = ...
      if plain_scalar(type(a1)) and plain_scalar(type(a2)) then
        if n == 2 then return out(fn(a1, a2)) end
        if n == 1 then return out(fn(a1)) end
        return out(fn())
      end
    end
    local args = { ... }
    for i = 1, n do
      local a = args[i]
      if not plain_scalar(type(a)) then args[i] = copy_data(a, name .. " argument " .. i) end
    end
    return out(fn(table_unpack(args, 1, n)))
  end
end

-- Probes that do not change once made (mpic.perspectives marks the probes of
-- configured perspectives): their view is built once and shared.
M.STABLE_PROBES = setmetatable({}, { __mode = "k" })
local STABLE_PROBES = M.STABLE_PROBES

-- The probe view, built in C (mpic.core.sandbox.view): the wrappers of the
-- probe's functions and copies of its data.
local sandbox_view = sandbox.view
local function build_view(probe)
  return sandbox_view(probe, WRAPPERS, make_wrapper, M.MAX_COPY_ITEMS, M.MAX_COPY_DEPTH, NULL, ARRAY_MT)
end

--[[ A stable probe's shared view, and the names of its table-valued fields.
A check gets a table of its own holding copies of those fields
(probe.config), reading everything else (functions, scalars) through the
shared view (__index). What a check writes stays in its own table; the
shared view is not reachable from it (__metatable), and pairs() lists the
view's fields and the check's own. ]]
local VIEWS = setmetatable({}, { __mode = "k" }) -- stable probe -> {mt, tables}
local function shared_view(probe)
  local sv = VIEWS[probe]
  if sv then return sv end
  local base = build_view(probe)
  -- what __index reads: the view without its tables, so a check that drops
  -- its own copy (probe.config = nil) finds nothing, not the shared original
  local tables, plain = {}, {}
  for k, v in next, base do
    if type(v) == "table" and v ~= NULL then
      tables[#tables + 1] = k
    else
      plain[k] = v
    end
  end
  local function pairs_of(t)
    local keys = {}
    for k in next, base do
      keys[#keys + 1] = k
    end
    for k in next, t do
      if base[k] == nil then keys[#keys + 1] = k end
    end
    local i = 0
    return function()
      i = i + 1
      local k = keys[i]
      if k == nil then return nil end
      return k, t[k]
    end,
      t,
      nil
  end
  sv = { mt = { __index = plain, __pairs = pairs_of, __metatable = false }, base = base, tables = tables }
  VIEWS[probe] = sv
  return sv
end

local function own_view(probe)
  local sv = shared_view(probe)
  local own = {}
  for _, k in ipairs(sv.tables) do
    own[k] = copy_data(sv.base[k], "probe." .. tostring(k))
  end
  return setmetatable(own, sv.mt)
end

-- The probe a check sees: a fresh view for every check (a stable probe's
-- view is shared, behind a table of the check's own).
local function sandbox_probe(probe)
  if STABLE_PROBES[probe] then return own_view(probe) end
  return build_view(probe)
end

local function script_failure(ch, prefix, message)
  return {
    passed = false,
    completed = false,
    details = { validation_method = ch.name },
    errors = { { error_type = prefix .. "script", error_message = message } },
  }
end

-- Run a check in the sandbox, failing closed on a script error, a limit or
-- a malformed result.
function M.run(ch, target, params, probe)
  local prefix = ch.check_type == "caa" and "mpic_error:caa_checker:" or "mpic_error:dcv_checker:"
  local env = ENV_OF[ch]
  local box = sandbox.new {
    instructions = M.CHECK_INSTRUCTION_LIMIT,
    memory = M.CHECK_MEMORY_LIMIT,
    strings = env and env.string or sandbox.strings(M.MAX_STRING_BYTES),
    yieldable = true,
  }
  -- the check's own copies of its inputs, made before the bounded call (trusted
  -- data: not charged to the file's limits)
  local maxi, maxd = M.MAX_COPY_ITEMS, M.MAX_COPY_DEPTH
  local tok, t = sandbox_copy(target, "target", maxi, maxd, NULL, ARRAY_MT)
  local pok, p = false, nil
  if tok then
    pok, p = sandbox_copy(params or {}, "parameters", maxi, maxd, NULL, ARRAY_MT)
  end
  local ok, res, msg
  if tok and pok then
    ok, res, msg = sandbox_call(box, ch.check, t, p, sandbox_probe(probe))
  else
    ok, res, msg = nil, "error", tok and p or t
  end
  if not ok then
    local what = res == "instructions"
        and "check stopped: " .. describe(msg) .. " (the challenge file's code ran too long)"
      or res == "memory" and "check stopped: " .. describe(msg) .. " (the challenge file's code allocated too much)"
      or "check failed: " .. describe(msg)
    return script_failure(ch, prefix, what)
  end
  local cok, copy = sandbox_copy(res, "check result", maxi, maxd, NULL, ARRAY_MT)
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
