-- The reserved-address guard in C at connect time (core/http.c, core/tls.c):
-- a probe to loopback is refused unless the request carries
-- allow_reserved, whether it comes through mpic.core.http / mpic.core.tls
-- directly or through a perspective (mpic.http.get, mpic.tls.alpn), which
-- passes its network.allow_reserved_ips with each request. The target is
-- a listener this file starts on 127.0.43.1: were the guard missing, the
-- probe would reach it, and the cases would see the request.
local T = require "mpic.testing"
local mpic = require "mpic"
local http = require "mpic.core.http"
local tls = require "mpic.core.tls"
local server = require "mpic.core.server"
local config = require "mpic.config"
local perspectives = require "mpic.perspectives"
local case, eq, ok, contains, raises = T.case, T.eq, T.ok, T.contains, T.raises

local ADDR = "127.0.43.1"

-- A listener answering 200 "reached" to every request; seen() counts them.
local function listener()
  local srv = assert(server.listen { address = ADDR, port = 0 })
  local n = 0
  local loop = mpic.spawn(function()
    while true do
      local req = srv:next()
      if not req then return end
      n = n + 1
      req:respond(200, { ["Content-Type"] = "text/plain" }, "reached")
    end
  end)
  return {
    port = srv:port(),
    url = "http://" .. ADDR .. ":" .. srv:port() .. "/.well-known/acme-challenge/t",
    seen = function() return n end,
    close = function()
      srv:close()
      mpic.cancel(loop)
    end,
  }
end

local function use_config(allow)
  local yaml = [[
issuer: {caa_domains: [ca.example]}
policy: policies/br.lua
selection_secret: test-secret
network: {allow_reserved_ips: ]] .. tostring(allow) .. [[}
primary: primary
perspectives:
  - {id: primary, rir: ARIN, location: {lat: 39.04, lon: -77.49}, resolvers: ["127.0.43.1:9"]}
]]
  local cfg = assert(config.parse(yaml, "guard.yaml", package.loaded["mpic.paths"].root))
  perspectives.configure(cfg)
  mpic.config = cfg
end

case("core_http_get_to_loopback_refused_in_c", function()
  local l = listener()
  local r, kind, detail = http.get(l.url, { timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  eq(detail, ADDR .. " is in a reserved address block: [RFC1122]: Loopback (refused at connect)")
  -- a name pinned to the loopback address: the address is what counts
  r, kind = http.get("http://www.example.com:" .. l.port .. "/", { connect_ip = ADDR, timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  r, kind = http.get(l.url, { timeout_ms = 2000, allow_reserved = false })
  eq(r, nil)
  eq(kind, "reserved_address")
  eq(l.seen(), 0)
  -- lifted for this one request (labs): the listener answers
  r = assert(http.get(l.url, { timeout_ms = 2000, allow_reserved = true }))
  eq(r.status, 200)
  eq(r.body, "reached")
  eq(l.seen(), 1)
  l.close()
end)

case("core_http_keepalive_channel_is_not_a_probe", function()
  -- the agent channel (keepalive) is the CA's own infrastructure
  local l = listener()
  local r = assert(http.get(l.url, { timeout_ms = 2000, keepalive = true }))
  eq(r.status, 200)
  eq(l.seen(), 1)
  -- unless it asks for the guard
  local r2, kind = http.get(l.url, { timeout_ms = 2000, keepalive = true, allow_reserved = false })
  eq(r2, nil)
  eq(kind, "reserved_address")
  eq(l.seen(), 1)
  l.close()
end)

case("core_tls_alpn_to_loopback_refused_in_c", function()
  local l = listener()
  local r, kind, detail = tls.alpn(ADDR, l.port, { sni = "example.com", timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  eq(detail, ADDR .. ": in a reserved address block: [RFC1122]: Loopback (refused at connect)")
  r, kind = tls.alpn(ADDR, l.port)
  eq(r, nil)
  eq(kind, "reserved_address")
  r, kind = tls.alpn("::ffff:" .. ADDR, l.port, { timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  -- lifted: the TLS handshake reaches the (plain HTTP) listener
  r, kind = tls.alpn(ADDR, l.port, { timeout_ms = 2000, allow_reserved = true })
  eq(r, nil)
  ok(kind ~= "reserved_address", kind)
  l.close()
end)

case("allow_reserved_must_be_a_boolean", function()
  raises(function() http.get("http://" .. ADDR .. ":1/", { allow_reserved = "yes" }) end, "allow_reserved")
  raises(function() tls.alpn(ADDR, 1, { allow_reserved = 1 }) end, "allow_reserved")
end)

case("perspective_probes_refused_in_c_with_the_switch_off", function()
  use_config(false)
  local l = listener()
  -- mpic.http.get with an IP literal goes straight to the C layer
  local r, kind, detail = mpic.http.get(l.url, { timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  contains(detail, "(refused at connect)")
  r, kind, detail = mpic.http.get("http://www.example.com:" .. l.port .. "/", { connect_ip = ADDR })
  eq(r, nil)
  eq(kind, "reserved_address")
  contains(detail, "(refused at connect)")
  -- a script cannot pass allow_reserved through a perspective: not an option
  T.raises(
    function() mpic.http.get(l.url, { timeout_ms = 2000, allow_reserved = true }) end,
    "http.get: unknown option allow_reserved"
  )
  r, kind, detail = mpic.tls.alpn(ADDR, { port = l.port, timeout_ms = 2000 })
  eq(r, nil)
  eq(kind, "reserved_address")
  contains(detail, "(refused at connect)")
  eq(l.seen(), 0)
  l.close()
end)

case("perspective_probes_reach_loopback_with_the_lab_switch", function()
  use_config(true)
  local l = listener()
  local r = assert(mpic.http.get(l.url, { timeout_ms = 2000 }))
  eq(r.status, 200)
  eq(l.seen(), 1)
  local r2, kind = mpic.tls.alpn(ADDR, { port = l.port, timeout_ms = 2000 })
  eq(r2, nil)
  ok(kind ~= "reserved_address", kind)
  l.close()
  use_config(false)
end)
