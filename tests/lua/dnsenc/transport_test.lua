-- The DoT and DoH transports themselves: pipelining on one connection,
-- reconnection after the resolver closes an idle connection, certificates
-- that do not verify (fail closed), a resolver that never answers
-- (per-try timeout, lifetime), cancellation, closing with queries in flight,
-- failover along a mixed list. Needs tests/lab/test_dnsenc.sh.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok
local env = require("dnsenc_lab").env

local function resolver(servers, extra)
  local list = {}
  for i, s in ipairs(servers) do
    list[i] = env(s)
  end
  local cfg = { servers = list, timeout_ms = 2000, tries = 1, ca_file = env("MPIC_LAB_ENC_CA") }
  for k, v in pairs(extra or {}) do
    cfg[k] = v
  end
  return dns.resolver(cfg)
end

-- n queries at once; returns the results in order
local function burst(r, n)
  local tasks = {}
  for i = 1, n do
    local name = (i % 3 == 0) and "nope.victim.test" or "victim.test"
    local rtype = ({ "A", "TXT", "CAA", "AAAA" })[i % 4 + 1]
    tasks[i] = mpic.spawn(function() return r:query(name, rtype) end)
  end
  local out = {}
  for i = 1, n do
    out[i] = { mpic.wait(tasks[i], 10000) }
  end
  return out
end

case("dnsenc_dot_pipelines_on_one_connection", function()
  local r <close> = resolver({ "MPIC_LAB_ENC_DOT" })
  local out = burst(r, 200)
  for i, o in ipairs(out) do
    ok(o[1], "query " .. i .. ": " .. tostring(o[2]) .. " " .. tostring(o[3]))
    local want = (i % 3 == 0) and "NXDOMAIN" or "NOERROR"
    eq(o[1].rcode, want, "query " .. i)
  end
  eq(r:connections(), 1, "200 concurrent queries rode one TLS connection")
  -- answers are matched by ID, not by order: every one got its own type
  for i, o in ipairs(out) do
    eq(o[1].type, ({ "A", "TXT", "CAA", "AAAA" })[i % 4 + 1])
  end
end)

case("dnsenc_doh_multiplexes_on_one_connection", function()
  local r <close> = resolver({ "MPIC_LAB_ENC_DOH" })
  assert(r:query("victim.test", "A")) -- the connection (HTTP/2) is up
  local out = burst(r, 100)
  for i, o in ipairs(out) do
    ok(o[1], "query " .. i .. ": " .. tostring(o[2]) .. " " .. tostring(o[3]))
  end
  eq(r:connections(), 1, "100 concurrent requests as streams of one HTTP/2 connection")
end)

case("dnsenc_dot_reconnects_after_idle_close", function()
  local r <close> = resolver({ "MPIC_LAB_ENC_DOT" })
  assert(r:query("victim.test", "A"))
  eq(r:connections(), 1)
  mpic.sleep(2200) -- past unbound's tcp-idle-timeout (1.5 s): it closes the connection
  local res, kind, detail = r:query("victim.test", "TXT")
  ok(res, tostring(kind) .. " " .. tostring(detail))
  eq(r:connections(), 2, "a new connection after the resolver closed the idle one")
end)

case("dnsenc_untrusted_certificate_fails_closed", function()
  for _, s in ipairs({ "MPIC_LAB_ENC_DOT", "MPIC_LAB_ENC_DOT_IP", "MPIC_LAB_ENC_DOH", "MPIC_LAB_ENC_DOH_IP" }) do
    local r <close> = resolver({ s }, { ca_file = env("MPIC_LAB_ENC_ROGUE_CA"), tries = 2 })
    local res, kind, detail = r:query("victim.test", "A")
    eq(res, nil, s)
    eq(kind, "tls", s)
    ok(detail:find("DNS problem", 1, true), detail)
    ok(
      detail:find("certificate", 1, true) and (detail:find("verify", 1, true) or detail:find("issuer", 1, true)),
      s .. ": " .. detail
    )
    ok(detail:find(env(s), 1, true), "names the resolver: " .. detail)
  end
end)

case("dnsenc_wrong_name_fails_closed", function()
  local dot <close> = dns.resolver {
    servers = { "tls://127.0.50.2:16654#other.test" },
    tries = 1,
    ca_file = env("MPIC_LAB_ENC_CA"),
  }
  local res, kind, detail = dot:query("victim.test", "A")
  eq(res, nil)
  eq(kind, "tls")
  ok(detail:find("certificate does not verify", 1, true) and detail:find("mismatch", 1, true), detail)
  local doh <close> = dns.resolver {
    servers = { "https://other.test:16643/dns-query#127.0.50.2" },
    tries = 1,
    ca_file = env("MPIC_LAB_ENC_CA"),
  }
  res, kind, detail = doh:query("victim.test", "A")
  eq(res, nil)
  eq(kind, "tls")
  ok(detail:find("other.test", 1, true), detail)
end)

case("dnsenc_system_store_does_not_trust_the_lab", function()
  local r <close> = dns.resolver { servers = { env("MPIC_LAB_ENC_DOT") }, tries = 1 }
  local res, kind = r:query("victim.test", "A")
  eq(res, nil)
  eq(kind, "tls")
end)

