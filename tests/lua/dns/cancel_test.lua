-- Cancelling a task suspended in a DNS query, and closing a resolver with
-- queries in flight, free everything without crashing.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok
local getenv = os.getenv

local function server(var)
  local v = getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

case("dns_cancel_pending_query", function()
  local r = dns.resolver { servers = { server("MPIC_LAB_DNS_BLACKHOLE") }, timeout_ms = 300, tries = 1 }
  local reached = false
  local t = mpic.spawn(function()
    r:query("victim.test", "A")
    reached = true
  end)
  mpic.sleep(50)
  mpic.cancel(t)
  eq(t:status(), "cancelled")
  mpic.sleep(500) -- past the c-ares timeout: the orphaned completion is dropped
  eq(reached, false)
  r:close()
  -- the resolver is gone but a new one works
  local g <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_GOOD") } }
  eq(assert(g:query("victim.test", "A")).records[1].address, "192.0.2.10")
end)

case("dns_cancel_many_then_close_before_completion", function()
  local r = dns.resolver { servers = { server("MPIC_LAB_DNS_BLACKHOLE") }, timeout_ms = 5000, tries = 1 }
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = mpic.spawn(function() return r:query("victim.test", "TXT") end)
  end
  mpic.sleep(20)
  for i = 1, 10 do
    mpic.cancel(tasks[i])
  end
  r:close() -- the other ten are still waiting: they end with "cancelled"
  for i = 11, 20 do
    local res, kind, detail = mpic.wait(tasks[i], 1000)
    eq(res, nil)
    eq(kind, "cancelled", "task " .. i)
    ok(detail:find("resolver closed", 1, true), detail)
  end
end)

case("dns_resolver_collected_while_cancelled_query_pending", function()
  do
    local r = dns.resolver { servers = { server("MPIC_LAB_DNS_BLACKHOLE") }, timeout_ms = 5000 }
    local t = mpic.spawn(function() return r:query("victim.test", "A") end)
    mpic.sleep(10)
    mpic.cancel(t)
  end
  collectgarbage()
  collectgarbage()
  ok(true)
end)
