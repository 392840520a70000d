-- delay.lua CONFIG PROFILE DELAYS RATE COUNT: validation latency against the
-- delay of the perspective whose answer completes the quorum. CONFIG's
-- perspectives each resolve through their own tests/lab/dnsdelay.py relay;
-- DELAYS says what each relay adds ("primary=0,pdx=20,..."; the relays are
-- started by tests/bench/latency_delay.sh). Starts RATE acme-dns-01
-- validations of bench.test per second (open loop) until COUNT have started,
-- and prints one JSON line:
--   quorum_delay_ms   the configured delay that completes the quorum: the
--                     quorum_count-th fastest remote's, or the primary's if
--                     larger (br.lua: the primary must pass too)
--   latency_ms        whole validation (orchestrator.validate, audit included)
--   decision_ms       mpic_decision.elapsed_ms (before the audit line)
--   quorum_check_ms   per validation, the observed answer time of the check
--                     that completed the quorum (same rule, measured elapsed)
--   perspective_ms    per perspective, p50 of its completed checks' elapsed,
--                     and how often it was cancelled after the verdict
-- Every validation must be valid (the lab answers right); if not, `invalid`
-- says so and the script exits 1. BENCH_HASH holds the expected TXT value;
-- BENCH_LATENCY_FILE, if set, receives the latency samples (ms, one a line).
-- Run with `mpic run tests/bench/delay.lua ...`.
local mpic = require "mpic"
local util = require "mpic.core.util"
local orchestrator = require "mpic.orchestrator"

local os_getenv, string_format, table_sort, math_floor, math_max, math_min, math_ceil =
  os.getenv, string.format, table.sort, math.floor, math.max, math.min, math.ceil
local tonumber, tostring, ipairs, pairs, type = tonumber, tostring, ipairs, pairs, type

local args = { ... }
local config, profile, delays_arg = args[1], args[2], args[3]
local rate, count = tonumber(args[4]), tonumber(args[5])
if not (config and profile and delays_arg and rate and count) or rate <= 0 or count < 1 then
  io.stderr:write("usage: delay.lua CONFIG PROFILE id=ms,id=ms,... RATE COUNT\n")
  return 2
end

local delays = {}
for id, ms in delays_arg:gmatch("([%w_-]+)=([%d.]+)") do
  delays[id] = tonumber(ms)
end

local cfg, cerr = mpic.load_config(config)
if not cfg then
  io.stderr:write("delay.lua: ", tostring(cerr), "\n")
  return 2
end
orchestrator.reset()
local HASH = assert(os_getenv("BENCH_HASH"), "BENCH_HASH is not set")
local DATE = "2026-07-01" -- 6 remotes required, quorum 4

