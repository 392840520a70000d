-- The TLS-ALPN probe against the lab servers (REFERENCE 2.6 connection rules, 4.5).
local T = require "mpic.testing"
-- the lab is on loopback: each probe lifts the reserved-address guard, as labs do
local tls = setmetatable({}, { __index = require "mpic.core.tls" })
function tls.alpn(ip, port, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.tls").alpn(ip, port, opts)
end
local core = require "mpic.core"
local lab = require "tls_lab"
local case, eq, ok, raises, contains = T.case, T.eq, T.ok, T.raises, T.contains

local function probe(name, opts)
  opts = opts or {}
  if opts.sni == nil then opts.sni = lab.DNS_ID end
  opts.timeout_ms = opts.timeout_ms or 3000
  return tls.alpn(lab.addr(), lab.port(name), opts)
end

case("tls_alpn_negotiated_with_acme_server", function()
  local r = assert(probe("valid_dns"))
  eq(r.alpn, "acme-tls/1")
  eq(r.version, "TLSv1.3")
  eq(r.ip, lab.addr())
  eq(r.port, lab.port("valid_dns"))
  eq(r.sni, lab.DNS_ID)
  ok(type(r.elapsed_ms) == "number" and r.elapsed_ms >= 0 and r.elapsed_ms < 3000, "elapsed_ms")
  ok(#r.cert.der > 100, "leaf DER present")
end)

case("tls_alpn_tls12_server_passes", function()
  local r = assert(probe("tls12"))
  eq(r.version, "TLSv1.2")
  eq(r.alpn, "acme-tls/1")
end)

case("tls_alpn_absent_when_server_lacks_alpn", function()
  local r = assert(probe("noalpn"))
  eq(r.alpn, nil)
  eq(r.version, "TLSv1.3")
  ok(r.cert and r.cert.der, "certificate still reported")
end)

case("tls_alpn_server_with_other_protocol_sends_alert", function()
  local r, kind, detail = probe("otheralpn")
  eq(r, nil)
  eq(kind, "tls")
  contains(detail, "no application protocol")
  contains(detail, lab.addr() .. ": ")
end)

case("tls_alpn_tls11_only_server_protocol_version_not_supported", function()
  local r, kind, detail = probe("tls11")
  eq(r, nil)
  eq(kind, "tls")
  contains(detail, "protocol version not supported")
end)

case("tls_alpn_http_only_server", function()
  local r, kind, detail = probe("http")
  eq(r, nil)
  eq(kind, "protocol")
  eq(detail, lab.addr() .. ": Server only speaks HTTP, not TLS")
end)

case("tls_alpn_broken_non_tls_server_is_tls_failure", function()
  local r, kind, detail = probe("garbage")
  eq(r, nil)
  eq(kind, "tls")
  contains(detail, lab.addr() .. ": not a TLS server")
end)

case("tls_alpn_refused_port", function()
  local r, kind, detail = probe("refused")
  eq(r, nil)
  eq(kind, "connect")
  eq(detail, lab.addr() .. ": Connection refused")
end)

case("tls_alpn_handshake_timeout_on_silent_server", function()
  local t0 = core.now()
  local r, kind, detail = probe("silent", { timeout_ms = 400 })
  local ms = core.now() - t0
  eq(r, nil)
  eq(kind, "timeout")
  contains(detail, lab.addr() .. ": timeout during TLS handshake")
  ok(ms >= 350 and ms < 2000, "took " .. ms .. " ms")
end)

case("tls_alpn_connect_timeout_on_blackhole", function()
  local t0 = core.now()
  local r, kind, detail = probe("blackhole", { connect_timeout_ms = 300, timeout_ms = 5000 })
  local ms = core.now() - t0
  eq(r, nil)
  eq(kind, "timeout")
  contains(detail, lab.addr() .. ": timeout during connect")
  ok(ms >= 250 and ms < 2000, "took " .. ms .. " ms")
end)

case("tls_alpn_ipv6", function()
  local r = assert(tls.alpn("::1", lab.port("v6"), { sni = tls.reverse_name("::1"), timeout_ms = 3000 }))
  eq(r.alpn, "acme-tls/1")
  eq(r.ip, "::1")
  eq(r.cert.san, { { type = "ip", value = ("\0"):rep(15) .. "\1" } })
end)

-- A perspective with source addresses of both families binds the one of the
-- target's family (an IPv4 source for an IPv6 target cannot connect).
case("perspective_tls_alpn_binds_the_source_of_the_target_family", function()
  local perspectives = require "mpic.perspectives"
  local cfg = T.config({ network = { allow_reserved_ips = true, tls_port = lab.port("v6") } })
  local p = cfg.perspectives[1]
  p.source_ipv4, p.source_ipv6 = "127.0.0.1", "::1"
  perspectives.configure(cfg)
  local r, kind, detail = perspectives.probe(p.id).tls_alpn("::1", tls.reverse_name("::1"), { timeout_ms = 3000 })
  ok(r, "connected from ::1: " .. tostring(kind) .. " " .. tostring(detail))
  eq(r.ip, "::1")
end)

case("tls_alpn_sni_reverse_name_reaches_server", function()
  -- the lab server answers the reverse name of 127.0.0.61 with the IPv4 certificate
  local r = assert(tls.alpn(lab.addr(), lab.port("sni"), { sni = tls.reverse_name(lab.addr()), timeout_ms = 3000 }))
  eq(r.sni, "61.0.0.127.in-addr.arpa")
  eq(r.cert.san, { { type = "ip", value = "\127\0\0\61" } })
  local other = assert(tls.alpn(lab.addr(), lab.port("sni"), { sni = lab.DNS_ID, timeout_ms = 3000 }))
  eq(other.cert.san, { { type = "dns", value = "other.mpic.example" } })
end)

case("tls_alpn_source_ip_and_interface", function()
  local r = assert(probe("valid_dns", { source_ip = "127.0.0.62" }))
  eq(r.alpn, "acme-tls/1")
  r = assert(probe("valid_dns", { interface = "lo" }))
  eq(r.alpn, "acme-tls/1")
end)

case("tls_alpn_bad_source_or_interface_fails_closed", function()
  local r, kind, detail = probe("valid_dns", { source_ip = "::1" })
  eq(r, nil)
  eq(kind, "connect")
  contains(detail, "not IPv4")
  r, kind, detail = probe("valid_dns", { interface = "nosuchif0" })
  eq(r, nil)
  eq(kind, "connect")
  contains(detail, "nosuchif0")
  r, kind = probe("valid_dns", { source_ip = "192.0.2.1" }) -- not a local address
  eq(r, nil)
  eq(kind, "connect")
end)

case("tls_alpn_misuse_raises", function()
  raises(function() tls.alpn("alpn.mpic.example", 443) end, "not an IP address")
  raises(function() tls.alpn(lab.addr(), 0) end, "port")
  raises(function() tls.alpn(lab.addr(), 70000) end, "port")
  raises(function() tls.alpn(lab.addr(), 443, { bogus = 1 }) end, "unknown option")
  raises(function() tls.alpn(lab.addr(), 443, { timeout_ms = "soon" }) end, "timeout_ms")
  raises(function() tls.alpn(lab.addr(), 443, { sni = 5 }) end, "sni")
  raises(function() tls.alpn(lab.addr(), 443, { source_ip = "lo" }) end, "source_ip")
end)

case("tls_alpn_outside_task_raises", function()
  local co = coroutine.wrap(function() return tls.alpn(lab.addr(), lab.port("valid_dns")) end)
  raises(co, "task")
end)

case("tls_alpn_cancel_frees_probe_and_loop_continues", function()
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = core.spawn(function() return probe("silent", { timeout_ms = 5000 }) end)
  end
  tasks[21] = core.spawn(function() return probe("blackhole", { connect_timeout_ms = 5000, timeout_ms = 5000 }) end)
  core.sleep(100)
  for _, t in ipairs(tasks) do
    core.cancel(t)
  end
  for _, t in ipairs(tasks) do
    local r, kind = core.wait(t, 1000)
    eq(r, nil)
    eq(kind, "cancelled")
  end
  -- nothing fires later into freed memory, and new probes still work
  core.sleep(200)
  local r = assert(probe("valid_dns"))
  eq(r.alpn, "acme-tls/1")
end)

case("tls_alpn_many_concurrent_probes", function()
  local tasks = {}
  for i = 1, 100 do
    tasks[i] = core.spawn(function() return probe("valid_dns", { timeout_ms = 8000 }) end)
  end
  for _, t in ipairs(tasks) do
    local r, kind, detail = core.wait(t, 10000)
    ok(r, "probe failed: " .. tostring(kind) .. " " .. tostring(detail))
    eq(r.alpn, "acme-tls/1")
  end
end, { timeout_ms = 15000 })
