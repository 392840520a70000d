-- mpic.policy: loads a corroboration policy file into a sandbox and calls it
-- safely.
--
-- Uses mpic.core.sandbox (bounded calls: instruction and memory limits,
-- bounded pattern matching, the strings' metatable dispatch), io (to read
-- the file) and mpic.core.util.sha256 when present (file hash for the audit
-- log).
--
-- The sandbox: each policy gets its own _ENV holding only assert, error,
-- ipairs, next, pairs, pcall, select, tonumber, tostring, type, xpcall,
-- rawequal, rawget, rawset, rawlen, _VERSION, copies of string (no dump;
-- rep capped at MAX_STRING_BYTES; find, match, gmatch and gsub charged a
-- bound of their backtracking work, refused beyond the instructions left),
-- table (move, insert and remove capped at MAX_TABLE_SPAN elements), math
-- (no random/randomseed: use the rng argument) and utf8, a getmetatable
-- that only looks at tables, a
-- setmetatable that refuses __gc, and a require that gives fresh private
-- copies of mpic.select, mpic.geo and mpic.quorum only. No io, os, load,
-- loadfile, dofile, debug, collectgarbage, coroutine or print; time comes in
-- as arguments (state.date, the date passed to check_config). Strings'
-- shared metatable loses `dump` process-wide (s:dump() has no legitimate
-- use) and, during a policy call, resolves s:method() in the policy's own
-- string table (so ("x"):rep(n) is the capped rep); elsewhere it is the
-- plain string library.
--
-- Every call (the file's main chunk, check_config, select, decide,
-- min_perspectives) runs under an instruction limit and a memory limit
-- (bytes allocated during the call). Errors, the limits,
-- yields and malformed returns fail closed: check_config/select/
-- min_perspectives return nil, reason; decide returns "invalid", reason.
-- Arguments are deep-copied in and results copied out with raw access, so a
-- policy never runs code (metamethods) outside its limit; decide_owned and
-- select_owned skip the copy in for tables built for that one call.
local type, pairs, ipairs, next, error, tostring, rawget, rawlen, rawequal, select =
  type, pairs, ipairs, next, error, tostring, rawget, rawlen, rawequal, select
local setmetatable, getmetatable, require, loadfile, load = setmetatable, getmetatable, require, loadfile, load
local string_format, string_byte = string.format, string.byte
local table_concat, table_move, table_insert, table_remove, math_type =
  table.concat, table.move, table.insert, table.remove, math.type
local sandbox = require "mpic.core.sandbox"
local sandbox_call = sandbox.call
local rules = require "mpic.rules"
local io_open, os_date = io.open, os.date
local package, _G, _VERSION = package, _G, _VERSION

local M = {}

M.DEFAULT_INSTRUCTION_LIMIT = 5000000
M.DEFAULT_MEMORY_LIMIT = 32 << 20
M.MAX_STRING_BYTES = 1 << 20
M.MAX_TABLE_SPAN = 1 << 22
M.MAX_FILE_BYTES = 1 << 20
M.MAX_COPY_ITEMS = 100000
M.MAX_COPY_DEPTH = 16
M.LIBRARIES = { ["mpic.select"] = true, ["mpic.geo"] = true, ["mpic.quorum"] = true }

local FIELDS = {
  name = "string",
  description = "string",
  check_config = "function",
  select = "function",
  decide = "function",
  min_perspectives = "function",
  wait_for_all = "boolean",
  primary_first = "boolean",
}
local REQUIRED = { "name", "select", "decide" }
local VERDICTS = { valid = true, invalid = true, undecided = true }

-- s:method() inside a bounded call resolves in the call's own string table.
local function harden_string_metatable() sandbox.install_string_index() end

-- Describe an error value without running any of its metamethods.
local function describe(e)
  if type(e) == "string" then
    return e
  elseif type(e) == "number" or type(e) == "boolean" or e == nil then
    return tostring(e)
  end
  return "(error object of type " .. type(e) .. ")"
end

-- Deep copy of plain data (strings, numbers, booleans, tables of them) using
-- raw access only. Returns the copy or nil, reason (naming the path of keys
-- to the problem). Made in C (mpic.core.sandbox.copy), each table created at
-- its final size.
local sandbox_copy = sandbox.copy
local function plain_copy(v, what)
  local ok, c = sandbox_copy(v, what, M.MAX_COPY_ITEMS, M.MAX_COPY_DEPTH, nil, nil, true)
  if ok then return c end
  return nil, c
end
M.plain_copy = plain_copy

