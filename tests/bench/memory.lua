-- memory.lua CONFIG [N [PART]]: resident memory per in-flight validation. CONFIG's
-- perspectives all resolve through a UDP socket that never reads, so every
-- validation stays in flight (each of its 7 checks waits on a DNS answer).
-- PART validations (the default): starts 100 validations (the baseline:
-- modules, channels, code paths warm), then N more (default 10000), waits
-- until every check has sent its query, and reports (RSS - baseline RSS) / N,
-- before and after a full garbage collection, plus the Lua heap. Then
-- cancels everything and, for comparison, measures the Lua heap of N bare
-- tasks asleep (their RSS is the "bare" PART: malloc reuses what the
-- cancelled validations freed).
-- The other PARTs decompose that figure, each in a fresh process (freed
-- memory is reused by malloc, so a second measurement in the same process
-- would see a smaller RSS delta), with the same baseline of 100 then N:
--   bare      N tasks asleep in mpic.sleep (one coroutine each)
--   query     N tasks each waiting in one resolver:query (TXT) against
--             CONFIG's first resolver (the blackhole), on 7 resolvers as a
--             validation's 7 checks use
--   sleeping  N validations whose checks sleep instead of probing
--             (orchestrator.validate's opts.run_check): the validation state
--             and its 8 tasks without any probe
-- Each prints {PART_rss_kb, PART_lua_heap_kb, PART_c_kb (RSS - Lua heap, at
-- the same instant), PART_lua_heap_live_kb (after a full GC), PART_tasks} per
-- item. Run with: mpic run tests/bench/memory.lua CONFIG [N [PART]]
-- (tests/bench/run.sh: memory.json, memory-PART.json; report.py merges them).
local mpic = require "mpic"
local util = require "mpic.core.util"
local orchestrator = require "mpic.orchestrator"

local args = { ... }
local config = args[1]
local N = tonumber(args[2]) or 10000
local part = args[3] or "validations"
local cfg = assert(mpic.load_config(assert(config, "usage: memory.lua CONFIG [N [PART]]")))
orchestrator.reset()
local hash = assert(os.getenv("BENCH_HASH"))

local function rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

local function request()
  return {
    check_type = "dcv",
    domain_or_ip_target = "bench.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  }
end
local tasks = {}
local function start(n)
  for _ = 1, n do
    tasks[#tasks + 1] = mpic.spawn(orchestrator.validate, request(), { date = "2026-07-01" })
  end
end

-- every validation task spawns 7 check tasks: wait (bounded) until the live
-- task count stops growing
local function settle(expect)
  local last, stable = -1, 0
  for _ = 1, 200 do
    mpic.sleep(50)
    local live = mpic.stats().live_tasks
    if live == last then
      stable = stable + 1
    else
      stable = 0
    end
    last = live
    if stable >= 4 and live >= expect then break end
  end
  return last
end

-- a decomposition PART: spawn(n) starts n items of it; per_item tasks each
local function measure_part(spawn, per_item)
  spawn(100)
  local l0 = settle(100 * per_item)
  collectgarbage()
  local r0, h0 = rss_kb(), collectgarbage("count")
  spawn(N)
  local l1 = settle((100 + N) * per_item)
  local r1, h1 = rss_kb(), collectgarbage("count")
  collectgarbage()
  local h2 = collectgarbage("count")
  local out = {
    [part .. "_in_flight"] = N,
    [part .. "_tasks"] = (l1 - l0) / N,
    [part .. "_rss_kb"] = (r1 - r0) / N,
    [part .. "_lua_heap_kb"] = (h1 - h0) / N,
    [part .. "_c_kb"] = ((r1 - r0) - (h1 - h0)) / N,
    [part .. "_lua_heap_live_kb"] = (h2 - h0) / N,
  }
  for _, t in ipairs(tasks) do
    mpic.cancel(t)
  end
  return out
end

if part ~= "validations" then
  local spawn, per_item
  if part == "bare" then
    spawn, per_item =
      function(n)
        for _ = 1, n do
          tasks[#tasks + 1] = mpic.spawn(mpic.sleep, 600000)
        end
      end, 1
  elseif part == "query" then
    -- the same resolver options as CONFIG's perspectives (timeouts far beyond the run)
    local dns = require "mpic.core.dns"
    local p, d = cfg.perspectives[1], cfg.defaults
    local rs = {}
    for i = 1, 7 do
      rs[i] = dns.resolver({
        servers = p.resolvers,
        timeout_ms = d.dns_timeout_ms,
        tries = d.dns_tries,
        lifetime_ms = d.dns_lifetime_ms,
      })
    end
    spawn, per_item =
      function(n)
        for _ = 1, n do
          local r = rs[#tasks % 7 + 1]
          tasks[#tasks + 1] = mpic.spawn(r.query, r, "_acme-challenge.bench.test", "TXT")
        end
      end, 1
  elseif part == "sleeping" then
    local opts = { date = "2026-07-01", run_check = function() mpic.sleep(600000) end }
    spawn, per_item =
      function(n)
        for _ = 1, n do
          tasks[#tasks + 1] = mpic.spawn(orchestrator.validate, request(), opts)
        end
      end, 8
  else
    error("memory.lua: unknown PART " .. part)
  end
  local out = measure_part(spawn, per_item)
  local finished = 0
  for _, t in ipairs(tasks) do
    if t:status() == "done" or t:status() == "error" then finished = finished + 1 end
  end
  out[part .. "_finished_early"] = finished
  print(util.json_encode(out))
  return finished == 0 and 0 or 1
end

start(100)
local live0 = settle(100)
collectgarbage()
local rss0 = rss_kb()
local lua0 = collectgarbage("count")

local t0 = mpic.now()
start(N)
local live1 = settle(100 + N)
local spawn_ms = mpic.now() - t0
local rss1, hwm1 = rss_kb()
local lua1 = collectgarbage("count")
collectgarbage()
local rss2 = rss_kb()
local lua2 = collectgarbage("count")

local done = 0
for _, t in ipairs(tasks) do
  local st = t:status()
  if st == "done" or st == "error" or st == "cancelled" then done = done + 1 end
end

for _, t in ipairs(tasks) do
  mpic.cancel(t)
end
tasks = {}
settle(0)
-- for comparison: the Lua heap of one bare task (a coroutine asleep in mpic.sleep)
collectgarbage()
local lua3 = collectgarbage("count")
local sleepers = {}
for i = 1, N do
  sleepers[i] = mpic.spawn(mpic.sleep, 600000)
end
settle(N)
collectgarbage()
local lua4 = collectgarbage("count")
for _, t in ipairs(sleepers) do
  mpic.cancel(t)
end

print(util.json_encode({
  bare_task_lua_heap_kb = (lua4 - lua3) / N,
  in_flight = N,
  finished_early = done,
  live_tasks_before = live0,
  live_tasks_after = live1,
  settle_ms = spawn_ms,
  baseline_rss_kb = rss0,
  rss_kb = rss1,
  hwm_kb = hwm1,
  kb_per_validation = (rss1 - rss0) / N,
  kb_per_validation_after_gc = (rss2 - rss0) / N,
  lua_heap_kb_per_validation = (lua1 - lua0) / N,
  lua_heap_kb_per_validation_after_gc = (lua2 - lua0) / N,
}))
return done == 0 and 0 or 1
