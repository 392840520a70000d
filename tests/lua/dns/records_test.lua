-- Each record type through the DNS binding against the lab's knot servers
-- (tests/lab/test_dns.sh starts them and exports MPIC_LAB_DNS_*).
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains
local getenv = os.getenv

local function server(var)
  local v = getenv(var)
  if not v then error(var .. " is not set: run tests/lab/test_dns.sh MPIC_BINARY", 2) end
  return v
end

local function good(extra)
  local cfg = { servers = { server("MPIC_LAB_DNS_GOOD") }, timeout_ms = 1000, tries = 2 }
  for k, v in pairs(extra or {}) do
    cfg[k] = v
  end
  return dns.resolver(cfg)
end

local function q(name, rtype, extra)
  local r <close> = good(extra)
  local res, kind, detail = r:query(name, rtype)
  if not res then error(("query %s %s failed: %s %s"):format(name, rtype, kind, detail), 2) end
  return res
end

case("dns_a_record", function()
  local res = q("victim.test", "A")
  eq(res.name, "victim.test.")
  eq(res.type, "A")
  eq(res.rcode, "NOERROR")
  eq(res.ad, false)
  eq(res.tc, false)
  eq(res.server, server("MPIC_LAB_DNS_GOOD"))
  ok(res.elapsed_ms >= 0 and res.elapsed_ms < 1000)
  eq(res.records, {
    { name = "victim.test.", type = "A", class = "IN", ttl = 300, address = "192.0.2.10" },
  })
  eq(res.cname_chain, {})
  eq(res.ede, nil)
end)

case("dns_aaaa_record", function() eq(q("victim.test.", "AAAA").records[1].address, "2001:db8::10") end)

case("dns_txt_strings_kept_and_joined", function()
  local res = q("multi.victim.test", "TXT")
  eq(#res.records, 2)
  local byvalue = {}
  for _, rr in ipairs(res.records) do
    byvalue[rr.value] = rr.strings
  end
  eq(byvalue["part one, part two"], { "part one, ", "part two" })
  eq(byvalue["second record"], { "second record" })
end)

case("dns_txt_nul_bytes_preserved", function()
  local rr = q("nul.victim.test", "TXT").records[1]
  eq(rr.strings, { "a\0b", "\0" })
  eq(rr.value, "a\0b\0")
  eq(#rr.value, 4)
end)

case("dns_txt_utf8_bytes_preserved", function() eq(q("utf8.victim.test", "TXT").records[1].value, "caf\xc3\xa9") end)

case("dns_caa_flags_tag_value", function()
  local res = q("crit.victim.test", "CAA")
  eq(#res.records, 2)
  local crit, issue
  for _, rr in ipairs(res.records) do
    if rr.tag == "futuretag" then
      crit = rr
    else
      issue = rr
    end
  end
  eq(crit.flags, 128)
  eq(crit.critical, true)
  eq(crit.value, "whatever")
  eq(issue.flags, 0)
  eq(issue.critical, false)
  eq(issue.tag, "issue")
  eq(issue.value, "ca.example")
end)

case("dns_ptr_ns_soa", function()
  eq(q("ptr.victim.test", "PTR").records[1].target, "target.victim.test.")
  eq(q("victim.test", "NS").records[1].target, "ns.victim.test.")
  local soa = q("victim.test", "SOA").records[1]
  eq(
    { soa.mname, soa.rname, soa.serial, soa.refresh, soa.retry, soa.expire, soa.minimum },
    { "ns.victim.test.", "hostmaster.victim.test.", 2024010101, 3600, 600, 86400, 300 }
  )
end)

case("dns_cname_query_returns_the_cname", function()
  local res = q("c1.victim.test", "CNAME")
  eq(#res.records, 1)
  eq(res.records[1].target, "c2.victim.test.")
end)

case("dns_nxdomain_is_a_result_not_a_failure", function()
  local res = q("does-not-exist.victim.test", "TXT")
  eq(res.rcode, "NXDOMAIN")
  eq(res.records, {})
end)

case("dns_nodata_is_noerror_without_records", function()
  local res = q("ns.victim.test", "TXT") -- ns has only an A record
  eq(res.rcode, "NOERROR")
  eq(res.records, {})
end)

case("dns_cname_chain_of_four_followed", function()
  local res = q("c1.victim.test", "TXT")
  eq(res.cname_chain, {
    "c2.victim.test.",
    "c3.victim.test.",
    "c4.victim.test.",
    "target.victim.test.",
  })
  eq(#res.records, 1)
  eq(res.records[1].name, "target.victim.test.")
  eq(res.records[1].value, "end of chain")
  eq(#res.answers, 5) -- four CNAMEs and the TXT
end)

case("dns_cname_loop_is_an_error", function()
  local r <close> = good()
  local res, kind, detail, partial = r:query("loop1.victim.test", "A")
  eq(res, nil)
  eq(kind, "dns")
  contains(detail, "CNAME loop")
  eq(partial.rcode, "NOERROR")
  eq(partial.cname_chain, { "loop2.victim.test." })
end)

case("dns_truncated_udp_answer_retried_over_tcp", function()
  -- 20 TXT RRs of ~200 bytes: more than knot's 1232-byte UDP payload
  local res = q("big.victim.test", "TXT")
  eq(res.tc, false)
  eq(#res.records, 20)
  local seen = {}
  for _, rr in ipairs(res.records) do
    seen[rr.value:sub(1, 2)] = #rr.value
  end
  for i = 0, 19 do
    eq(seen[("%02d"):format(i)], 203)
  end
end)

case("dns_tcp_only_resolver", function()
  local res = q("victim.test", "TXT", { tcp_only = true })
  eq(res.records[1].value, "v=legit")
  eq(res.server, server("MPIC_LAB_DNS_GOOD"))
end)

case("dns_u_label_query_converted", function()
  local r <close> = good()
  local res = assert(r:query("bücher.victim.test", "A"))
  eq(res.name, "xn--bcher-kva.victim.test.")
  eq(res.rcode, "NXDOMAIN")
end)

case("dns_source_address_binding", function()
  local res = q("victim.test", "A", { source_ipv4 = "127.0.53.99" })
  eq(res.records[1].address, "192.0.2.10")
end)

case("dns_ad_flag_reported", function()
  local r <close> = dns.resolver { servers = { server("MPIC_LAB_DNS_FAKE") }, timeout_ms = 1000 }
  local res = assert(r:query("ad.fake.test", "A"))
  eq(res.ad, true)
  eq(res.records[1].address, "192.0.2.53")
  eq(q("victim.test", "A").ad, false) -- knot is not validating
end)
