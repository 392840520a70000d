-- memory.lua CONFIG [N]: resident memory per in-flight validation. CONFIG's
-- perspectives all resolve through a UDP socket that never reads, so every
-- validation stays in flight (each of its 7 checks waits on a DNS answer).
-- Starts 100 validations (the baseline: modules, channels, code paths warm),
-- then N more (default 10000), waits until every check has sent its query,
-- and reports (RSS - baseline RSS) / N, before and after a full garbage
-- collection, plus the Lua heap. Then cancels everything and, for
-- comparison, measures N bare tasks asleep.
-- Run with: mpic run tests/bench/memory.lua CONFIG [N] (tests/bench/run.sh).
local mpic = require "mpic"
local util = require "mpic.core.util"
local orchestrator = require "mpic.orchestrator"

local args = { ... }
local config = args[1]
local N = tonumber(args[2]) or 10000
assert(mpic.load_config(assert(config, "usage: memory.lua CONFIG [N]")))
orchestrator.reset()
local hash = assert(os.getenv("BENCH_HASH"))

local function rss_kb()
  local f = assert(io.open("/proc/self/status", "r"))
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

local tasks = {}
local function start(n)
  for _ = 1, n do
    tasks[#tasks + 1] = mpic.spawn(orchestrator.validate, {
      check_type = "dcv", domain_or_ip_target = "bench.test",
      dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash } },
      { date = "2026-07-01" })
  end
end

-- every validation task spawns 7 check tasks: wait (bounded) until the live
-- task count stops growing
local function settle(expect)
  local last, stable = -1, 0
  for _ = 1, 200 do
    mpic.sleep(50)
    local live = mpic.stats().live_tasks
    if live == last then stable = stable + 1 else stable = 0 end
    last = live
    if stable >= 4 and live >= expect then break end
  end
  return last
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

for _, t in ipairs(tasks) do mpic.cancel(t) end
tasks = {}
settle(0)
-- for comparison: the cost of one bare task (a coroutine asleep in mpic.sleep)
collectgarbage()
local rss3, lua3 = rss_kb(), collectgarbage("count")
local sleepers = {}
for i = 1, N do sleepers[i] = mpic.spawn(mpic.sleep, 600000) end
settle(N)
collectgarbage()
local rss4, lua4 = rss_kb(), collectgarbage("count")
for _, t in ipairs(sleepers) do mpic.cancel(t) end

print(util.json_encode({
  bare_task_kb = (rss4 - rss3) / N, bare_task_lua_heap_kb = (lua4 - lua3) / N,
  in_flight = N, finished_early = done, live_tasks_before = live0, live_tasks_after = live1,
  settle_ms = spawn_ms, baseline_rss_kb = rss0, rss_kb = rss1, hwm_kb = hwm1,
  kb_per_validation = (rss1 - rss0) / N, kb_per_validation_after_gc = (rss2 - rss0) / N,
  lua_heap_kb_per_validation = (lua1 - lua0) / N, lua_heap_kb_per_validation_after_gc = (lua2 - lua0) / N,
}))
return done == 0 and 0 or 1