local function request()
  return {
    check_type = "dcv",
    domain_or_ip_target = "bench.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH },
  }
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  return sorted[math_max(1, math_min(#sorted, math_ceil(p / 100 * #sorted)))]
end

local function summary(xs)
  table_sort(xs)
  return {
    p50 = percentile(xs, 50),
    p90 = percentile(xs, 90),
    p99 = percentile(xs, 99),
    min = xs[1] or 0,
    max = xs[#xs] or 0,
    n = #xs,
  }
end

-- the k-th smallest of a list of numbers (nil if fewer than k)
local function kth(list, k)
  local c = {}
  for i, v in ipairs(list) do
    c[i] = v
  end
  table_sort(c)
  return c[k]
end

-- split a response into the primary's entry and the remotes' entries
local function entries(resp)
  local primary = resp.primary_perspective
  local pid = primary and primary.perspective_code
  local remotes = {}
  for _, p in ipairs(resp.perspectives or {}) do
    if p.perspective_code ~= pid then remotes[#remotes + 1] = p end
  end
  return primary, remotes
end

local reasons, reasons_kept = {}, 0
local function note_invalid(resp, status)
  local why = tostring(status)
  if type(resp) == "table" then why = tostring(resp.error or (resp.mpic_decision and resp.mpic_decision.reason)) end
  why = why:sub(1, 200)
  if reasons[why] or reasons_kept < 5 then
    if not reasons[why] then reasons_kept = reasons_kept + 1 end
    reasons[why] = (reasons[why] or 0) + 1
  end
end

-- warm-up: one validation that must be valid; it also gives the primary's id,
-- the remotes and the quorum the policy applies
local first, first_status = orchestrator.validate(request(), { date = DATE })
if first_status ~= 200 or not first.is_valid then
  io.stderr:write(
    "delay.lua: warm-up validation is not valid (status ",
    tostring(first_status),
    "): ",
    tostring(util.json_encode(first)),
    "\n"
  )
  return 1
end
local primary0, remotes0 = entries(first)
local quorum = first.actual_orchestration_parameters.quorum_count
local primary_id = primary0 and primary0.perspective_code
local remote_delays, remote_ids = {}, {}
for _, p in ipairs(remotes0) do
  local d = delays[p.perspective_code]
  if not d then
    io.stderr:write("delay.lua: no delay given for perspective ", p.perspective_code, "\n")
    return 2
  end
  remote_delays[#remote_delays + 1] = d
  remote_ids[#remote_ids + 1] = p.perspective_code
end
local primary_delay = primary_id and delays[primary_id] or 0
local kth_remote = kth(remote_delays, quorum)
if not kth_remote then
  io.stderr:write("delay.lua: fewer remotes than the quorum\n")
  return 2
end
local quorum_delay = math_max(kth_remote, primary_delay)
local quorum_by = {}
if primary_delay >= kth_remote then quorum_by[#quorum_by + 1] = primary_id end
if kth_remote >= primary_delay then
  for _, id in ipairs(remote_ids) do
    if delays[id] == kth_remote then quorum_by[#quorum_by + 1] = id end
  end
end

local lat, decision, qcheck = {}, {}, {}
local per = {} -- id -> { elapsed = {...}, cancelled = n }
local valid, invalid = 0, 0

local function note_perspective(p)
  local e = per[p.perspective_code]
  if not e then
    e = { elapsed = {}, cancelled = 0 }
    per[p.perspective_code] = e
  end
  if p.check_response.check_completed then
    e.elapsed[#e.elapsed + 1] = p.elapsed_ms
  else
    e.cancelled = e.cancelled + 1
  end
end

local function validate_one()
  local t0 = util.time_ns()
  local resp, status = orchestrator.validate(request(), { date = DATE })
  local ms = (util.time_ns() - t0) / 1e6
  lat[#lat + 1] = ms
  if not (status == 200 and resp.is_valid == true) then
    invalid = invalid + 1
    note_invalid(resp, status)
    return
  end
  valid = valid + 1
  decision[#decision + 1] = resp.mpic_decision.elapsed_ms
  local primary, remotes = entries(resp)
  local passed = {}
  for _, p in ipairs(remotes) do
    note_perspective(p)
    if p.check_response.check_passed then passed[#passed + 1] = p.elapsed_ms end
  end
  if primary then note_perspective(primary) end
  local q = kth(passed, quorum)
  if q then qcheck[#qcheck + 1] = math_max(q, primary and primary.elapsed_ms or 0) end
end

local interval = 1000 / rate
local tasks = {}
local t0 = mpic.now()
for i = 1, count do
  local wait = t0 + (i - 1) * interval - mpic.now()
  if wait >= 1 then mpic.sleep(math_floor(wait)) end
  tasks[i] = mpic.spawn(validate_one)
end
mpic.wait_all(tasks, 120000)
local achieved = count * 1000 / math_max(1, mpic.now() - t0)

local per_out = {}
for id, e in pairs(per) do
  table_sort(e.elapsed)
  per_out[id] = {
    delay_ms = delays[id],
    p50 = percentile(e.elapsed, 50),
    completed = #e.elapsed,
    cancelled = e.cancelled,
  }
end

-- the raw samples, for the plot
local dump = os_getenv("BENCH_LATENCY_FILE")
if dump and #lat > 0 then
  local f = assert(io.open(dump, "w"))
  for _, v in ipairs(lat) do
    f:write(string_format("%.3f\n", v))
  end
  f:close()
end

local out = {
  profile = profile,
  delays = delays,
  primary = primary_id,
  quorum = quorum,
  quorum_delay_ms = quorum_delay,
  quorum_completed_by = quorum_by,
  offered_per_s = rate,
  achieved_start_per_s = achieved,
  count = count,
  valid = valid,
  invalid = invalid,
  fsync = cfg.audit.fsync,
  latency_ms = summary(lat),
  decision_ms = summary(decision),
  quorum_check_ms = summary(qcheck),
  perspective_ms = per_out,
}
local L = out.latency_ms
out.ratio_p50 = quorum_delay > 0 and L.p50 / quorum_delay or nil
out.ratio_p99 = quorum_delay > 0 and L.p99 / quorum_delay or nil
if invalid > 0 then out.invalid_reasons = reasons end
print(util.json_encode(out))
if invalid > 0 then return 1 end
return 0
