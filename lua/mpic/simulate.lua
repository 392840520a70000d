-- mpic.simulate: how often a corroboration policy accepts an attacker's
-- validation, and how often it refuses a legitimate one, under an adversary
-- and outage model (`mpic simulate`, T.simulate).
--
-- Nothing touches the network: every trial runs the policy's own select()
-- and decide() (mpic.policy, the same sandbox and limits as in production),
-- with the decide state built by mpic.orchestrator's state_for, over the
-- attempts the configuration allows (defaults.max_attempts, each attempt
-- asking select() for its cohort as the orchestrator does), with every
-- perspective's check outcome given by the trial instead of a probe.
--
-- A trial of an attack kind: a scenario of that kind is drawn (by weight);
-- the perspectives it names (or k drawn at random) pass, as they see the
-- attacker's answer, and every other one fails (completed). The attack is
-- accepted when some attempt is "valid". A legitimate trial of an outage
-- kind: the perspectives the outage takes down fail without completing and
-- every other one passes; it is refused when no attempt is "valid". Each
-- trial validates its own name (s<seed>-t<i>.simulate.invalid), so the
-- cohorts the policy selects vary from trial to trial; trial i of every
-- kind and every policy uses the same name and the same draws (paired
-- comparison). A policy's select() is asked once per (name, attempt) and
-- its answer reused by every kind: it depends on nothing else. decide() is
-- called once per attempt with every result in (and once per distinct
-- state: a state seen before gets the verdict it got then) (the orchestrator's verdict
-- for any policy whose verdict does not depend on the order results arrive
-- in); an "undecided" verdict then is "invalid", as at the deadline. With
-- primary_first, a failed primary means no remote is contacted.
--
-- Shares come with a 95% Wilson score interval over the kind's trials.
-- Randomness: mpic.select's SHA-256 stream seeded by "mpic simulate" .. seed.
local policy_mod = require "mpic.policy"
local select_mod = require "mpic.select"
local orchestrator = require "mpic.orchestrator"
local quorum = require "mpic.quorum"

local type, ipairs, pairs, tostring, error, math_type, math_sqrt, string_format =
  type, ipairs, pairs, tostring, error, math.type, math.sqrt, string.format
local table_concat = table.concat

local M = {}

M.DEFAULT_TRIALS = 1000
M.MAX_TRIALS = 1000000 -- per kind
M.MAX_SCENARIOS = 10000 -- per list a model returns
M.MAX_KIND_BYTES = 64
M.Z95 = 1.959963984540054

-- Wilson score interval for x successes in n trials: lo, hi.
function M.wilson(x, n, z)
  z = z or M.Z95
  if n == 0 then return 0, 1 end
  local p = x / n
  local z2 = z * z
  local denom = 1 + z2 / n
  local center = (p + z2 / (2 * n)) / denom
  local half = z * math_sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
  local lo, hi = center - half, center + half
  if lo < 0 or x == 0 then lo = 0 end
  if hi > 1 or x == n then hi = 1 end
  return lo, hi
end

local function root()
  local paths = package.loaded["mpic.paths"]
  return paths and paths.root or "."
end

local function exists(path)
  local f = io.open(path, "r")
  if f then f:close() end
  return f ~= nil
end

--- The file a --model argument names: a bare name ("default") is one of
--- the models shipped in lua/mpic/models/, anything else a path.
function M.model_path(name)
  if name == nil then name = "default" end
  if name:find("^[%w_-]+$") then return root() .. "/lua/mpic/models/" .. name .. ".lua" end
  return name
end

-- The perspectives' public records as a model sees them.
local function public_list(cfg)
  local out = {}
  for i, p in ipairs(cfg.perspectives) do
    out[i] = {
      id = p.id,
      rir = p.rir,
      location = { lat = p.location.lat, lon = p.location.lon },
      provider = p.provider,
      remote = p.agent ~= nil,
      is_primary = p.id == cfg.primary,
    }
  end
  return out
end

local function is_list(t)
  if type(t) ~= "table" then return false end
  local n = #t
  for k in pairs(t) do
    if math_type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

local ATTACK_KEYS = { kind = true, sees = true, random = true, weight = true }
local OUTAGE_KEYS = { kind = true, down = true, p = true, weight = true }

