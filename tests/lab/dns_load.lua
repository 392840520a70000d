-- dns_load.lua SERVER [TOTAL] [INFLIGHT]: TOTAL queries (default 10000) with
-- INFLIGHT concurrent tasks (default 200) against one server; prints the rate
-- and the answer counts. Used for the leak check (ASan/valgrind) and the
-- loopback throughput figure. Run with: mpic run tests/lab/dns_load.lua ...
local dns = require "mpic.core.dns"
local mpic = require "mpic"

local args = { ... }
local server = assert(args[1], "usage: dns_load.lua SERVER [TOTAL] [INFLIGHT]")
local total = tonumber(args[2]) or 10000
local inflight = tonumber(args[3]) or 200

local r <close> = dns.resolver { servers = { server }, timeout_ms = 2000, tries = 2 }
local names = {
  { "victim.test", "A" },
  { "multi.victim.test", "TXT" },
  { "c1.victim.test", "TXT" },
  { "crit.victim.test", "CAA" },
  { "nx.victim.test", "AAAA" },
}
local counts, next_i = {}, 0
local t0 = mpic.now()

local function worker()
  while next_i < total do
    next_i = next_i + 1
    local q = names[next_i % #names + 1]
    local res, kind = r:query(q[1], q[2])
    local key = res and res.rcode or kind
    counts[key] = (counts[key] or 0) + 1
  end
end

local tasks = {}
for i = 1, inflight do
  tasks[i] = mpic.spawn(worker)
end
mpic.wait_all(tasks)
local ms = mpic.now() - t0
local parts = {}
for k, v in pairs(counts) do
  parts[#parts + 1] = k .. "=" .. v
end
table.sort(parts)
print(
  ("%d queries, %d in flight, %d ms, %.0f queries/s; %s"):format(
    total,
    inflight,
    ms,
    total * 1000 / math.max(ms, 1),
    table.concat(parts, " ")
  )
)
