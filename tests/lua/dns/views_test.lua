-- Two resolvers (perspectives) with different views of the same zone: each
-- channel talks only to its own server, concurrently, without shared state.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local mpic = require "mpic"
local case, eq = T.case, T.eq
local getenv = os.getenv

local function server(var)
  local v = getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

case("dns_good_and_evil_views_differ", function()
  local good <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_GOOD") } }
  local evil <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_EVIL") } }
  local g = assert(good:query("_acme-challenge.victim.test", "TXT"))
  local e = assert(evil:query("_acme-challenge.victim.test", "TXT"))
  eq(g.records[1].value, "7FwkJPsKf-TH54wu4eiIFA3nhzYaevsL7953ihy-tpo")
  eq(e.records[1].value, "attacker-controlled-value")
  eq(assert(good:query("victim.test", "A")).records[1].address, "192.0.2.10")
  eq(assert(evil:query("victim.test", "A")).records[1].address, "203.0.113.66")
  local function issuers(res)
    local out = {}
    for _, rr in ipairs(res.records) do
      if rr.tag == "issue" then out[#out + 1] = rr.value end
    end
    return out
  end
  eq(issuers(assert(good:query("victim.test", "CAA"))), { "ca.example" })
  eq(issuers(assert(evil:query("victim.test", "CAA"))), { "evil.example" })
end)

case("dns_concurrent_queries_on_two_resolvers", function()
  local good <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_GOOD") } }
  local evil <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_EVIL") } }
  local tasks = {}
  for i = 1, 50 do
    local r = (i % 2 == 0) and good or evil
    tasks[i] = mpic.spawn(function() return assert(r:query("victim.test", "A")).records[1].address end)
  end
  for i = 1, 50 do
    eq(mpic.wait(tasks[i]), (i % 2 == 0) and "192.0.2.10" or "203.0.113.66", "task " .. i)
  end
end)