-- A runner calls policy functions one at a time under the limits of its
-- box (mpic.core.sandbox): the instruction limit (a count hook on the
-- calling coroutine, charged limit/100 at a time, so the limit holds to
-- within 1%; pattern matching is charged a bound of its work), the memory
-- limit (bytes allocated during the call) and no yields (the call is not
-- yieldable). Once a limit is reached every instruction raises, so a pcall
-- in the script cannot swallow it. Returns (true, r1, r2, r3) or
-- (nil, reason).
local function finish(ok, a, b, c)
  if ok then return true, a, b, c end
  -- a = kind, b = message
  if a == "error" and type(b) == "string" and b:find("attempt to yield", 1, true) then
    return nil, "policy yielded, which is not allowed"
  end
  return nil, b
end

local function new_runner(limit, memory, strings)
  local box = sandbox.new({
    instructions = limit,
    memory = memory or M.DEFAULT_MEMORY_LIMIT,
    strings = strings or sandbox.strings(M.MAX_STRING_BYTES),
  })
  return function(fn, ...) return finish(sandbox_call(box, fn, ...)) end
end

local function fresh_library(name)
  local path = package.searchpath(name, package.path)
  local chunk, err
  if path then
    chunk, err = loadfile(path, "t")
  elseif package.preload[name] then
    chunk = package.preload[name]
    path = ":preload:"
  else
    err = "module not found"
  end
  if not chunk then error(string_format("require %q: %s", name, describe(err)), 0) end
  return chunk(name, path)
end

