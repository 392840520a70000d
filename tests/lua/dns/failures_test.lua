-- DNS failures map to the closed error vocabulary, with Boulder-style details
-- and the partial response when one was received. Needs the lab servers of
-- tests/lab/test_dns.sh.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local getenv = os.getenv

local function server(var)
  local v = getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

local function resolver(var, extra)
  local cfg = { servers = { server(var) }, timeout_ms = 1000, tries = 1 }
  for k, v in pairs(extra or {}) do
    cfg[k] = v
  end
  return dns.resolver(cfg)
end

case("dns_refused", function()
  local r <close> = resolver("MPIC_LAB_DNS_REFUSED")
  local res, kind, detail, partial = r:query("victim.test", "TXT")
  eq(res, nil)
  eq(kind, "refused")
  contains(detail, "DNS problem: REFUSED looking up TXT for victim.test.")
  eq(partial.rcode, "REFUSED")
  eq(partial.server, server("MPIC_LAB_DNS_REFUSED"))
end)

case("dns_servfail", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local res, kind, detail, partial = r:query("servfail.fake.test", "CAA")
  eq(res, nil)
  eq(kind, "servfail")
  eq(
    detail,
    "DNS problem: SERVFAIL looking up CAA for servfail.fake.test. - the domain's "
      .. "nameservers may be malfunctioning"
  )
  eq(partial.rcode, "SERVFAIL")
  eq(partial.ede, nil)
end)

case("dns_servfail_with_dnssec_ede_is_dnssec_bogus", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local res, kind, detail, partial = r:query("bogus.fake.test", "TXT")
  eq(res, nil)
  eq(kind, "dnssec_bogus")
  contains(detail, "DNSSEC Bogus (EDE 6): signature does not verify")
  eq(partial.ede, { code = 6, text = "signature does not verify" })
  local _, kind2, detail2 = r:query("expired.fake.test", "TXT")
  eq(kind2, "dnssec_bogus")
  contains(detail2, "Signature Expired (EDE 7)")
end)

case("dns_servfail_with_other_ede_keeps_servfail", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local _, kind, detail, partial = r:query("unreachable.fake.test", "A")
  eq(kind, "servfail")
  contains(detail, "No Reachable Authority (EDE 22): no reachable authority")
  eq(partial.ede.code, 22)
end)

case("dns_notimp_and_formerr_are_dns_errors", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local _, kind, detail, partial = r:query("notimp.fake.test", "A")
  eq(kind, "dns")
  contains(detail, "NOTIMP")
  eq(partial.rcode, "NOTIMP")
  _, kind, detail = r:query("formerr.fake.test", "A")
  eq(kind, "dns")
  contains(detail, "FORMERR")
end)

case("dns_still_truncated_over_tcp_is_an_error", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local res, kind, detail, partial = r:query("tc.fake.test", "TXT")
  eq(res, nil)
  eq(kind, "dns")
  contains(detail, "truncated")
  eq(partial.tc, true)
end)

case("dns_malformed_answer_is_an_error", function()
  local r <close> = resolver("MPIC_LAB_DNS_FAKE")
  local res, kind, detail, partial = r:query("garbage.fake.test", "A")
  eq(res, nil)
  eq(kind, "dns")
  contains(detail, "malformed")
  eq(partial, nil)
end)

case("dns_timeout_against_blackhole", function()
  local r <close> = resolver("MPIC_LAB_DNS_BLACKHOLE", { timeout_ms = 200, tries = 2 })
  local t0 = mpic.now()
  local res, kind, detail, partial = r:query("victim.test", "A")
  local took = mpic.now() - t0
  eq(res, nil)
  eq(kind, "timeout")
  eq(detail, "DNS problem: query timed out looking up A for victim.test.")
  eq(partial, nil)
  -- c-ares doubles the second try; our lifetime (timeout_ms * tries) bounds it
  ok(took >= 350 and took < 1500, "took " .. took .. " ms")
end)

case("dns_lifetime_bounds_the_query", function()
  local r <close> = resolver("MPIC_LAB_DNS_BLACKHOLE", { timeout_ms = 1000, tries = 5, lifetime_ms = 300 })
  local t0 = mpic.now()
  local _, kind = r:query("victim.test", "A")
  local took = mpic.now() - t0
  eq(kind, "timeout")
  ok(took >= 250 and took < 900, "took " .. took .. " ms")
end)

case("dns_port_unreachable_is_a_dns_error", function()
  local r <close> = resolver("MPIC_LAB_DNS_CLOSED", { timeout_ms = 500, tries = 2 })
  local res, kind, detail = r:query("victim.test", "A")
  eq(res, nil)
  -- ICMP port unreachable surfaces as ECONNREFUSED on the connected socket
  eq(kind, "dns")
  contains(detail, "DNS problem: networking error looking up A for victim.test.")
end)

case("dns_second_server_used_after_timeout", function()
  local r <close> = dns.resolver {
    servers = {
      server("MPIC_LAB_DNS_BLACKHOLE"),
      server("MPIC_LAB_DNS_GOOD"),
    },
    timeout_ms = 200,
    tries = 2,
  }
  local res = assert(r:query("victim.test", "A"))
  eq(res.records[1].address, "192.0.2.10")
  eq(res.server, server("MPIC_LAB_DNS_GOOD")) -- the one that answered
end)

case("dns_refused_is_not_retried_on_next_server", function()
  -- NOCHECKRESP: a REFUSED answer reaches us instead of moving on
  local r <close> = dns.resolver {
    servers = {
      server("MPIC_LAB_DNS_REFUSED"),
      server("MPIC_LAB_DNS_GOOD"),
    },
    timeout_ms = 500,
    tries = 1,
  }
  local _, kind = r:query("victim.test", "A")
  eq(kind, "refused")
end)

-- The answering server is the peer of the socket the answer came in on; it
-- is read once per socket, so a resolver that fails over from a dead server
-- to a live one, and then reuses both sockets, names the right one each time.
case("dns_answering_server_after_failover", function()
  local dead, good = server("MPIC_LAB_DNS_BLACKHOLE"), server("MPIC_LAB_DNS_REFUSED")
  local r <close> = dns.resolver { servers = { dead, good }, timeout_ms = 200, tries = 2 }
  local tasks = {}
  for i = 1, 6 do
    tasks[i] = mpic.spawn(r.query, r, "n" .. i .. ".victim.test", "TXT")
  end
  for i = 1, 6 do
    local res, kind, _, partial = mpic.wait(tasks[i])
    eq(res, nil)
    eq(kind, "refused")
    eq(partial.server, good)
  end
  local g <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_GOOD"), good }, timeout_ms = 1000, tries = 1 }
  local res = g:query("victim.test", "SOA")
  ok(res, "the first server answers")
  eq(res.server, server("MPIC_LAB_DNS_GOOD"))
end)
