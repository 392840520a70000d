-- ceiling.lua dns|http SERVER DURATION_MS N...: the probe path's ceiling,
-- probes/s through mpic's own runtime with no orchestration at all (no
-- request, policy, selection, checks or audit): N tasks each loop one probe.
--   dns:  resolver:query("_acme-challenge.bench.test", "TXT"), the tasks
--         spread over 7 resolvers (one per perspective, as a validation has)
--         on SERVER (ADDR:PORT), timeout_ms 2000, tries 2
--   http: the http-01 GET of the token URL (BENCH_TOKEN) on SERVER, a fresh
--         connection per request (the probe context, no keepalive), with the
--         options acme-http-01 gives (max_bytes 128); no DNS lookup
-- For each N: 0.5 s warm-up, then DURATION_MS measured; only successful
-- answers count (NOERROR with the TXT record / status 200), failures are
-- counted by kind. Also the process CPU (os.clock) per probe. Prints one
-- JSON line. Run with `mpic run tests/bench/ceiling.lua ...` (run.sh).
local mpic = require "mpic"
local util = require "mpic.core.util"

local args = { ... }
local kind, server, duration = args[1], args[2], tonumber(args[3])
local sweep = {}
for i = 4, #args do
  sweep[#sweep + 1] = tonumber(args[i])
end
if not ((kind == "dns" or kind == "http") and server and duration and #sweep > 0) then
  io.stderr:write("usage: ceiling.lua dns|http SERVER DURATION_MS N...\n")
  return 2
end
local host, port = server:match("^(.+):(%d+)$")
local WARMUP = 500

-- make_probe() -> a function: true on a successful answer, else false, failure kind
local make_probe
if kind == "dns" then
  local dns = require "mpic.core.dns"
  local resolvers = {}
  for i = 1, 7 do
    resolvers[i] = dns.resolver({ servers = { server }, timeout_ms = 2000, tries = 2 })
  end
  local next_r = 0
  make_probe = function()
    -- each task keeps the resolver it was given (tasks round-robin over the 7)
    next_r = next_r % 7 + 1
    local r = resolvers[next_r]
    return function()
      local res, k = r:query("_acme-challenge.bench.test", "TXT")
      if res and res.records and #res.records > 0 then return true end
      return false, tostring(k or (res and "no records"))
    end
  end
else
  local http = require "mpic.core.http"
  local url = "http://www.bench.test/.well-known/acme-challenge/" .. assert(os.getenv("BENCH_TOKEN"), "BENCH_TOKEN")
  local opts = {
    connect_ip = host,
    connect_port = tonumber(port),
    max_bytes = 128,
    timeout_ms = 2000,
    user_agent = "mpic/0.1 (+multi-perspective validation)",
    allow_reserved = true,
  } -- the bench lab is on loopback
  make_probe = function()
    return function()
      local res, k = http.request(url, opts)
      if res and res.status == 200 then return true end
      return false, tostring(k or (res and ("status " .. tostring(res.status))))
    end
  end
end

local function run(n)
  local ok, failed, failures, stop = 0, 0, {}, false
  local function worker()
    local p = make_probe()
    while not stop do
      local good, why = p()
      if good then
        ok = ok + 1
      else
        failed = failed + 1
        failures[why] = (failures[why] or 0) + 1
      end
    end
  end
  local tasks = {}
  for i = 1, n do
    tasks[i] = mpic.spawn(worker)
  end
  mpic.sleep(WARMUP)
  local ok0, failed0, t0, c0 = ok, failed, mpic.now(), os.clock()
  failures = {} -- the kinds of the measured window only
  mpic.sleep(duration)
  local ok1, failed1, t1, c1 = ok, failed, mpic.now(), os.clock()
  local kinds = failures
  -- the window is over: stop the loops (a probe still waiting is cancelled)
  stop = true
  for _, t in ipairs(tasks) do
    mpic.cancel(t)
  end
  mpic.wait_all(tasks, 5000)
  mpic.sleep(200) -- let cancelled sockets close before the next N
  local secs, good = (t1 - t0) / 1000, ok1 - ok0
  return {
    n = n,
    ok = good,
    failed = failed1 - failed0,
    ok_per_s = good / secs,
    window_ms = t1 - t0,
    cpu_pct = 100 * (c1 - c0) / secs,
    cpu_us_per_probe = good > 0 and (c1 - c0) * 1e6 / good or nil,
    failures = next(kinds) and kinds or nil,
  }
end

local rows, best = {}, nil
for _, n in ipairs(sweep) do
  local r = run(n)
  rows[#rows + 1] = r
  if not best or r.ok_per_s > best.ok_per_s then best = r end
end
print(util.json_encode({
  probe = kind,
  server = server,
  duration_ms = duration,
  warmup_ms = WARMUP,
  sweep = rows,
  best_per_s = best.ok_per_s,
  best_n = best.n,
}))
return 0
