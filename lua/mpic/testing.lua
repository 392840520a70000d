-- mpic.testing: the test vocabulary for Lua test files run by `mpic test`.
--
--   local T = require "mpic.testing"
--   T.case("caa_unknown_critical_tag_forbids", function() T.eq(got, want) end)
--
-- Cases are collected while a file loads and run afterwards, each as its own
-- task (so probes and mpic.sleep work inside), with a time limit.
--
-- Policy scenarios (no network): T.config{...} builds a configuration in
-- memory, T.scenario{config=, policy=, date=, outcomes=, request=} runs one
-- real validation through mpic.orchestrator with every perspective's check
-- scripted (pass, fail, error, timeout after N ms, or a function), and
-- returns the verdict, the response, who was contacted and the audit line
-- (including shadow policies' verdicts). Timeouts really sleep, so early
-- decisions, cancellation and deadlines behave as in production.
local M = {}

local type, pairs, tostring, string_format, error = type, pairs, tostring, string.format, error
local table_concat, table_sort = table.concat, table.sort

local registry = {}

-- Files and processes, for test files ---------------------------------------

--- A new empty directory under the system's temporary folder.
function M.tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(require("mpic.core.util").mkdir(d))
  return d
end

--- Write text to path (binary, whole); returns path.
function M.write_file(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

--- The whole content of path.
function M.read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

--- Run a shell command line, at most opts.timeout_s (default 30) seconds:
--- stdout, stderr (empty with opts.merge: then it is in stdout), exit status.
function M.shell(cmd, opts)
  opts = opts or {}
  local errf = not opts.merge and os.tmpname() or nil
  local redirect = errf and (" 2>" .. errf) or " 2>&1"
  local p = assert(io.popen("timeout " .. (opts.timeout_s or 30) .. " " .. cmd .. redirect .. '; echo "exit=$?"'))
  local out = p:read("a")
  p:close()
  local body, code = out:match("^(.*)exit=(%d+)\n?$")
  local err = ""
  if errf then
    err = M.read_file(errf)
    os.remove(errf)
  end
  return body or out, err, tonumber(code)
end

--- The path of the running mpic binary (to start it as a child).
function M.self_exe()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("readlink /proc/" .. pid .. "/exe"))
  local exe = p:read("l")
  p:close()
  return exe
end

--- Register a named case. opts: {timeout_ms = 10000}
function M.case(name, fn, opts)
  if type(name) ~= "string" or type(fn) ~= "function" then
    error("T.case(name, fn): name must be a string and fn a function", 2)
  end
  registry[#registry + 1] = { name = name, fn = fn, opts = opts or {} }
end

--- Take the cases registered so far (used by the runner).
function M._take()
  local cases = registry
  registry = {}
  return cases
end

local function repr(v, depth, seen)
  depth = depth or 0
  local t = type(v)
  if t == "string" then return string_format("%q", v) end
  if t ~= "table" then return tostring(v) end
  seen = seen or {}
  if seen[v] or depth > 4 then return "{...}" end
  seen[v] = true
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  table_sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in pairs(keys) do
    parts[#parts + 1] = "[" .. repr(k) .. "]=" .. repr(v[k], depth + 1, seen)
  end
  seen[v] = nil
  return "{" .. table_concat(parts, ", ") .. "}"
end
M.repr = repr

local function deep_eq(a, b, path)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" then
    if type(a) == "number" and type(b) == "number" and a ~= a and b ~= b then return true end
    return false, path
  end
  for k, v in pairs(a) do
    local ok, where = deep_eq(v, b[k], path .. "[" .. repr(k) .. "]")
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if a[k] == nil then return false, path .. "[" .. repr(k) .. "]" end
  end
  return true
end

-- The last scenario run by each task (a case runs as its own task): a
-- failing assertion in that case names its verdict and reason, so that
-- T.eq(r.is_valid, true) says why the validation was not valid.
local last_scenario = setmetatable({}, { __mode = "k" })

local function scenario_note()
  local ok, task = pcall(function() return require("mpic").current() end)
  local r = ok and task and last_scenario[task]
  if not r then return "" end
  local reason = r.reason
  if type(reason) == "string" and #reason > 300 then reason = reason:sub(1, 297) .. "..." end
  return string_format(
    " [last scenario: HTTP %s, verdict %s: %s]",
    tostring(r.status),
    tostring(r.verdict),
    tostring(reason)
  )
end

--- Deep equality.
function M.eq(got, want, msg)
  local ok, where = deep_eq(got, want, "")
  if not ok then
    error(
      string_format(
        "%sexpected %s, got %s%s%s",
        msg and (msg .. ": ") or "",
        repr(want),
        repr(got),
        (where and where ~= "") and (" (differs at " .. where .. ")") or "",
        scenario_note()
      ),
      2
    )
  end
end

function M.ok(v, msg)
  if not v then error((msg or "expected a true value") .. scenario_note(), 2) end
  return v
end

--- fn must raise an error whose message matches the Lua pattern.
function M.raises(fn, pattern, ...)
  local ok, err = pcall(fn, ...)
  if ok then error("expected an error" .. (pattern and (" matching " .. pattern) or ""), 2) end
  if pattern and not tostring(err):find(pattern) then
    error(string_format("error %q does not match %q", tostring(err), pattern), 2)
  end
  return err
end

--- String contains (plain).
function M.contains(s, sub, msg)
  if type(s) ~= "string" or not s:find(sub, 1, true) then
    error(string_format("%sexpected %s to contain %q", msg and (msg .. ": ") or "", repr(s), sub), 2)
  end
end

-- Policy scenarios ------------------------------------------------------------

-- A BR-compliant set: a primary (ARIN, Virginia) and remotes in all five
-- RIRs, pairwise far more than 500 km apart.
M.PERSPECTIVES = {
  { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
  { id = "pdx", rir = "ARIN", location = { lat = 45.52, lon = -122.68 } },
  { id = "fra", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
  { id = "sto", rir = "RIPE", location = { lat = 59.33, lon = 18.07 } },
  { id = "sgp", rir = "APNIC", location = { lat = 1.35, lon = 103.82 } },
  { id = "syd", rir = "APNIC", location = { lat = -33.87, lon = 151.21 } },
  { id = "gru", rir = "LACNIC", location = { lat = -23.55, lon = -46.63 } },
  { id = "jnb", rir = "AFRINIC", location = { lat = -26.2, lon = 28.05 } },
}

local function copy(v)
  if type(v) ~= "table" then return v end
  local out = {}
  for k, x in pairs(v) do
    out[k] = copy(x)
  end
  return out
end

local function root_path(p)
  if p:sub(1, 1) == "/" then return p end
  local f = io.open(p, "r")
  if f then
    f:close()
    return p
  end
  local paths = package.loaded["mpic.paths"]
  return paths and (paths.root .. "/" .. p) or p
end

--[[ config{...}: a validated configuration table built in memory.
Fields are those of perspectives.yaml; missing ones get test defaults:
perspectives = M.PERSPECTIVES (entries may omit resolvers: scripted checks
never use them), primary = "primary" when that id exists (pass primary =
false for none), issuer.caa_domains = {"ca.example"}, audit to a fresh temp
file without fsync, policy = "policies/br.lua" (relative paths resolve
against the working directory, then the mpic root).
Raises with every problem listed when the result is not a valid config. ]]
function M.config(t)
  t = copy(t or {})
  if t.perspectives == nil then t.perspectives = copy(M.PERSPECTIVES) end
  for _, p in ipairs(t.perspectives) do
    if type(p) == "table" and p.resolvers == nil and p.agent == nil then p.resolvers = { "127.0.0.1:9" } end
  end
  if t.primary == nil then
    for _, p in ipairs(t.perspectives) do
      if type(p) == "table" and p.id == "primary" then t.primary = "primary" end
    end
  elseif t.primary == false then
    t.primary = nil
  end
  t.issuer = t.issuer or { caa_domains = { "ca.example" } }
  t.audit = t.audit or { path = os.tmpname(), fsync = false }
  t.policy = root_path(t.policy or "policies/br.lua")
  if t.shadow_policies then
    for i, sp in ipairs(t.shadow_policies) do
      t.shadow_policies[i] = root_path(sp)
    end
  end
  local cfg, errs = require("mpic.config").validate(t)
  if not cfg then
    local lines = {}
    for _, e in ipairs(errs) do
      lines[#lines + 1] = tostring(e[1]) .. ": " .. tostring(e[2])
    end
    error("T.config: " .. table_concat(lines, "; "), 2)
  end
  cfg.file = cfg.file or "(test config)"
  return cfg
end

--- A default DCV request (acme-dns-01 for example.com) with fields of t
--- merged over it.
function M.request(t)
  local r = {
    check_type = "dcv",
    domain_or_ip_target = "example.com",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = ("A"):rep(43) },
  }
  for k, v in pairs(t or {}) do
    r[k] = copy(v)
  end
  return r
end

local function lookup_kind(req)
  return req.check_type == "caa" and "mpic_error:caa_checker:lookup" or "mpic_error:dcv_checker:lookup"
end

local function result(passed, completed, errors, reason)
  return {
    passed = passed,
    completed = completed,
    errors = errors,
    details = reason and { reason = reason } or {},
  }
end

local OUTCOME_KEYS = { pass = true, fail = true, error = true, timeout_ms = true, delay_ms = true }

-- Check an outcome spec before anything runs (functions are checked when
-- they answer). Returns true or nil, reason.
local function check_outcome(spec, pid, in_list)
  local t = type(spec)
  if t == "function" or t == "boolean" or spec == "pass" or spec == "fail" then return true end
  if t == "string" then
    return nil,
      string_format(
        'outcome for %s is %q; the words are "pass" and "fail" '
          .. '(or {fail = "why"}, {error = "..."}, {timeout_ms = N}, {pass = true, delay_ms = N})',
        pid,
        spec
      )
  end
  if t ~= "table" then
    return nil, string_format('outcome for %s must be "pass", "fail", a table or a function, got %s', pid, repr(spec))
  end
  if spec.passed ~= nil then
    if type(spec.passed) ~= "boolean" then
      return nil, string_format("outcome for %s: passed must be a boolean", pid)
    end
    return true
  end
  if spec[1] ~= nil then
    if in_list then return nil, string_format("outcome for %s: a list inside a list", pid) end
    for i, v in ipairs(spec) do
      local ok, why = check_outcome(v, pid .. "[" .. i .. "]", true)
      if not ok then return nil, why end
    end
    return true
  end
  local says = false
  for k, v in pairs(spec) do
    if not OUTCOME_KEYS[k] then return nil, string_format("outcome for %s has unknown key %s", pid, repr(k)) end
    if (k == "timeout_ms" or k == "delay_ms") and (math.type(v) ~= "integer" or v < 0) then
      return nil, string_format("outcome for %s: %s must be a non-negative integer", pid, k)
    end
    if k ~= "delay_ms" then says = true end
  end
  if not says then return nil, string_format("outcome for %s says nothing (pass, fail, error or timeout_ms)", pid) end
  return true
end
M.check_outcome = check_outcome

-- Turn an outcome spec into a check result, sleeping as the spec says (never
-- past deadline_ms: a check still "running" then is a timeout).
local function play(spec, pid, req, deadline_ms)
  local mpic = require "mpic"
  if type(spec) == "function" then spec = spec(pid, req, deadline_ms) end
  if spec == "pass" or spec == true then return result(true, true) end
  if spec == "fail" or spec == false then return result(false, true, nil, "scripted failure") end
  if type(spec) == "table" and spec.passed ~= nil then return spec end -- a complete check result
  if type(spec) ~= "table" then
    error(
      string_format('scenario: outcome for %s must be "pass", "fail", a table or a function, got %s', pid, repr(spec)),
      0
    )
  end
  for k in pairs(spec) do
    if not OUTCOME_KEYS[k] then error(string_format("scenario: outcome for %s has unknown key %s", pid, repr(k)), 0) end
  end
  local wait = spec.timeout_ms or spec.delay_ms or 0
  if wait > 0 then
    mpic.sleep(wait < deadline_ms and wait or deadline_ms)
    if wait >= deadline_ms or spec.timeout_ms then
      return result(false, false, {
        {
          error_type = lookup_kind(req),
          error_message = string_format(
            "check did not finish within %d ms",
            wait < deadline_ms and wait or deadline_ms
          ),
        },
      })
    end
  end
  if spec.error then
    return result(false, false, { { error_type = lookup_kind(req), error_message = tostring(spec.error) } })
  end
  if spec.fail then return result(false, true, nil, spec.fail == true and "scripted failure" or tostring(spec.fail)) end
  if spec.pass then return result(true, true) end
  error(string_format("scenario: outcome for %s says nothing (pass, fail, error or timeout_ms)", pid), 0)
end

local function read_last_line(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local last
  for line in f:lines() do
    if line ~= "" then last = line end
  end
  f:close()
  return last
end

--[[ scenario{...} -> r. Runs one validation with scripted checks.
  config   a table from T.config, a T.config argument table, or a YAML path
  policy   policy file (overrides the config's); shadow = {files} likewise
  date     "YYYY-MM-DD" validation date (default today, UTC)
  outcomes perspective id -> outcome; ["*"] for every other one. An outcome
           is "pass", "fail", {fail = "why"}, {error = "servfail"},
           {timeout_ms = N} (answers nothing for N ms, then times out),
           {pass = true, delay_ms = N}, a check result table {passed=...},
           a function(id, req, deadline_ms) returning one of those, or a
           list of them used one per call (attempt) in turn, the last repeating.
           A perspective without an outcome fails as not completed.
  request  the Open MPIC request (default T.request())
  unhealthy list of perspective ids to mark unhealthy before selection
r = { is_valid, verdict, reason, status, response, audit (the decoded audit
line), shadow (its shadow verdicts, {} when none), issues (the request's
problems when status is 400), contacted (ids in call
order), calls (id -> number of checks), unscripted (ids that had no outcome),
elapsed_ms }. The previous configuration is restored afterwards. ]]
function M.scenario(s)
  if type(s) ~= "table" then error("T.scenario{...}: expects a table", 2) end
  local mpic = require "mpic"
  local perspectives = require "mpic.perspectives"
  local orchestrator = require "mpic.orchestrator"
  local util = require "mpic.core.util"
  local cfg = s.config
  if type(cfg) == "string" then
    local err
    cfg, err = require("mpic.config").load(cfg)
    if not cfg then error("T.scenario: " .. err, 2) end
  elseif cfg == nil or (type(cfg) == "table" and cfg.file == nil) then
    cfg = M.config(cfg)
  elseif type(cfg) ~= "table" then
    error("T.scenario: config must be a table or a YAML path", 2)
  end
  cfg = copy(cfg)
  if s.policy then cfg.policy = root_path(s.policy) end
  if s.shadow then
    cfg.shadow_policies = {}
    for i, sp in ipairs(s.shadow) do
      cfg.shadow_policies[i] = root_path(sp)
    end
  end
  local outcomes = s.outcomes or {}
  if type(outcomes) ~= "table" then error("T.scenario: outcomes must be a table", 2) end
  -- a mistake in the script is the test's failure, never a check's
  local known, ids = {}, {}
  for _, p in ipairs(cfg.perspectives) do
    known[p.id] = true
    ids[#ids + 1] = p.id
  end
  local keys = {}
  for k in pairs(outcomes) do
    keys[#keys + 1] = tostring(k)
  end
  table_sort(keys)
  for _, k in ipairs(keys) do
    if k ~= "*" and not known[k] then
      error(
        string_format(
          "T.scenario: outcomes names %q, which is not a perspective of the configuration "
            .. '(perspectives: %s; "*" for every other one)',
          k,
          table_concat(ids, ", ")
        ),
        2
      )
    end
    local okc, why = check_outcome(outcomes[k], k == "*" and '"*"' or k)
    if not okc then error("T.scenario: " .. why, 2) end
  end
  for _, id in ipairs(s.unhealthy or {}) do
    if not known[id] then
      error(
        string_format(
          "T.scenario: unhealthy names %q, which is not a perspective of the configuration " .. "(perspectives: %s)",
          tostring(id),
          table_concat(ids, ", ")
        ),
        2
      )
    end
  end

  local prev_cfg, prev_global = perspectives.config(), mpic.config
  perspectives.configure(cfg)
  mpic.config = cfg
  orchestrator.reset()
  for _, id in ipairs(s.unhealthy or {}) do
    for _ = 1, perspectives.FAILURES_UNHEALTHY do
      perspectives.observe(id, false, 0, "marked unhealthy by the scenario")
    end
  end

  local r = { contacted = {}, calls = {}, unscripted = {} }
  local function run_check(_, req, pid, deadline_ms)
    r.contacted[#r.contacted + 1] = pid
    local n = (r.calls[pid] or 0) + 1
    r.calls[pid] = n
    local spec = outcomes[pid]
    if spec == nil then spec = outcomes["*"] end
    if spec == nil then
      r.unscripted[#r.unscripted + 1] = pid
      return result(
        false,
        false,
        { { error_type = lookup_kind(req), error_message = "no outcome scripted for perspective " .. pid } }
      )
    end
    if type(spec) == "table" and spec[1] ~= nil then spec = spec[n] or spec[#spec] end
    local t0 = mpic.now()
    local pok, res = pcall(play, spec, pid, req, deadline_ms)
    if not pok then
      -- raised again once the validation is over: the test fails with it
      r.script_error = r.script_error or res
      error(res, 0)
    end
    res.elapsed_ms = res.elapsed_ms or (mpic.now() - t0)
    return res
  end

  local t0 = mpic.now()
  local ok, resp, status, extra =
    pcall(orchestrator.validate, s.request or M.request(), { date = s.date, run_check = run_check })
  r.elapsed_ms = mpic.now() - t0
  if prev_cfg then perspectives.configure(prev_cfg) end
  mpic.config = prev_global
  orchestrator.reset()
  if not ok then error(resp, 0) end
  if r.script_error then error("T.scenario: " .. tostring(r.script_error), 2) end

  r.response, r.status, r.extra = resp, status, extra
  r.is_valid = status == 200 and resp.is_valid == true
  local d = type(resp) == "table" and resp.mpic_decision or {}
  r.verdict, r.reason = d.verdict, d.reason or resp.error
  r.issues = type(resp) == "table" and resp.validation_issues or nil
  local line = status == 200 and read_last_line(cfg.audit.path)
  if line then r.audit = util.json_decode(line) end
  r.shadow = r.audit and r.audit.shadow or {}
  local task = mpic.current()
  if task then last_scenario[task] = r end
  return r
end

--[[ simulate{...} -> r. Measures policies against an adversary and outage
model offline (mpic.simulate, the engine of `mpic simulate`).
  config  a table from T.config, a T.config argument table, or a YAML path
          (default T.config())
  policy  a policy file or a list of them (default: the config's policy)
  model   model name or file (default "default"); trials (default 1000),
          seed (default "1"), date, count: as in mpic.simulate.run
r is the mpic.simulate result, plus for each policy p.attack[kind] and
p.outage[kind] (the rows by kind: {trials, accepted|refused, share,
ci95 = {lo, hi}}); with one policy r.attack, r.outage and r.mean_contacted
are that policy's. Raises when the simulation cannot run. ]]
function M.simulate(s)
  if type(s) ~= "table" then error("T.simulate{...}: expects a table", 2) end
  local cfg = s.config
  if type(cfg) == "string" then
    local err
    cfg, err = require("mpic.config").load(cfg)
    if not cfg then error("T.simulate: " .. err, 2) end
  elseif cfg == nil or (type(cfg) == "table" and cfg.file == nil) then
    cfg = M.config(cfg)
  elseif type(cfg) ~= "table" then
    error("T.simulate: config must be a table or a YAML path", 2)
  end
  local policies = s.policy
  if type(policies) == "string" then policies = { policies } end
  if policies then
    local out = {}
    for i, p in ipairs(policies) do
      out[i] = root_path(p)
    end
    policies = out
  end
  local r, err = require("mpic.simulate").run {
    cfg = cfg,
    policies = policies,
    model = s.model,
    trials = s.trials,
    seed = s.seed,
    date = s.date,
    count = s.count,
  }
  if not r then error("T.simulate: " .. tostring(err), 2) end
  for _, p in ipairs(r.policies) do
    p.attack, p.outage = {}, {}
    for _, row in ipairs(p.attacks) do
      p.attack[row.kind] = row
    end
    for _, row in ipairs(p.outages) do
      p.outage[row.kind] = row
    end
  end
  if #r.policies == 1 then
    local p = r.policies[1]
    r.attack, r.outage, r.mean_contacted = p.attack, p.outage, p.mean_contacted
  end
  return r
end

-- Challenge types ----------------------------------------------------------------

--- The fake perspective probe (mpic.fake_probe): T.fake_probe.probe{zone=,
--- routes=, tls=, insecure=} and the rdata and certificate builders.
M.fake_probe = require "mpic.fake_probe"

--- Load one challenge file as mpic does (sandboxed, every declaration
--- problem checked). Returns the declaration, or raises with every problem.
function M.load_challenge(path)
  local challenges = require "mpic.challenges"
  local ch, err = challenges.load_file(path)
  if not ch then error("T.load_challenge: " .. tostring(err.message), 2) end
  return ch
end

--- Run a loaded challenge's check in its sandbox against a target text
--- ("example.com", "192.0.2.1"; reserved addresses allowed, as in a lab)
--- with params and a probe (T.fake_probe.probe{...}); returns the result
--- {passed, completed, errors, details}.
function M.run_challenge(ch, target_text, params, probe)
  local t, _, why = require("mpic.target").normalise(target_text, { allow_reserved = true })
  if not t then error("T.run_challenge: " .. tostring(why), 2) end
  return require("mpic.challenges").run(ch, t, params or {}, probe)
end

return M
