-- c-ares's retransmission timer: a query started while another is waiting
-- on a longer retry timeout still times out on its own schedule (the
-- resolver re-reads c-ares's next timeout only when it can be earlier than
-- the armed timer).
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok

local function server(var)
  local v = os.getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

local function timed(r, name)
  local t0 = mpic.now()
  local res, kind = r:query(name, "A")
  return res, kind, mpic.now() - t0
end

case("dns_retry_timer_of_a_later_query_is_not_delayed", function()
  local r <close> = dns.resolver {
    servers = { server("MPIC_LAB_DNS_BLACKHOLE") },
    timeout_ms = 200,
    tries = 3,
    lifetime_ms = 5000,
  }
  -- a: tries end at 200 ms, then its second try waits longer (c-ares
  -- doubles the per-try timeout); b starts at 300 ms, during that wait, and
  -- its first try ends at 500 ms, before a's second try does
  local a = mpic.spawn(timed, r, "a.victim.test")
  mpic.sleep(300)
  local b = mpic.spawn(timed, r, "b.victim.test")
  local ra, ka, ea = mpic.wait(a, 5000)
  local rb, kb, eb = mpic.wait(b, 5000)
  eq(ra, nil)
  eq(rb, nil)
  eq(ka, "timeout")
  eq(kb, "timeout")
  ok(ea >= 400, "a took " .. ea .. " ms")
  -- the same schedule from its own start; a delayed first timeout would add
  -- about 100 ms
  ok(math.abs(eb - ea) < 60, string.format("a took %d ms, b %d ms", ea, eb))
end)
