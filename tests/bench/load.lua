-- load.lua CONFIG METHOD MODE ARG [DURATION_MS]: drives validations in-process
-- through require("mpic.orchestrator").validate and prints one JSON line.
-- Run with `mpic run tests/bench/load.lua ...` (tests/bench/run.sh does).
--   METHOD: dns (acme-dns-01 on bench.test), http (acme-http-01 on
--           www.bench.test), caa (CAA on bench.test)
--   MODE saturate, ARG = N: keep N validations in flight for DURATION_MS;
--           completions in the first second are warm-up and not counted.
--   MODE rate, ARG = R: start R validations per second (open loop, whatever
--           the previous ones do) for DURATION_MS; reports latency percentiles.
--   MODE count, ARG = N: exactly N validations, 10 in flight (for callgrind;
--           BENCH_IN_FLIGHT=K: K in flight).
-- Every run starts with one validation that must be valid; a run whose
-- validations are not all valid says so (`invalid` > 0) and exits 1.
-- The environment gives the expected values: BENCH_HASH (dns-01 TXT),
-- BENCH_TOKEN and BENCH_KA (http-01).
local mpic = require "mpic"
local util = require "mpic.core.util"
local orchestrator = require "mpic.orchestrator"

local os_getenv, string_format, table_sort, math_floor = os.getenv, string.format, table.sort, math.floor

local args = { ... }
local config, method, mode = args[1], args[2], args[3]
local arg_n = tonumber(args[4])
local duration = tonumber(args[5]) or 10000
if not (config and method and mode and arg_n) then
  io.stderr:write("usage: load.lua CONFIG dns|http|caa saturate|rate|count N [DURATION_MS]\n")
  return 2
end

local cfg, cerr = mpic.load_config(config)
if not cfg then
  io.stderr:write("load.lua: ", tostring(cerr), "\n")
  return 2
end
orchestrator.reset()

local DATE = "2026-07-01" -- after the phase-in dates: 6 remotes are required anyway

local function request()
  if method == "dns" then
    return {
      check_type = "dcv",
      domain_or_ip_target = "bench.test",
      dcv_check_parameters = {
        validation_method = "acme-dns-01",
        key_authorization_hash = assert(os_getenv("BENCH_HASH")),
      },
    }
  elseif method == "http" then
    return {
      check_type = "dcv",
      domain_or_ip_target = "www.bench.test",
      dcv_check_parameters = {
        validation_method = "acme-http-01",
        token = assert(os_getenv("BENCH_TOKEN")),
        key_authorization = assert(os_getenv("BENCH_KA")),
      },
    }
  elseif method == "caa" then
    return { check_type = "caa", domain_or_ip_target = "bench.test" }
  end
  error("unknown method " .. tostring(method))
end

-- the reasons of the first invalid validations (kind -> count), for the report
local invalid_reasons, reasons_kept = {}, 0
local function note_invalid(resp, status)
  local why = tostring(status)
  if type(resp) == "table" then
    why = tostring(resp.error or (resp.mpic_decision and resp.mpic_decision.reason))
    for _, p in ipairs(resp.perspectives or {}) do
      local errs = p.check_response and p.check_response.errors
      if type(errs) == "table" and errs[1] then
        why = why .. " | " .. tostring(errs[1].error_type) .. ": " .. tostring(errs[1].error_message)
        break
      end
    end
  end
  why = why:sub(1, 200)
  if invalid_reasons[why] or reasons_kept < 5 then
    if not invalid_reasons[why] then reasons_kept = reasons_kept + 1 end
    invalid_reasons[why] = (invalid_reasons[why] or 0) + 1
  end
end

local function validate_one()
  local t0 = util.time_ns()
  local resp, status = orchestrator.validate(request(), { date = DATE })
  local ns = util.time_ns() - t0
  local ok = status == 200 and resp.is_valid == true
  if not ok then note_invalid(resp, status) end
  return ok, ns, resp, status
end

-- warm-up: one validation that must be valid (proves the lab answers right)
do
  local ok, _, resp, status = validate_one()
  if not ok then
    io.stderr:write(
      "load.lua: warm-up validation is not valid (status ",
      tostring(status),
      "): ",
      tostring(util.json_encode(resp)),
      "\n"
    )
    return 1
  end
end