case("dnsenc_never_answers_times_out_per_try_and_lifetime", function()
  for _, s in ipairs({ "MPIC_LAB_ENC_DOT_SILENT", "MPIC_LAB_ENC_DOH_SILENT" }) do
    local r <close> = resolver({ s }, { timeout_ms = 300, tries = 2, lifetime_ms = 3000 })
    local t0 = mpic.now()
    local res, kind, detail = r:query("victim.test", "A")
    local took = mpic.now() - t0
    eq(res, nil, s)
    eq(kind, "timeout", s)
    ok(detail:find("no answer from the resolver within 300 ms", 1, true), detail)
    ok(took >= 550 and took < 1500, s .. ": two tries of 300 ms took " .. took .. " ms")
    -- the lifetime bounds the whole query below the tries
    local l <close> = resolver({ s }, { timeout_ms = 1000, tries = 5, lifetime_ms = 400 })
    t0 = mpic.now()
    res, kind, detail = l:query("victim.test", "A")
    took = mpic.now() - t0
    eq(res, nil, s)
    eq(kind, "timeout", s)
    ok(detail:find("timed out", 1, true), detail)
    ok(took >= 350 and took < 900, s .. ": lifetime 400 ms took " .. took .. " ms")
  end
end)

case("dnsenc_connection_refused", function()
  local r <close> = resolver({ "MPIC_LAB_ENC_DOT_CLOSED" }, { tries = 1 })
  local res, kind, detail = r:query("victim.test", "A")
  eq(res, nil)
  eq(kind, "connect")
  ok(detail:find("refused", 1, true), detail)
end)

case("dnsenc_failover_along_a_mixed_list", function()
  -- a resolver that never answers, then DoH, then UDP: the DoH answer wins
  local r <close> = resolver(
    { "MPIC_LAB_ENC_DOT_SILENT", "MPIC_LAB_ENC_DOH", "MPIC_LAB_ENC_UDP" },
    { timeout_ms = 300, tries = 1 }
  )
  local res, kind, detail = r:query("victim.test", "A")
  ok(res, tostring(kind) .. " " .. tostring(detail))
  eq(res.server, env("MPIC_LAB_ENC_DOH"))
  eq(res.records[1].address, "192.0.2.10")
  -- an answer (any rcode) ends the query: no failover on NXDOMAIN
  local u <close> = resolver({ "MPIC_LAB_ENC_UDP", "MPIC_LAB_ENC_DOT" })
  res = assert(u:query("nope.victim.test", "A"))
  eq(res.rcode, "NXDOMAIN")
  eq(res.server, env("MPIC_LAB_ENC_UDP"))
  eq(u:connections(), 0)
end)

case("dnsenc_cancel_pending_queries", function()
  for _, s in ipairs({ "MPIC_LAB_ENC_DOT_SILENT", "MPIC_LAB_ENC_DOH_SILENT" }) do
    local r = resolver({ s }, { timeout_ms = 400 })
    local reached = false
    local t = mpic.spawn(function()
      r:query("victim.test", "A")
      reached = true
    end)
    mpic.sleep(50)
    mpic.cancel(t)
    eq(t:status(), "cancelled")
    mpic.sleep(600) -- past the try's timeout: nothing comes back
    eq(reached, false, s)
    -- closing with queries in flight: each ends "cancelled"
    local tasks = {}
    r = resolver({ s }, { timeout_ms = 5000 })
    for i = 1, 10 do
      tasks[i] = mpic.spawn(function() return r:query("victim.test", "TXT") end)
    end
    mpic.sleep(50)
    for i = 1, 5 do
      mpic.cancel(tasks[i])
    end
    r:close()
    for i = 6, 10 do
      local res, kind, detail = mpic.wait(tasks[i], 1000)
      eq(res, nil)
      eq(kind, "cancelled", s .. " task " .. i)
      ok(detail:find("resolver closed", 1, true), detail)
    end
  end
  -- a cancelled query's late answer on a live connection is dropped, and the
  -- connection serves the next queries
  local g <close> = resolver({ "MPIC_LAB_ENC_DOT" })
  local t = mpic.spawn(function() return g:query("www.dead.test", "A") end) -- SERVFAIL after ~2.5 s
  mpic.sleep(20)
  mpic.cancel(t)
  eq(assert(g:query("victim.test", "A")).records[1].address, "192.0.2.10")
  eq(g:connections(), 1)
end)

case("dnsenc_resolver_collected_with_pending_query", function()
  do
    local r = resolver({ "MPIC_LAB_ENC_DOT_SILENT" }, { timeout_ms = 5000 })
    local t = mpic.spawn(function() return r:query("victim.test", "A") end)
    mpic.sleep(20)
    mpic.cancel(t)
  end
  collectgarbage()
  collectgarbage()
  ok(true)
end)

case("dnsenc_bad_entries_refused", function()
  local bad = {
    { "tls://resolver.test", "tls://IP" },
    { "tls://127.0.0.1:0", "port" },
    { "tls://127.0.0.1#bad..name", "host name" },
    { "https://127.0.0.1/", "query path" },
    { "https://127.0.0.1/q?x", "query path" },
    { "https://127.0.0.1/q#nope", "IP address" },
  }
  for _, b in ipairs(bad) do
    local okk, err = pcall(dns.resolver, { servers = { b[1] } })
    eq(okk, false, b[1])
    ok(tostring(err):find(b[2], 1, true), tostring(err))
  end
  local okk, err = pcall(dns.resolver, { servers = { env("MPIC_LAB_ENC_DOT") }, ca_file = "/nonexistent.pem" })
  eq(okk, false)
  ok(tostring(err):find("cannot load the resolver CA file", 1, true), tostring(err))
end)
