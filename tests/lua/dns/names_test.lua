-- DNS binding behaviour that needs no servers: name validation, argument
-- checking and resolver configuration errors.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local case, eq, ok, raises, contains = T.case, T.eq, T.ok, T.raises, T.contains

case("dns_valid_name_strips_trailing_dot_keeps_case", function()
  eq(dns.valid_name("Victim.TEST."), "Victim.TEST")
  eq(dns.valid_name("_acme-challenge.victim.test"), "_acme-challenge.victim.test")
end)

case("dns_valid_name_converts_u_labels", function()
  eq(dns.valid_name("bücher.example"), "xn--bcher-kva.example")
  eq(dns.valid_name("München.test."), "xn--mnchen-3ya.test")
end)

case("dns_valid_name_rejects_bad_names", function()
  local bad = {
    "",
    ".",
    "a..b",
    "a b.test",
    "x\0y.test",
    "ex@mple.test",
    "\xff\xfe.test",
    string.rep("a", 64) .. ".test",
    string.rep("a.", 127) .. "aa",
  }
  for _, name in ipairs(bad) do
    local v, err = dns.valid_name(name)
    eq(v, nil, "accepted " .. T.repr(name))
    ok(type(err) == "string" and #err > 0, "no detail for " .. T.repr(name))
  end
  contains(select(2, dns.valid_name(string.rep("a", 64) .. ".test")), "63")
  contains(select(2, dns.valid_name(string.rep("a.", 127) .. "aa")), "253")
end)

case("dns_valid_name_accepts_limits", function()
  ok(dns.valid_name(string.rep("a", 63) .. ".test"))
  local n = string.rep("a.", 126) .. "a" -- 253 bytes
  eq(#n, 253)
  eq(dns.valid_name(n .. "."), n)
end)

case("dns_resolver_bad_config_raises", function()
  raises(function() dns.resolver {} end, "servers")
  raises(function() dns.resolver { servers = {} } end, "servers")
  raises(function() dns.resolver { servers = { 53 } } end, "servers%[1%]")
  raises(function() dns.resolver { servers = { "127.0.0.1:53" }, timeout_ms = 0 } end, "timeout_ms")
  raises(function() dns.resolver { servers = { "127.0.0.1:53" }, tries = "x" } end, "tries")
  raises(function() dns.resolver { servers = { "127.0.0.1:53" }, bogus = 1 } end, "unknown option")
  raises(function() dns.resolver { servers = { "not an address" } } end, "server")
  raises(function() dns.resolver { servers = { "127.0.0.1:53" }, source_ipv4 = "::1" } end, "source_ipv4")
  raises(function() dns.resolver { servers = { "127.0.0.1:53" }, source_ipv6 = "1.2.3.4" } end, "source_ipv6")
end)

case("dns_query_unsupported_type_raises", function()
  local r <close> = dns.resolver { servers = { "127.0.0.1:9" } }
  raises(function() r:query("victim.test", "MX") end, "unsupported query type")
  raises(function() r:query("victim.test", "ANY") end, "unsupported query type")
  raises(function() r:query(nil, "A") end)
end)

case("dns_query_invalid_name_is_invalid_target", function()
  local r <close> = dns.resolver { servers = { "127.0.0.1:9" } }
  local res, kind, detail = r:query("a..b.test", "A")
  eq(res, nil)
  eq(kind, "invalid_target")
  contains(detail, "empty label")
  res, kind = r:query(string.rep("x", 70) .. ".test", "TXT")
  eq(res, nil)
  eq(kind, "invalid_target")
end)

case("dns_query_on_closed_resolver_raises", function()
  local r = dns.resolver { servers = { "127.0.0.1:9" } }
  eq(r:servers(), "127.0.0.1:9")
  r:close()
  r:close() -- idempotent
  raises(function() r:query("victim.test", "A") end, "closed")
end)
