-- breakdown.lua CONFIG [N]: where the CPU time of one acme-dns-01 validation
-- goes, measured piece by piece in this process (CPU time, os.clock) with
-- the real modules and the real configuration, N repetitions each. Prints
-- one JSON object: microseconds per call and per validation (a validation
-- makes 7 checks, 1 select(), 1 audit line and one decide() per wakeup of
-- the orchestrator: decide_calls_per_validation says how many).
-- Run with: mpic run tests/bench/breakdown.lua CONFIG (tests/bench/run.sh).
local mpic = require "mpic"
local util = require "mpic.core.util"
local orchestrator = require "mpic.orchestrator"
local perspectives = require "mpic.perspectives"
local challenges = require "mpic.challenges"
local select_mod = require "mpic.select"
local request_mod = require "mpic.request"
local target_mod = require "mpic.target"

local os_clock = os.clock

local args = { ... }
local config = args[1]
local N = tonumber(args[2]) or 2000
assert(mpic.load_config(assert(config, "usage: breakdown.lua CONFIG [N]")))
orchestrator.reset()
local ctx = assert(orchestrator.context())
local cfg = ctx.cfg
local hash = assert(os.getenv("BENCH_HASH"))
local DATE = "2026-07-01"

local function req()
  return {
    check_type = "dcv",
    domain_or_ip_target = "bench.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  }
end

local function per_call_us(n, fn)
  fn() -- warm
  collectgarbage()
  local t0 = os_clock()
  for _ = 1, n do
    fn()
  end
  return (os_clock() - t0) * 1e6 / n
end

local out = {}

-- the whole validation with the real probes, one at a time (CPU time of this
-- process); also counts the decide() calls a validation makes this way
do
  local function one()
    local r, st = orchestrator.validate(req(), { date = DATE })
    assert(st == 200 and r.is_valid, "validation not valid")
  end
  local pol, calls = ctx.policy, 0
  local decide_owned = pol.decide_owned
  pol.decide_owned = function(...)
    calls = calls + 1
    return decide_owned(...)
  end
  out.validate_real_us = per_call_us(N, one)
  pol.decide_owned = nil -- back to the method
  out.decide_calls_per_validation = calls / (N + 1)
end

-- the whole validation with every check answered at once (no I/O):
-- orchestration, policy, request parsing, tasks, audit line
local function pass_check()
  return { passed = true, completed = true, errors = {}, details = {}, elapsed_ms = 0, timestamp_ns = 0 }
end
out.validate_no_io_us = per_call_us(N, function()
  local r, st = orchestrator.validate(req(), { date = DATE, run_check = pass_check })
  assert(st == 200 and r.is_valid)
end)

-- request parsing and normalisation
local remotes = #cfg.perspectives - 1
out.request_validate_us = per_call_us(
  N,
  function()
    assert(
      request_mod.validate(
        req(),
        { cfg = cfg, registry = ctx.registry, remotes = remotes, date = DATE, now = os.time(), min_remotes = 5 }
      )
    )
  end
)

-- perspective selection as the orchestrator makes it: a fresh registry list
-- handed to the sandboxed select without a copy, plus the seed and stream
out.select_us = per_call_us(N, function()
  local seed = select_mod.seed(cfg.selection_secret, "bench.test")
  assert(ctx.policy:select_owned(perspectives.list(), "bench.test", 6, 1, select_mod.new_rng(seed)))
end)
out.registry_list_us = per_call_us(N, function() perspectives.list() end)

-- one decide() as the orchestrator makes it: a fresh state, handed over
-- without a copy; and, for comparison, decide() on a caller's table (copied)
local function fresh_state()
  local state = {
    primary = { id = "primary", passed = true, completed = true, done = true },
    remotes = {},
    count = 6,
    date = DATE,
  }
  for i, id in ipairs({ "pdx", "fra", "sto", "sgp", "syd", "gru" }) do
    state.remotes[i] = { id = id, rir = perspectives.get(id).rir, passed = true, completed = true, done = i <= 4 }
  end
  return state
end
local state = fresh_state()
out.decide_us = per_call_us(N, function() ctx.policy:decide_owned(fresh_state()) end)
out.decide_copy_us = per_call_us(N, function() ctx.policy:decide(state) end)
out.plain_copy_us = per_call_us(N, function() require("mpic.policy").plain_copy(state, "state") end)

-- one check's Lua work with a probe that answers at once (7 per validation)
local ch = ctx.registry.by_name["acme-dns-01"]
local target = target_mod.normalise("bench.test", { allow_reserved = true })
local answer = { rcode = "NOERROR", records = { { type = "TXT", value = hash, ttl = 300 } } }
local real = perspectives.probe("primary")
local fake = setmetatable({ dns = function() return answer end }, { __index = real })
local params = { key_authorization_hash = hash }
local r0 = challenges.run(ch, target, params, fake)
out.check_lua_passed = r0.passed
out.check_lua_us = per_call_us(N * 7, function() challenges.run(ch, target, params, fake) end)
out.base64url_decode_us = per_call_us(N * 7, function() require("mpic.challenge._common").base64url_decode(hash) end)

-- one DNS query through the binding (7 per validation), sequential
out.dns_query_us = per_call_us(N, function() assert(real.dns("_acme-challenge.bench.test", "TXT")) end)

-- the audit line: JSON encoding of a real line, and the append (fsync off / on)
local resp = orchestrator.validate(req(), { date = DATE })
local line = {
  ts = os.date("!%Y-%m-%dT%H:%M:%SZ"),
  target = "bench.test",
  perspectives = resp.perspectives,
  attempts = { { perspectives = resp.perspectives } },
  quorum = "6/6",
  policy = ctx.policy.path,
}
out.json_encode_audit_us = per_call_us(N, function() assert(util.json_encode(line)) end)
local text = assert(util.json_encode(line))
local tmp = os.tmpname()
out.append_line_nofsync_us = per_call_us(N, function() assert(util.append_line(tmp, text, false)) end)
out.append_line_fsync_us = per_call_us(200, function() assert(util.append_line(tmp, text, true)) end)
os.remove(tmp)
-- the audit writer the orchestrator uses (mpic.core.audit): without fsync
-- the loop writes the line itself; with fsync the task waits for the worker
-- thread, alone, or 64 at a time sharing one fdatasync (CPU of the whole
-- process, the worker thread included, per line)
local wn = assert(util.audit.open(tmp .. ".nofsync", false))
out.audit_nofsync_us = per_call_us(N, function() assert(wn:append(text)) end)
local wf = assert(util.audit.open(tmp .. ".fsync", true))
out.audit_fsync_us = per_call_us(200, function() assert(wf:append(text)) end)
local t64 = {}
out.audit_fsync_64_us = per_call_us(20, function()
  for i = 1, 64 do
    t64[i] = mpic.spawn(wf.append, wf, text)
  end
  mpic.wait_all(t64)
end) / 64
os.remove(tmp .. ".nofsync")
os.remove(tmp .. ".fsync")

-- task spawn + wait (8 tasks per validation: the 7 checks and the validation)
out.spawn_wait_us = per_call_us(N * 7, function()
  mpic.wait(mpic.spawn(function() return 1 end))
end)

out.n = N
print(util.json_encode(out))
return 0
