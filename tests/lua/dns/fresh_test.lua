-- The DNS binding's answers are built for each call: plain tables (no
-- metatable, no function) that no other answer shares. Checks get them
-- without a copy (mpic.challenges.FRESH_RESULTS), which relies on this.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local case, eq, ok = T.case, T.eq, T.ok

local function plain(v, seen)
  if type(v) ~= "table" then return type(v) == "string" or type(v) == "number" or type(v) == "boolean" end
  if getmetatable(v) ~= nil then return false end
  for k, x in pairs(v) do
    seen[#seen + 1] = x
    if not plain(k, seen) or not plain(x, seen) then return false end
  end
  return true
end

case("answers_are_fresh_plain_tables", function()
  local server = os.getenv("MPIC_LAB_DNS_GOOD")
  if not server then error("MPIC_LAB_DNS_GOOD is not set: run tests/lab/test_dns.sh MPIC_BINARY") end
  local r <close> = dns.resolver({ servers = { server }, timeout_ms = 1000, tries = 2 })
  local a = assert(r:query("victim.test", "A"))
  local b = assert(r:query("victim.test", "A"))
  local ta, tb = {}, {}
  ok(plain(a, ta), "plain answer")
  ok(plain(b, tb), "plain answer")
  ok(a ~= b, "a new table per answer")
  local in_a = {}
  for _, x in ipairs(ta) do
    if type(x) == "table" then in_a[x] = true end
  end
  for _, x in ipairs(tb) do
    ok(type(x) ~= "table" or not in_a[x], "no table shared between answers")
  end
  -- and a negative answer too
  local nx = assert(r:query("nx.victim.test", "A"))
  eq(nx.rcode, "NXDOMAIN")
  ok(plain(nx, {}), "plain negative answer")
end)
