-- dnsenc_cost.lua UDP DOT DOH CA DURATION_MS N: the cost per query of the
-- resolver transports against one resolver (tests/bench/dnsenc_cost.sh runs
-- it against the lab unbound, which answers every transport from the same
-- cache).
--   steady: one resolver per transport, N tasks each looping
--           query("victim.test", "TXT") for DURATION_MS after a 0.5 s
--           warm-up: queries/s, process CPU (os.clock) per query in µs, and
--           the connections the resolver opened
--   fresh:  a new resolver for each of 200 sequential queries (a new TLS
--           connection each for DoT/DoH): ms and CPU µs per query, the price
--           of a connection
-- Only NOERROR answers count; failures are counted by kind. Prints one JSON
-- line per transport and mode.
local mpic = require "mpic"
local dns = require "mpic.core.dns"
local util = require "mpic.core.util"

local args = { ... }
local udp, dot, doh, ca, duration, n = args[1], args[2], args[3], args[4], tonumber(args[5]), tonumber(args[6])
if not (udp and dot and doh and ca and duration and n) then
  io.stderr:write("usage: dnsenc_cost.lua UDP DOT DOH CA DURATION_MS N\n")
  return 2
end
local WARMUP, FRESH = 500, 200

local function resolver(server)
  return dns.resolver({ servers = { server }, timeout_ms = 2000, tries = 2, ca_file = ca })
end

local function steady(label, server)
  local r = resolver(server)
  local counting, count, fails, stop = false, 0, {}, false
  local tasks = {}
  for i = 1, n do
    tasks[i] = mpic.spawn(function()
      while not stop do
        local res, kind = r:query("victim.test", "TXT")
        if counting then
          if res and res.rcode == "NOERROR" then
            count = count + 1
          else
            fails[kind or "?"] = (fails[kind or "?"] or 0) + 1
          end
        end
      end
    end)
  end
  mpic.sleep(WARMUP)
  counting = true
  local t0, c0 = mpic.now(), os.clock()
  mpic.sleep(duration)
  counting = false
  local t1, c1 = mpic.now(), os.clock()
  stop = true
  mpic.wait_all(tasks, 5000)
  local out = {
    transport = label,
    mode = "steady",
    concurrency = n,
    queries = count,
    qps = math.floor(count / ((t1 - t0) / 1000) + 0.5),
    cpu_us_per_query = count > 0 and math.floor((c1 - c0) * 1e6 / count + 0.5) or nil,
    connections = r:connections(),
    failures = fails,
  }
  r:close()
  return out
end

local function fresh(label, server)
  local count, fails = 0, {}
  local t0, c0 = mpic.now(), os.clock()
  for _ = 1, FRESH do
    local r = resolver(server)
    local res, kind = r:query("victim.test", "TXT")
    if res and res.rcode == "NOERROR" then
      count = count + 1
    else
      fails[kind or "?"] = (fails[kind or "?"] or 0) + 1
    end
    r:close()
  end
  local t1, c1 = mpic.now(), os.clock()
  return {
    transport = label,
    mode = "fresh",
    queries = count,
    ms_per_query = math.floor((t1 - t0) * 100 / FRESH + 0.5) / 100,
    cpu_us_per_query = math.floor((c1 - c0) * 1e6 / FRESH + 0.5),
    failures = fails,
  }
end

for _, t in ipairs({ { "udp", udp }, { "dot", dot }, { "doh", doh } }) do
  print(util.json_encode(steady(t[1], t[2])))
  print(util.json_encode(fresh(t[1], t[2])))
end
return 0