-- A copy of the table library whose loops in C are bounded: move, insert
-- and remove touch at most MAX_TABLE_SPAN elements (a __len or a range of
-- 2^62 would otherwise loop in C, out of the instruction count's reach).
function M.sandbox_table()
  local t = {}
  for k, v in pairs(table) do
    t[k] = v
  end
  local span = M.MAX_TABLE_SPAN
  t.move = function(a1, f, e, tpos, a2)
    if math_type(f) == "integer" and math_type(e) == "integer" and e >= f and (e - f >= span or e - f < 0) then
      error("table.move: more than " .. span .. " elements", 2)
    end
    return table_move(a1, f, e, tpos, a2)
  end
  t.insert = function(list, ...)
    if select("#", ...) == 2 and #list >= span then
      error("table.insert: list longer than " .. span .. " elements", 2)
    end
    return table_insert(list, ...)
  end
  t.remove = function(list, ...)
    if #list >= span then error("table.remove: list longer than " .. span .. " elements", 2) end
    return table_remove(list, ...)
  end
  return t
end

--[[ The base of a sandbox environment, shared by policies and challenge
files: the safe globals, the bounded string library (strings up to
max_string bytes), the bounded table library, math without the names in
no_math, utf8, a getmetatable that shows tables' only, and a setmetatable
that refuses __gc (whose message names `what`). ]]
function M.base_env(what, max_string, no_math)
  local env = {}
  for _, k in ipairs({
    "assert",
    "error",
    "ipairs",
    "next",
    "pairs",
    "pcall",
    "select",
    "tonumber",
    "tostring",
    "type",
    "xpcall",
    "rawequal",
    "rawget",
    "rawset",
    "rawlen",
  }) do
    env[k] = _G[k]
  end
  env._VERSION = _VERSION
  env.string = sandbox.strings(max_string)
  env.table = M.sandbox_table()
  local m = {}
  for k, v in pairs(math) do
    if not no_math[k] then m[k] = v end
  end
  env.math = m
  local u = {}
  for k, v in pairs(utf8) do
    u[k] = v
  end
  env.utf8 = u
  env.getmetatable = function(x)
    if type(x) == "table" then return getmetatable(x) end
    return nil
  end
  env.setmetatable = function(x, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("setmetatable: __gc metamethods are not allowed in " .. what, 2)
    end
    return setmetatable(x, mt)
  end
  return env
end

local function make_env()
  local env = M.base_env("policies", M.MAX_STRING_BYTES, { random = true, randomseed = true })
  local loaded = {}
  env.require = function(name)
    if type(name) ~= "string" or not M.LIBRARIES[name] then
      error(
        string_format(
          "require %s: only mpic.select, mpic.geo and mpic.quorum are available to policies",
          describe(name)
        ),
        2
      )
    end
    if loaded[name] == nil then loaded[name] = fresh_library(name) end
    return loaded[name]
  end
  env._G = env
  return env
end

local function read_file(path)
  local f, err = io_open(path, "rb")
  if not f then return nil, describe(err) end
  local data = f:read(M.MAX_FILE_BYTES + 1)
  f:close()
  if data == nil then data = "" end
  if #data > M.MAX_FILE_BYTES then return nil, "file larger than " .. M.MAX_FILE_BYTES .. " bytes" end
  return data
end

local function hex(s)
  local out = {}
  for i = 1, #s do
    out[i] = string_format("%02x", string_byte(s, i))
  end
  return table_concat(out)
end

local function file_hash(data) return hex(require("mpic.core.util").sha256(data)) end

local Policy = {}
Policy.__index = Policy
Policy.__metatable = false

function Policy:_fail(fn, why) return string_format("policy %q (%s): %s: %s", self.name, self.path, fn, why) end

-- ok, r1, r2, r3 or nil, reason (the policy's function under the limit).
local function call_fail(self, fname, ok, a, b, c)
  if not ok then return nil, self:_fail(fname, a) end
  return true, a, b, c
end

function Policy:_call(fname, ...) return call_fail(self, fname, self.run(self.fns[fname], ...)) end

-- true or nil, reason. date defaults to today's UTC date.
function Policy:check_config(registry, defaults, date)
  if not self.fns.check_config then return true end
  local reg, why = plain_copy(registry, "registry")
  if not reg then error("policy:check_config: " .. why, 2) end
  local def, dwhy = plain_copy(defaults or {}, "defaults")
  if not def then error("policy:check_config: " .. dwhy, 2) end
  local ok, r1, r2 = self:_call("check_config", reg, def, date or os_date("!%Y-%m-%d"))
  if not ok then return nil, r1 end
  if rawequal(r1, true) then return true end
  if r1 == nil or r1 == false then
    if type(r2) == "string" then return nil, self:_fail("check_config", r2) end
    return nil, self:_fail("check_config", "refused the configuration without a reason")
  end
  return nil, self:_fail("check_config", "returned " .. type(r1) .. " instead of true or nil, reason")
end

local function select_call(self, reg, known, target, count, attempt, rng)
  if type(rng) ~= "table" or type(rng.int) ~= "function" then
    error("policy:select: rng must be an object with int()", 3)
  end
  local proxy = { int = function(_, n) return rng:int(n) end }
  local ok, ids, r2 = self:_call("select", reg, target, count, attempt, proxy)
  if not ok then return nil, ids end
  if type(ids) ~= "table" then
    if type(r2) == "string" then return nil, self:_fail("select", r2) end
    return nil, self:_fail("select", "returned " .. type(ids) .. " instead of a list of ids")
  end
  local n = rawlen(ids)
  if n ~= count then
    return nil, self:_fail("select", string_format("returned %d ids, %s requested", n, tostring(count)))
  end
  local out, seen = {}, {}
  for i = 1, n do
    local id = rawget(ids, i)
    if type(id) ~= "string" then return nil, self:_fail("select", string_format("id %d is a %s", i, type(id))) end
    if known[id] ~= "remote" then
      return nil, self:_fail("select", string_format("%q is not a remote perspective", id))
    end
    if seen[id] then return nil, self:_fail("select", string_format("%q selected twice", id)) end
    seen[id] = true
    out[i] = id
  end
  return out
end

-- id -> "primary" | "remote", read before the policy sees the registry.
local function known_ids(registry)
  local known = {}
  for _, e in ipairs(registry) do
    if type(e) == "table" and type(e.id) == "string" then known[e.id] = e.is_primary and "primary" or "remote" end
  end
  return known
end

-- List of remote ids, or nil, reason.
function Policy:select(registry, target, count, attempt, rng)
  local reg, why = plain_copy(registry, "registry")
  if not reg then error("policy:select: " .. why, 2) end
  return select_call(self, reg, known_ids(registry), target, count, attempt, rng)
end

-- select() for a registry list the caller built for this call alone: plain
-- tables (no metatables), not shared with anything else and never used
-- again, so the policy gets it without a copy (the orchestrator's
-- perspectives.list()). The ids allowed in the answer are read first.
function Policy:select_owned(registry, target, count, attempt, rng)
  return select_call(self, registry, known_ids(registry), target, count, attempt, rng)
end

-- info.rule: the rule that decided (mpic.rules); "policy-error" when the
-- policy failed, "policy" when it named no rule of the vocabulary (a name
-- it gave is kept as info.policy_rule).
local function decide_call(self, st)
  local ok, verdict, reason, info = self:_call("decide", st)
  if not ok then return "invalid", verdict, { rule = "policy-error" } end
  if type(verdict) ~= "string" or not VERDICTS[verdict] then
    return "invalid",
      self:_fail(
        "decide",
        "returned a malformed verdict ("
          .. (type(verdict) == "string" and string_format("%q", verdict) or type(verdict))
          .. '); expected "valid", "invalid" or "undecided"'
      ),
      { rule = "policy-error" }
  end
  if reason == nil and verdict == "undecided" then reason = "" end
  if type(reason) ~= "string" then
    return "invalid",
      self:_fail("decide", "returned a " .. type(reason) .. " reason instead of a string"),
      { rule = "policy-error" }
  end
  local out = {}
  if info ~= nil then
    local copy, iwhy = plain_copy(info, "info")
    if not copy or type(copy) ~= "table" then
      return "invalid", self:_fail("decide", "malformed info: " .. (iwhy or type(info))), { rule = "policy-error" }
    end
    out = copy
  end
  local rule = rules.normalize(out.rule)
  if rule ~= out.rule and type(out.rule) == "string" then out.policy_rule = out.rule end
  out.rule = rule
  return verdict, reason, out
end

-- verdict, reason, info. Any failure gives "invalid" with the reason.
function Policy:decide(state)
  local st, why = plain_copy(state, "state")
  if not st then error("policy:decide: " .. why, 2) end
  return decide_call(self, st)
end

-- decide() for a state table the caller built for this call alone (plain
-- tables of strings, numbers and booleans, no metatables, never used
-- again): handed over without a copy.
function Policy:decide_owned(state) return decide_call(self, state) end

-- The policy's minimum remote count for a date, or nil, reason.
function Policy:min_perspectives(date)
  if not self.fns.min_perspectives then return nil, "policy has no minimum" end
  local ok, n = self:_call("min_perspectives", date)
  if not ok then return nil, n end
  if math_type(n) ~= "integer" or n < 1 then
    return nil, self:_fail("min_perspectives", "did not return a positive integer")
  end
  return n
end

--[[
Load a policy file. opts.instruction_limit (per call, default
DEFAULT_INSTRUCTION_LIMIT), opts.memory_limit (bytes allocated per call,
default DEFAULT_MEMORY_LIMIT). Returns a policy object {name, path, sha256,
wait_for_all, primary_first, limit, memory_limit} with the methods above, or nil, reason.
]]
function M.load(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then error("policy.load: path must be a string", 2) end
  local limit = opts.instruction_limit or M.DEFAULT_INSTRUCTION_LIMIT
  if math_type(limit) ~= "integer" or limit < 1000 then
    error("policy.load: instruction_limit must be an integer >= 1000", 2)
  end
  local memory = opts.memory_limit or M.DEFAULT_MEMORY_LIMIT
  if math_type(memory) ~= "integer" or memory < 65536 then
    error("policy.load: memory_limit must be an integer >= 65536", 2)
  end
  harden_string_metatable()
  local data, rerr = read_file(path)
  if not data then return nil, string_format("policy %s: cannot read: %s", path, rerr) end
  local env = make_env()
  local chunk, cerr = load(data, "@" .. path, "t", env)
  if not chunk then return nil, string_format("policy %s: %s", path, describe(cerr)) end
  local run = new_runner(limit, memory, env.string)
  local ok, tbl = run(chunk)
  if not ok then return nil, string_format("policy %s: %s", path, tbl) end
  if type(tbl) ~= "table" then
    return nil, string_format("policy %s: the file must return a table, got %s", path, type(tbl))
  end
  local fns = {}
  local k, v = next(tbl)
  while k ~= nil do
    local want = type(k) == "string" and FIELDS[k]
    if not want then
      return nil,
        string_format(
          "policy %s: unknown field %s",
          path,
          type(k) == "string" and string_format("%q", k) or ("of type " .. type(k))
        )
    end
    if type(v) ~= want then
      return nil, string_format("policy %s: field %q must be a %s, got %s", path, k, want, type(v))
    end
    fns[k] = v
    k, v = next(tbl, k)
  end
  for _, f in ipairs(REQUIRED) do
    if fns[f] == nil then return nil, string_format("policy %s: missing required field %q", path, f) end
  end
  local p = setmetatable({
    name = fns.name,
    path = path,
    sha256 = file_hash(data),
    limit = limit,
    memory_limit = memory,
    run = run,
    wait_for_all = fns.wait_for_all == true,
    primary_first = fns.primary_first == true,
    description = fns.description,
    fns = fns,
  }, Policy)
  return p
end

-- Run a file of plain Lua in a fresh sandbox like a policy's (the adversary
-- models of mpic.simulate): returns the value its main chunk returned and a
-- runner for the functions in it (run(fn, ...) -> true, r1, r2, r3 or
-- nil, reason), or nil, reason.
function M.load_sandboxed(path)
  sandbox.install_string_index()
  local data, rerr = read_file(path)
  if not data then return nil, "cannot read: " .. tostring(rerr) end
  local env = make_env()
  local chunk, cerr = load(data, "@" .. path, "t", env)
  if not chunk then return nil, describe(cerr) end
  local run = new_runner(M.DEFAULT_INSTRUCTION_LIMIT, M.DEFAULT_MEMORY_LIMIT, env.string)
  local ok, v = run(chunk)
  if not ok then return nil, v end
  return v, run
end

return M