-- Check one list a model returned; returns {kinds = {name...}, by_kind =
-- name -> {scenarios, total weight}} or raises with the key path.
local function check_scenarios(list, what, known, n)
  if not is_list(list) then error(string_format("%s must return a list of scenarios, got %s", what, type(list)), 0) end
  if #list == 0 then error(what .. " returned no scenarios", 0) end
  if #list > M.MAX_SCENARIOS then
    error(string_format("%s returned %d scenarios (at most %d)", what, #list, M.MAX_SCENARIOS), 0)
  end
  local keys = what == "attacks" and ATTACK_KEYS or OUTAGE_KEYS
  local out = { kinds = {}, by_kind = {} }
  for i, s in ipairs(list) do
    local at = string_format("%s[%d]", what, i)
    if type(s) ~= "table" then error(at .. ": expected a table, got " .. type(s), 0) end
    for k in pairs(s) do
      if not keys[k] then error(string_format("%s: unknown key %s", at, tostring(k)), 0) end
    end
    if type(s.kind) ~= "string" or s.kind == "" or #s.kind > M.MAX_KIND_BYTES or s.kind:find("[%c]") then
      error(string_format("%s.kind: expected a non-empty string of at most %d bytes", at, M.MAX_KIND_BYTES), 0)
    end
    local w = s.weight == nil and 1 or s.weight
    if type(w) ~= "number" or w ~= w or w <= 0 or w == 1 / 0 then
      error(at .. ".weight: expected a positive finite number", 0)
    end
    local sc = { weight = w }
    local ids_key = what == "attacks" and "sees" or "down"
    local ids = s[ids_key]
    if ids ~= nil then
      if not is_list(ids) then error(string_format("%s.%s: expected a list of perspective ids", at, ids_key), 0) end
      local set = {}
      for j, id in ipairs(ids) do
        if not known[id] then
          error(
            string_format(
              "%s.%s[%d]: unknown perspective %s",
              at,
              ids_key,
              j,
              type(id) == "string" and string_format("%q", id) or type(id)
            ),
            0
          )
        end
        set[id] = true
      end
      sc.set = set
    end
    if what == "attacks" then
      if (ids == nil) == (s.random == nil) then
        error(at .. ": give exactly one of sees (a list of ids) and random (a count)", 0)
      end
      if s.random ~= nil then
        if math_type(s.random) ~= "integer" or s.random < 0 or s.random > n then
          error(string_format("%s.random: expected an integer from 0 to %d (the number of perspectives)", at, n), 0)
        end
        sc.random = s.random
      end
    else
      if s.p ~= nil and (type(s.p) ~= "number" or not (s.p >= 0 and s.p <= 1)) then
        error(at .. ".p: expected a probability from 0 to 1", 0)
      end
      if ids == nil and s.p == nil then error(at .. ": give down (a list of ids), p (a probability) or both", 0) end
      sc.p = s.p
      sc.set = sc.set or {}
    end
    local k = out.by_kind[s.kind]
    if not k then
      k = { scenarios = {}, total = 0 }
      out.by_kind[s.kind] = k
      out.kinds[#out.kinds + 1] = s.kind
    end
    k.scenarios[#k.scenarios + 1] = sc
    k.total = k.total + w
  end
  return out
end

--- Load a model file in the policy sandbox and run it over cfg's
--- perspectives. Returns {name, description, path, attacks, outages} or
--- nil, reason (naming the file).
function M.load_model(path, cfg)
  local function fail(why) return nil, string_format("model %s: %s", path, why) end
  local tbl, run = policy_mod.load_sandboxed(path)
  if tbl == nil then return fail(run) end
  if type(tbl) ~= "table" then return fail("the file must return a table, got " .. type(tbl)) end
  local fields = { name = "string", description = "string", attacks = "function", outages = "function" }
  for k, v in pairs(tbl) do
    if not fields[k] then return fail("unknown field " .. tostring(k)) end
    if type(v) ~= fields[k] then return fail(string_format("field %s must be a %s, got %s", k, fields[k], type(v))) end
  end
  for _, k in ipairs({ "name", "attacks", "outages" }) do
    if tbl[k] == nil then return fail(string_format("missing required field %q", k)) end
  end
  local known, n = {}, #cfg.perspectives
  for _, p in ipairs(cfg.perspectives) do
    known[p.id] = true
  end
  local model = { name = tbl.name, description = tbl.description, path = path }
  for _, what in ipairs({ "attacks", "outages" }) do
    local okc, list = run(tbl[what], public_list(cfg))
    if not okc then return fail(what .. ": " .. tostring(list)) end
    local copy, why = policy_mod.plain_copy(list, what)
    if copy == nil and why then return fail(why) end
    local okv, checked = pcall(check_scenarios, copy, what, known, n)
    if not okv then return fail(tostring(checked)) end
    model[what] = checked
  end
  return model
end

-- Draw a scenario of one kind by weight (rng:int over a million steps).
local SCALE = 1000000
local function draw(kind, rng)
  local sc = kind.scenarios
  if #sc == 1 then return sc[1] end
  local u = (rng:int(SCALE) - 0.5) / SCALE * kind.total
  local acc = 0
  for _, s in ipairs(sc) do
    acc = acc + s.weight
    if u < acc then return s end
  end
  return sc[#sc]
end

-- The ids of k perspectives drawn uniformly (partial Fisher-Yates).
local function random_set(ids, k, rng)
  local a = {}
  for i, id in ipairs(ids) do
    a[i] = id
  end
  local set, n = {}, #a
  for i = 1, k do
    local j = i - 1 + rng:int(n - i + 1)
    a[i], a[j] = a[j], a[i]
    set[a[i]] = true
  end
  return set
end

-- Every trial's draws, shared by all policies: attack kinds -> list of
-- "sees" sets, outage kinds -> list of "down" sets.
local function draw_trials(model, ids, trials, rng)
  local out = { attacks = {}, outages = {} }
  for _, kname in ipairs(model.attacks.kinds) do
    local kind, list = model.attacks.by_kind[kname], {}
    for t = 1, trials do
      local s = draw(kind, rng)
      list[t] = s.random and random_set(ids, s.random, rng) or s.set
    end
    out.attacks[kname] = list
  end
  for _, kname in ipairs(model.outages.kinds) do
    local kind, list = model.outages.by_kind[kname], {}
    for t = 1, trials do
      local s = draw(kind, rng)
      local set = s.set
      if s.p and s.p > 0 then
        set = {}
        for id in pairs(s.set) do
          set[id] = true
        end
        local cut = s.p * SCALE
        for _, id in ipairs(ids) do
          if rng:int(SCALE) <= cut then set[id] = true end
        end
      end
      list[t] = set
    end
    out.outages[kname] = list
  end
  return out
end

local PASS = { passed = true, completed = true }
local FAIL = { passed = false, completed = true }
local DOWN = { passed = false, completed = false }

-- One policy over every trial. Returns its result table or nil, reason.
local function run_policy(pol, env)
  local cfg, count, date = env.cfg, env.count, env.date
  local pub = orchestrator.public_records(env.st, pol)
  local ok, why = pol:check_config(
    env.registry(),
    { perspective_count = count, max_attempts = env.attempts, timeout_ms = cfg.defaults.timeout_ms },
    date
  )
  if not ok then
    return nil, string_format("policy %s refuses the configuration on %s: %s", pol.path, date, tostring(why))
  end
  local picks = {} -- attempt -> trial -> ids | false
  for a = 1, env.attempts do
    picks[a] = {}
  end
  local select_failures, select_reason = 0, nil
  local function cohort(t, a)
    local ids = picks[a][t]
    if ids == nil then
      local r
      r, why = pol:select_owned(env.registry(), env.targets[t], count, a, select_mod.new_rng(env.seeds[t]))
      ids = r or false
      if not r then
        select_failures = select_failures + 1
        select_reason = select_reason or why
      end
      picks[a][t] = ids
    end
    return ids
  end
  local primary = cfg.primary
  local rir_of = env.rir_of
  -- decide() is a function of its state (the sandbox offers no clock and no
  -- randomness), so a state seen before gets the verdict it got then; the
  -- key lists the cohort in order with each outcome.
  local verdicts, key = {}, {}
  local LETTER = { [PASS] = "+", [FAIL] = "-", [DOWN] = "~" }
  -- valid?, contacted: one validation where outcome_of(id) is PASS/FAIL/DOWN
  local function validation(t, outcome_of)
    local contacted = 0
    for a = 1, env.attempts do
      local ids = cohort(t, a)
      if not ids then return false, contacted end
      local pout = primary and outcome_of(primary)
      if primary then contacted = contacted + 1 end
      local gate_closed = pout and pol.primary_first and not pout.passed
      key[1] = pout and LETTER[pout] or ""
      local n = #ids
      for i = 1, n do
        local id = ids[i]
        key[2 * i], key[2 * i + 1] = id, LETTER[gate_closed and DOWN or outcome_of(id)]
      end
      if not gate_closed then contacted = contacted + n end
      local k = table_concat(key, "\0", 1, 2 * n + 1)
      local verdict = verdicts[k]
      if verdict == nil then
        local slots = {}
        for i = 1, n do
          local id = ids[i]
          slots[i] = { id = id, rir = rir_of[id], result = gate_closed and DOWN or outcome_of(id) }
        end
        local pslot = primary and { id = primary, rir = rir_of[primary], result = pout } or nil
        -- the BR floor under every policy, as in the orchestrator
        verdict = orchestrator.floor(
          cfg,
          slots,
          pslot,
          date,
          pol:decide_owned(orchestrator.state_for(pub, slots, pslot, n, nil, date))
        )
        verdicts[k] = verdict
      end
      if verdict == "valid" then return true, contacted end
    end
    return false, contacted
  end

  local res = { name = pol.name, path = pol.path, attacks = {}, outages = {} }
  for _, kname in ipairs(env.model.attacks.kinds) do
    local sets, accepted = env.draws.attacks[kname], 0
    for t = 1, env.trials do
      local sees = sets[t]
      if validation(t, function(id) return sees[id] and PASS or FAIL end) then accepted = accepted + 1 end
    end
    res.attacks[#res.attacks + 1] = { kind = kname, trials = env.trials, accepted = accepted }
  end
  local contacted_sum, legit = 0, 0
  for _, kname in ipairs(env.model.outages.kinds) do
    local sets, refused = env.draws.outages[kname], 0
    for t = 1, env.trials do
      local down = sets[t]
      local valid, c = validation(t, function(id) return down[id] and DOWN or PASS end)
      if not valid then refused = refused + 1 end
      contacted_sum, legit = contacted_sum + c, legit + 1
    end
    res.outages[#res.outages + 1] = { kind = kname, trials = env.trials, refused = refused }
  end
  for _, list in ipairs({ res.attacks, res.outages }) do
    for _, row in ipairs(list) do
      local x = row.accepted or row.refused
      row.share = x / row.trials
      local lo, hi = M.wilson(x, row.trials)
      row.ci95 = { lo, hi }
    end
  end
  res.mean_contacted = legit > 0 and contacted_sum / legit or 0
  res.select_failures = select_failures
  res.select_failure = select_reason
  return res
end

--[[ run{cfg, policies, model, trials, seed, date, count} -> result or nil, reason
  cfg       a validated configuration (mpic.config)
  policies  list of policy file paths (default: cfg.policy)
  model     model file path or bare model name (default "default")
  trials    trials per kind (default DEFAULT_TRIALS, at most MAX_TRIALS)
  seed      string or integer (default "1")
  date      "YYYY-MM-DD" the policies judge on (default today, UTC)
  count     remote perspectives per attempt (default defaults.perspective_count)
result = {config, model = {name, description, path}, trials, seed, date,
  perspective_count, max_attempts, policies = { {name, path, attacks =
  { {kind, trials, accepted, share, ci95 = {lo, hi}} }, outages = { {kind,
  trials, refused, share, ci95} }, mean_contacted, select_failures,
  select_failure} }, elapsed_ms} ]]
function M.run(o)
  if type(o) ~= "table" or type(o.cfg) ~= "table" then
    error("simulate.run{cfg = ...}: a configuration is required", 2)
  end
  local cfg = o.cfg
  local trials = o.trials or M.DEFAULT_TRIALS
  if math_type(trials) ~= "integer" or trials < 1 or trials > M.MAX_TRIALS then
    return nil, string_format("trials must be an integer from 1 to %d, got %s", M.MAX_TRIALS, tostring(trials))
  end
  local seed = tostring(o.seed or "1")
  local date = o.date or os.date("!%Y-%m-%d")
  local okd, dwhy = quorum.check_date(date)
  if not okd then return nil, dwhy end
  local count = o.count or cfg.defaults.perspective_count
  if math_type(count) ~= "integer" or count < 1 then
    return nil, "perspective count must be a positive integer, got " .. tostring(count)
  end
  local attempts = cfg.defaults.max_attempts or 1
  local policies = o.policies or { cfg.policy }
  if #policies == 0 then policies = { cfg.policy } end
  local loaded = {}
  for i, path in ipairs(policies) do
    if path:sub(1, 1) ~= "/" and not exists(path) and exists(root() .. "/" .. path) then
      path = root() .. "/" .. path -- as the configuration's policy: the mpic root as fallback
    end
    local pol, err = policy_mod.load(path)
    if not pol then return nil, err end
    loaded[i] = pol
  end
  local model, merr = M.load_model(M.model_path(o.model), cfg)
  if not model then return nil, merr end

  local util = require "mpic.core.util"
  local t0 = require("mpic").now()
  local ids, rir_of = {}, {}
  for i, p in ipairs(cfg.perspectives) do
    ids[i] = p.id
    rir_of[p.id] = p.rir
  end
  local rng = select_mod.new_rng(util.sha256("mpic simulate" .. seed))
  local secret = cfg.selection_secret or "mpic"
  local targets, seeds = {}, {}
  for t = 1, trials do
    targets[t] = string_format("s%s-t%d.simulate.invalid", seed, t)
    seeds[t] = select_mod.seed(secret, targets[t])
  end
  local env = {
    cfg = cfg,
    count = count,
    date = date,
    attempts = attempts,
    trials = trials,
    model = model,
    targets = targets,
    seeds = seeds,
    rir_of = rir_of,
    st = { cfg = cfg, list = cfg.perspectives },
    draws = draw_trials(model, ids, trials, rng),
    registry = function() -- fresh per call: policies get it without a copy
      local out = public_list(cfg)
      for _, e in ipairs(out) do
        e.healthy = true
      end
      return out
    end,
  }
  local result = {
    config = cfg.file,
    trials = trials,
    seed = seed,
    date = date,
    perspective_count = count,
    max_attempts = attempts,
    policies = {},
    model = { name = model.name, description = model.description, path = model.path },
  }
  for i, pol in ipairs(loaded) do
    local r, err = run_policy(pol, env)
    if not r then return nil, err end
    result.policies[i] = r
  end
  result.elapsed_ms = require("mpic").now() - t0
  return result
end

-- Text output ----------------------------------------------------------------

local function pct(x) return string_format("%.2f%%", 100 * x) end

local function cell(row) return string_format("%s [%s, %s]", pct(row.share), pct(row.ci95[1]), pct(row.ci95[2])) end

local function pad(s, w) return s .. string.rep(" ", w - #s) end

--- The side-by-side table (a string).
function M.format(r)
  local lines = {}
  lines[#lines + 1] = string_format("model %s (%s)", r.model.name, r.model.path)
  if r.model.description then lines[#lines + 1] = "  " .. r.model.description end
  lines[#lines + 1] = string_format(
    "config %s: %d remote perspectives per attempt, up to %d attempts; date %s; seed %s; %d trials per row",
    tostring(r.config),
    r.perspective_count,
    r.max_attempts,
    r.date,
    r.seed,
    r.trials
  )
  lines[#lines + 1] = "shares with 95% Wilson score intervals"
  lines[#lines + 1] = ""
  local rows = { { "" } }
  for _, p in ipairs(r.policies) do
    rows[1][#rows[1] + 1] = p.name
  end
  rows[#rows + 1] = { "attacker accepted" }
  local first = r.policies[1]
  for i, a in ipairs(first.attacks) do
    local row = { "  " .. a.kind }
    for _, p in ipairs(r.policies) do
      row[#row + 1] = cell(p.attacks[i])
    end
    rows[#rows + 1] = row
  end
  rows[#rows + 1] = { "legitimate refused" }
  for i, a in ipairs(first.outages) do
    local row = { "  " .. a.kind .. " outage" }
    for _, p in ipairs(r.policies) do
      row[#row + 1] = cell(p.outages[i])
    end
    rows[#rows + 1] = row
  end
  local row = { "mean perspectives contacted" }
  for _, p in ipairs(r.policies) do
    row[#row + 1] = string_format("%.2f", p.mean_contacted)
  end
  rows[#rows + 1] = row
  local widths = {}
  for _, rw in ipairs(rows) do
    for c, s in ipairs(rw) do
      if c > 1 or #rw > 1 then widths[c] = math.max(widths[c] or 0, #s) end
    end
  end
  for _, rw in ipairs(rows) do
    local parts = {}
    for c, s in ipairs(rw) do
      parts[c] = c < #rw and pad(s, widths[c]) or s
    end
    lines[#lines + 1] = table_concat(parts, "  ")
  end
  for _, p in ipairs(r.policies) do
    if p.select_failures > 0 then
      lines[#lines + 1] = string_format(
        "%s: select() refused %d times (counted as not valid), first: %s",
        p.name,
        p.select_failures,
        tostring(p.select_failure)
      )
    end
  end
  return table_concat(lines, "\n") .. "\n"
end

return M
