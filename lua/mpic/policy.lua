-- mpic.policy: loads a corroboration policy file into a sandbox and calls it
-- safely.
--
-- Uses the debug library (instruction-count hook, set by this loader only),
-- coroutines (policy calls run in a coroutine carrying the hook, reused from
-- call to call while calls end cleanly),
-- io (to read the file) and mpic.core.util.sha256 when present (file hash
-- for the audit log).
--
-- The sandbox: each policy gets its own _ENV holding only assert, error,
-- ipairs, next, pairs, pcall, select, tonumber, tostring, type, xpcall,
-- rawequal, rawget, rawset, rawlen, _VERSION, copies of string (no dump;
-- rep capped at MAX_STRING_BYTES), table, math (no random/randomseed: use
-- the rng argument) and utf8, a getmetatable that only looks at tables, a
-- setmetatable that refuses __gc, and a require that gives fresh private
-- copies of mpic.select, mpic.geo and mpic.quorum only. No io, os, load,
-- loadfile, dofile, debug, collectgarbage, coroutine or print; time comes in
-- as arguments (state.date, the date passed to check_config). Strings'
-- shared metatable loses `dump` process-wide (s:dump() has no legitimate
-- use); s:rep() stays uncapped there, and C functions (pattern matching,
-- table.concat) are not counted by the hook.
--
-- Every call (the file's main chunk, check_config, select, decide,
-- min_perspectives) runs under an instruction limit. Errors, the limit,
-- yields and malformed returns fail closed: check_config/select/
-- min_perspectives return nil, reason; decide returns "invalid", reason.
-- Arguments are deep-copied in and results copied out with raw access, so a
-- policy never runs code (metamethods) outside its limit; decide_owned and
-- select_owned skip the copy in for tables built for that one call.
local type, pairs, ipairs, next, error, pcall, tostring, rawget, rawlen, rawequal =
  type, pairs, ipairs, next, error, pcall, tostring, rawget, rawlen, rawequal
local setmetatable, getmetatable, require, loadfile, load =
  setmetatable, getmetatable, require, loadfile, load
local coroutine_create, coroutine_resume, coroutine_status, coroutine_close, coroutine_yield =
  coroutine.create, coroutine.resume, coroutine.status, coroutine.close, coroutine.yield
local debug_sethook = debug.sethook
local string_format, string_rep, string_byte = string.format, string.rep, string.byte
local table_concat, math_type = table.concat, math.type
local io_open, os_date = io.open, os.date
local package, _G, _VERSION = package, _G, _VERSION

local M = {}

M.DEFAULT_INSTRUCTION_LIMIT = 5000000
M.MAX_STRING_BYTES = 1 << 20
M.MAX_FILE_BYTES = 1 << 20
M.MAX_COPY_ITEMS = 100000
M.MAX_COPY_DEPTH = 16
M.LIBRARIES = { ["mpic.select"] = true, ["mpic.geo"] = true, ["mpic.quorum"] = true }

local FIELDS = {
  name = "string", description = "string", check_config = "function", select = "function",
  decide = "function", min_perspectives = "function", wait_for_all = "boolean",
  primary_first = "boolean",
}
local REQUIRED = { "name", "select", "decide" }
local VERDICTS = { valid = true, invalid = true, undecided = true }

local hardened = false
local function harden_string_metatable()
  if hardened then
    return
  end
  local mt = getmetatable("")
  local idx = {}
  for k, v in pairs(string) do
    if k ~= "dump" then
      idx[k] = v
    end
  end
  mt.__index = idx
  hardened = true