local function percentile(sorted, p)
  if #sorted == 0 then return 0 end
  local i = math.max(1, math.min(#sorted, math.ceil(p / 100 * #sorted)))
  return sorted[i]
end

local function rss_kb()
  local f = io.open("/proc/self/status", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- UDP datagrams the kernel dropped for a full receive buffer (this host, any
-- socket: mpic's or knot's), so a run that lost answers says so
local function udp_rcvbuf_errors()
  local f = io.open("/proc/net/snmp", "r")
  if not f then return nil end
  local names, values
  for line in f:lines() do
    if line:match("^Udp: ") then
      if names then
        values = line
      else
        names = line
      end
    end
  end
  f:close()
  if not values then return nil end
  local i, col = 0, nil
  for w in names:gmatch("%S+") do
    if w == "RcvbufErrors" then col = i end
    i = i + 1
  end
  i = 0
  for w in values:gmatch("%S+") do
    if i == col then return tonumber(w) end
    i = i + 1
  end
  return nil
end

local out = { method = method, mode = mode, arg = arg_n, fsync = cfg.audit.fsync }
local drops0 = udp_rcvbuf_errors()
local valid, invalid = 0, 0
local lat = {}

if mode == "saturate" then
  local t_start = mpic.now()
  local count_from, t_end = t_start + 1000, t_start + 1000 + duration
  local counted = 0
  local function worker()
    while mpic.now() < t_end do
      local ok, ns = validate_one()
      local t = mpic.now()
      if ok then
        valid = valid + 1
      else
        invalid = invalid + 1
      end
      if t >= count_from and t <= t_end then
        counted = counted + 1
        lat[#lat + 1] = ns / 1e6
      end
    end
  end
  local tasks = {}
  for i = 1, arg_n do
    tasks[i] = mpic.spawn(worker)
  end
  mpic.wait_all(tasks, duration + 60000)
  out.validations_per_s = counted * 1000 / duration
  out.duration_ms = duration
elseif mode == "rate" then
  local interval = 1000 / arg_n
  local n = math_floor(arg_n * duration / 1000)
  local tasks = {}
  local t0 = mpic.now()
  for i = 1, n do
    local due = t0 + (i - 1) * interval
    local wait = due - mpic.now()
    if wait >= 1 then mpic.sleep(math_floor(wait)) end
    tasks[i] = mpic.spawn(function()
      local ok, ns = validate_one()
      if ok then
        valid = valid + 1
      else
        invalid = invalid + 1
      end
      lat[#lat + 1] = ns / 1e6
    end)
  end
  mpic.wait_all(tasks, 60000)
  out.offered_per_s = arg_n
  out.achieved_start_per_s = n * 1000 / math.max(1, mpic.now() - t0)
  out.duration_ms = duration
elseif mode == "count" then
  local next_i = 0
  local function worker()
    while next_i < arg_n do
      next_i = next_i + 1
      local ok, ns = validate_one()
      if ok then
        valid = valid + 1
      else
        invalid = invalid + 1
      end
      lat[#lat + 1] = ns / 1e6
    end
  end
  local tasks = {}
  for i = 1, math.min(tonumber(os.getenv("BENCH_IN_FLIGHT")) or 10, arg_n) do
    tasks[i] = mpic.spawn(worker)
  end
  mpic.wait_all(tasks, 600000)
else
  io.stderr:write("load.lua: unknown mode ", tostring(mode), "\n")
  return 2
end

table_sort(lat)
out.valid, out.invalid = valid, invalid
if invalid > 0 then out.invalid_reasons = invalid_reasons end
out.latency_ms = {
  p50 = percentile(lat, 50),
  p90 = percentile(lat, 90),
  p99 = percentile(lat, 99),
  max = lat[#lat] or 0,
  n = #lat,
}
out.rss_kb, out.hwm_kb = rss_kb()
local drops1 = udp_rcvbuf_errors()
if drops0 and drops1 then out.udp_rcvbuf_drops = drops1 - drops0 end
print(util.json_encode(out))
-- the raw latency samples, for the plot
local dump = os_getenv("BENCH_LATENCY_FILE")
if dump and #lat > 0 then
  local f = assert(io.open(dump, "w"))
  for _, v in ipairs(lat) do
    f:write(string_format("%.3f\n", v))
  end
  f:close()
end
if invalid > 0 then return 1 end
return 0