end

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
-- raw access only. Returns the copy or nil, reason. The keys on the way down
-- are kept in a stack, so the path for an error message is only built when
-- there is an error.
local function plain_copy(v, what)
  local t = type(v)
  if t ~= "table" then
    if t == "string" or t == "number" or t == "boolean" or t == "nil" then
      return v
    end
    return nil, string_format("%s holds a %s", what, t)
  end
  local count, keys = 0, {}
  local function fail(depth, msg)
    local parts = { what }
    for i = 1, depth - 1 do
      parts[#parts + 1] = tostring(keys[i])
    end
    error(string_format(msg, table_concat(parts, ".")), 0)
  end
  local function copy(x, depth)
    if depth > M.MAX_COPY_DEPTH then
      fail(depth, "%s is nested too deeply")
    end
    local out = {}
    local k, val = next(x)
    while k ~= nil do
      count = count + 1
      if count > M.MAX_COPY_ITEMS then
        error(what .. " is too large", 0)
      end
      local kt = type(k)
      if kt ~= "string" and kt ~= "number" and kt ~= "boolean" then
        fail(depth, "%s has a " .. kt .. " key")
      end
      local vt = type(val)
      if vt == "table" then
        keys[depth] = k
        val = copy(val, depth + 1)
      elseif vt ~= "string" and vt ~= "number" and vt ~= "boolean" then
        keys[depth] = k
        fail(depth + 1, "%s holds a " .. vt)
      end
      out[k] = val
      k, val = next(x, k)
    end
    return out
  end
  local ok, res = pcall(copy, v, 1)
  if not ok then
    return nil, res
  end
  return res
end
M.plain_copy = plain_copy

-- A runner calls policy functions under the instruction limit, one call at
-- a time (policy calls never nest: a policy has no way to reach another).
-- Each call runs in the runner's coroutine, which is reused while calls end
-- cleanly: its body is a loop that calls a function and yields the results
-- tagged with a private token, so a reused coroutine costs no allocation.
-- The count hook is set once per coroutine and fires every `period`
-- instructions (limit / 100); a call is charged `period` per firing, so the
-- limit holds to within one period (1%). Once the limit is reached every
-- instruction raises, so a pcall in the script cannot swallow it; the
-- coroutine then dies and the next call gets a fresh one, as after an error
-- or a yield. Returns (true, r1, r2, r3) or (nil, reason).
local RESULTS = {}
local function call_loop(fn, ...)
  return call_loop(coroutine_yield(RESULTS, fn(...)))
end

local function new_runner(limit)
  local period = limit // 100
  if period < 1 then
    period = 1
  end
  local used, exceeded, co = 0, false, nil
  local function hook()
    used = used + period
    if used >= limit then
      exceeded = true
      debug_sethook(hook, "", 1)
      error("instruction limit exceeded", 0)
    end
  end
  local function finish(c, ok, tag, a, b, d)
    if ok and not exceeded and rawequal(tag, RESULTS) then
      co = c -- clean end: keep the coroutine for the next call
      return true, a, b, d
    end
    if coroutine_status(c) == "suspended" then
      coroutine_close(c)
    end
    if exceeded then
      return nil, string_format("instruction limit (%d) exceeded", limit)
    end
    if not ok then
      return nil, describe(tag)
    end
    return nil, "policy yielded, which is not allowed"
  end
  return function(fn, ...)
    local c = co
    co = nil
    if c == nil then
      c = coroutine_create(call_loop)
      debug_sethook(c, hook, "", period)
    end
    used, exceeded = 0, false
    return finish(c, coroutine_resume(c, fn, ...))
  end
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
  if not chunk then
    error(string_format("require %q: %s", name, describe(err)), 0)
  end
  return chunk(name, path)
end

local function make_env()
  local env = {}
  for _, k in ipairs({ "assert", "error", "ipairs", "next", "pairs", "pcall", "select", "tonumber",
                       "tostring", "type", "xpcall", "rawequal", "rawget", "rawset", "rawlen" }) do
    env[k] = _G[k]
  end
  env._VERSION = _VERSION
  local s = {}
  for k, v in pairs(string) do
    if k ~= "dump" then
      s[k] = v
    end
  end
  s.rep = function(str, n, sep)
    if type(n) == "number" and type(str) == "string" and n > 0 then
      local size = (#str + (type(sep) == "string" and #sep or 0)) * n
      if size > M.MAX_STRING_BYTES then
        error("string.rep: result larger than " .. M.MAX_STRING_BYTES .. " bytes", 2)
      end
    end
    return string_rep(str, n, sep)
  end
  env.string = s
  local t = {}
  for k, v in pairs(table) do t[k] = v end
  env.table = t
  local m = {}
  for k, v in pairs(math) do
    if k ~= "random" and k ~= "randomseed" then
      m[k] = v
    end
  end
  env.math = m
  local u = {}
  for k, v in pairs(utf8) do u[k] = v end
  env.utf8 = u
  env.getmetatable = function(x)
    if type(x) == "table" then
      return getmetatable(x)
    end
    return nil
  end
  env.setmetatable = function(x, mt)
    if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
      error("setmetatable: __gc metamethods are not allowed in policies", 2)
    end
    return setmetatable(x, mt)
  end
  local loaded = {}
  env.require = function(name)
    if type(name) ~= "string" or not M.LIBRARIES[name] then
      error(string_format("require %s: only mpic.select, mpic.geo and mpic.quorum are available to policies",
        describe(name)), 2)
    end
    if loaded[name] == nil then
      loaded[name] = fresh_library(name)
    end
    return loaded[name]
  end
  env._G = env
  return env
end

local function read_file(path)
  local f, err = io_open(path, "rb")
  if not f then
    return nil, describe(err)
  end
  local data = f:read(M.MAX_FILE_BYTES + 1)
  f:close()
  if data == nil then
    data = ""
  end
  if #data > M.MAX_FILE_BYTES then
    return nil, "file larger than " .. M.MAX_FILE_BYTES .. " bytes"
  end
  return data
end

local function hex(s)
  local out = {}
  for i = 1, #s do
    out[i] = string_format("%02x", string_byte(s, i))
  end
  return table_concat(out)
end

local function file_hash(data)
  local ok, util = pcall(require, "mpic.core.util")
  if ok and type(util) == "table" and type(util.sha256) == "function" then
    return hex(util.sha256(data))
  end
  return nil
end

local Policy = {}
Policy.__index = Policy
Policy.__metatable = false

function Policy:_fail(fn, why)
  return string_format("policy %q (%s): %s: %s", self.name, self.path, fn, why)
end

-- ok, r1, r2, r3 or nil, reason (the policy's function under the limit).
local function call_fail(self, fname, ok, a, b, c)
  if not ok then
    return nil, self:_fail(fname, a)
  end
  return true, a, b, c
end

function Policy:_call(fname, ...)
  return call_fail(self, fname, self.run(self.fns[fname], ...))
end

-- true or nil, reason. date defaults to today's UTC date.
function Policy:check_config(registry, defaults, date)
  if not self.fns.check_config then
    return true
  end
  local reg, why = plain_copy(registry, "registry")
  if not reg then
    error("policy:check_config: " .. why, 2)
  end
  local def, dwhy = plain_copy(defaults or {}, "defaults")
  if not def then
    error("policy:check_config: " .. dwhy, 2)
  end
  local ok, r1, r2 = self:_call("check_config", reg, def, date or os_date("!%Y-%m-%d"))
  if not ok then
    return nil, r1
  end
  if rawequal(r1, true) then
    return true
  end
  if r1 == nil or r1 == false then
    if type(r2) == "string" then
      return nil, self:_fail("check_config", r2)
    end
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
  if not ok then
    return nil, ids
  end
  if type(ids) ~= "table" then
    if type(r2) == "string" then
      return nil, self:_fail("select", r2)
    end
    return nil, self:_fail("select", "returned " .. type(ids) .. " instead of a list of ids")
  end
  local n = rawlen(ids)
  if n ~= count then
    return nil, self:_fail("select", string_format("returned %d ids, %s requested", n, tostring(count)))
  end
  local out, seen = {}, {}
  for i = 1, n do
    local id = rawget(ids, i)
    if type(id) ~= "string" then
      return nil, self:_fail("select", string_format("id %d is a %s", i, type(id)))
    end
    if known[id] ~= "remote" then
      return nil, self:_fail("select", string_format("%q is not a remote perspective", id))
    end
    if seen[id] then
      return nil, self:_fail("select", string_format("%q selected twice", id))
    end
    seen[id] = true
    out[i] = id
  end
  return out
end

-- id -> "primary" | "remote", read before the policy sees the registry.
local function known_ids(registry)
  local known = {}
  for _, e in ipairs(registry) do
    if type(e) == "table" and type(e.id) == "string" then
      known[e.id] = e.is_primary and "primary" or "remote"
    end
  end
  return known
end

-- List of remote ids, or nil, reason.
function Policy:select(registry, target, count, attempt, rng)
  local reg, why = plain_copy(registry, "registry")
  if not reg then
    error("policy:select: " .. why, 2)
  end
  return select_call(self, reg, known_ids(registry), target, count, attempt, rng)
end

-- select() for a registry list the caller built for this call alone: plain
-- tables (no metatables), not shared with anything else and never used
-- again, so the policy gets it without a copy (the orchestrator's
-- perspectives.list()). The ids allowed in the answer are read first.
function Policy:select_owned(registry, target, count, attempt, rng)
  return select_call(self, registry, known_ids(registry), target, count, attempt, rng)
end

local function decide_call(self, st)
  local ok, verdict, reason, info = self:_call("decide", st)
  if not ok then
    return "invalid", verdict, {}
  end
  if type(verdict) ~= "string" or not VERDICTS[verdict] then
    return "invalid", self:_fail("decide", "returned a malformed verdict (" ..
      (type(verdict) == "string" and string_format("%q", verdict) or type(verdict)) ..
      "); expected \"valid\", \"invalid\" or \"undecided\""), {}
  end
  if reason == nil and verdict == "undecided" then
    reason = ""
  end
  if type(reason) ~= "string" then
    return "invalid", self:_fail("decide", "returned a " .. type(reason) .. " reason instead of a string"), {}
  end
  local out = {}
  if info ~= nil then
    local copy, iwhy = plain_copy(info, "info")
    if not copy or type(copy) ~= "table" then
      return "invalid", self:_fail("decide", "malformed info: " .. (iwhy or type(info))), {}
    end
    out = copy
  end
  return verdict, reason, out
end

-- verdict, reason, info. Any failure gives "invalid" with the reason.
function Policy:decide(state)
  local st, why = plain_copy(state, "state")
  if not st then
    error("policy:decide: " .. why, 2)
  end
  return decide_call(self, st)
end

-- decide() for a state table the caller built for this call alone (plain
-- tables of strings, numbers and booleans, no metatables, never used
-- again): handed over without a copy.
function Policy:decide_owned(state)
  return decide_call(self, state)
end

-- The policy's minimum remote count for a date, or nil, reason.
function Policy:min_perspectives(date)
  if not self.fns.min_perspectives then
    return nil, "policy has no minimum"
  end
  local ok, n = self:_call("min_perspectives", date)
  if not ok then
    return nil, n
  end
  if math_type(n) ~= "integer" or n < 1 then
    return nil, self:_fail("min_perspectives", "did not return a positive integer")
  end
  return n
end

--[[
Load a policy file. opts.instruction_limit (per call, default
DEFAULT_INSTRUCTION_LIMIT). Returns a policy object {name, path, sha256,
wait_for_all, primary_first, limit} with the methods above, or nil, reason.
]]
function M.load(path, opts)
  opts = opts or {}
  if type(path) ~= "string" then
    error("policy.load: path must be a string", 2)
  end
  local limit = opts.instruction_limit or M.DEFAULT_INSTRUCTION_LIMIT
  if math_type(limit) ~= "integer" or limit < 1000 then
    error("policy.load: instruction_limit must be an integer >= 1000", 2)
  end
  harden_string_metatable()
  local data, rerr = read_file(path)
  if not data then
    return nil, string_format("policy %s: cannot read: %s", path, rerr)
  end
  local env = make_env()
  local chunk, cerr = load(data, "@" .. path, "t", env)
  if not chunk then
    return nil, string_format("policy %s: %s", path, describe(cerr))
  end
  local run = new_runner(limit)
  local ok, tbl = run(chunk)
  if not ok then
    return nil, string_format("policy %s: %s", path, tbl)
  end
  if type(tbl) ~= "table" then
    return nil, string_format("policy %s: the file must return a table, got %s", path, type(tbl))
  end
  local fns = {}
  local k, v = next(tbl)
  while k ~= nil do
    local want = type(k) == "string" and FIELDS[k]
    if not want then
      return nil, string_format("policy %s: unknown field %s", path,
        type(k) == "string" and string_format("%q", k) or ("of type " .. type(k)))
    end
    if type(v) ~= want then
      return nil, string_format("policy %s: field %q must be a %s, got %s", path, k, want, type(v))
    end
    fns[k] = v
    k, v = next(tbl, k)
  end
  for _, f in ipairs(REQUIRED) do
    if fns[f] == nil then
      return nil, string_format("policy %s: missing required field %q", path, f)
    end
  end
  local p = setmetatable({
    name = fns.name, path = path, sha256 = file_hash(data), limit = limit, run = run,
    wait_for_all = fns.wait_for_all == true, primary_first = fns.primary_first == true,
    description = fns.description, fns = fns,
  }, Policy)
  return p
end

-- Run a file of plain Lua in a fresh sandbox like a policy's (the adversary
-- models of mpic.simulate): returns the value its main chunk returned and a
-- runner for the functions in it (run(fn, ...) -> true, r1, r2, r3 or
-- nil, reason), or nil, reason.
function M.load_sandboxed(path)
  harden_string_metatable()
  local data, rerr = read_file(path)
  if not data then
    return nil, "cannot read: " .. tostring(rerr)
  end
  local env = make_env()
  local chunk, cerr = load(data, "@" .. path, "t", env)
  if not chunk then
    return nil, describe(cerr)
  end
  local run = new_runner(M.DEFAULT_INSTRUCTION_LIMIT)
  local ok, v = run(chunk)
  if not ok then
    return nil, v
  end
  return v, run
end

return M
