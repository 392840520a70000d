-- Option tables of the C bindings: every binding refuses a key it does not
-- know (a misspelt limit or safety switch is an error, never a silent
-- default) and a switch that is not a boolean. Each refusal happens while
-- the options are read, before any I/O: no traffic leaves this process.
local T = require "mpic.testing"
local dns = require "mpic.core.dns"
local http = require "mpic.core.http"
local tls = require "mpic.core.tls"
local server = require "mpic.core.server"
local sandbox = require "mpic.core.sandbox"
local util = require "mpic.core.util"
local case, eq, ok, raises = T.case, T.eq, T.ok, T.raises

-- a port nothing listens on; the calls below raise before they would use it
local NOWHERE = "127.0.0.1"

case("dns_resolver_refuses_unknown_options", function()
  local base = { servers = { NOWHERE .. ":1" } }
  local function with(k, v)
    local o = { servers = base.servers }
    o[k] = v
    return o
  end
  raises(function() dns.resolver(with("timeout_m", 50)) end, ": dns%.resolver: unknown option timeout_m$")
  raises(function() dns.resolver(with("tcp_onyl", true)) end, "unknown option tcp_onyl")
  -- a key that is not a string is named too
  raises(function() dns.resolver(with(1, "x")) end, "dns%.resolver: unknown option 1$")
  raises(function() dns.resolver(with(true, 1)) end, "dns%.resolver: unknown option true$")
  -- a NUL inside a key is not the known key before it
  raises(function() dns.resolver(with("tries\0x", 2)) end, "dns%.resolver: unknown option tries")
  raises(function() dns.resolver(with("tcp_only", "yes")) end, ": dns%.resolver: tcp_only must be a boolean$")
  -- every accepted key still builds a resolver (no query: no traffic)
  local r <close> = dns.resolver {
    servers = base.servers,
    timeout_ms = 300,
    tries = 1,
    lifetime_ms = 1000,
    source_ipv4 = "127.0.0.1",
    source_ipv6 = "::1",
    tcp_only = true,
    ca_file = "/nonexistent/ca.pem",
  }
  ok(tostring(r):find("dns.resolver(", 1, true), tostring(r))
end)

case("dns_query_refuses_unknown_options", function()
  local r <close> = dns.resolver { servers = { NOWHERE .. ":1" } }
  raises(function() r:query("example.test", "A", { timeout_m = 5 }) end, ": dns%.query: unknown option timeout_m$")
  raises(function() r:query("example.test", "A", { perspective = "fra" }) end, "dns%.query: unknown option perspective")
  raises(function() r:query("example.test", "A", "fast") end, "table expected")
end)

case("http_get_refuses_unknown_options", function()
  local url = "http://" .. NOWHERE .. ":1/"
  raises(function() http.get(url, { timeout_m = 50 }) end, ": http%.get: unknown option timeout_m$")
  raises(function() http.get(url, { allow_reserverd = true }) end, "http%.get: unknown option allow_reserverd")
  raises(function() http.request(url, { max_byte = 10 }) end, "http%.get: unknown option max_byte")
  raises(function() http.get(url, { [1] = "GET" }) end, "http%.get: unknown option 1")
  for _, k in ipairs({ "verify_tls", "keepalive", "system_resolver", "allow_reserved" }) do
    raises(function() http.get(url, { [k] = "yes" }) end, ": http%.get: opts%." .. k .. " must be a boolean$")
  end
end)

case("tls_alpn_refuses_unknown_options", function()
  raises(function() tls.alpn(NOWHERE, 1, { timeout_m = 50 }) end, ": tls%.alpn: unknown option timeout_m$")
  raises(function() tls.alpn(NOWHERE, 1, { allow_reserverd = true }) end, "tls%.alpn: unknown option allow_reserverd")
  raises(function() tls.alpn(NOWHERE, 1, { ["sni\0x"] = "a.test" }) end, "tls%.alpn: unknown option sni")
  raises(
    function() tls.alpn(NOWHERE, 1, { allow_reserved = 1 }) end,
    "tls%.alpn: opts%.allow_reserved must be a boolean"
  )
end)

case("server_listen_refuses_unknown_options", function()
  local function listen(extra)
    local o = { address = NOWHERE, port = 0 }
    for k, v in pairs(extra) do
      o[k] = v
    end
    return server.listen(o)
  end
  raises(function() listen({ max_conections = 5 }) end, ": server%.listen: unknown option max_conections$")
  raises(
    function() listen({ tls = { cert = "c.pem", key = "k.pem", requre_client_cert = true } }) end,
    ": server%.listen: tls: unknown option requre_client_cert$"
  )
  raises(
    function() listen({ tls = { cert = "c.pem", key = "k.pem", require_client_cert = "yes" } }) end,
    ": server%.listen: tls%.require_client_cert must be a boolean$"
  )
  raises(function() listen({ tls = { cert = 1, key = "k.pem" } }) end, ": server%.listen: tls%.cert must be a string$")
  -- the accepted keys still make a server
  local srv = assert(listen({
    max_body = 4096,
    max_inflight = 2,
    idle_timeout_s = 5,
    max_connections = 4,
    max_connections_per_address = 2,
    header_timeout_s = 5,
    health_path = "/healthz",
  }))
  ok(srv:port() > 0)
  srv:close()
end)

case("json_encode_refuses_unknown_options", function()
  raises(function() util.json_encode({ a = 1 }, { prety = true }) end, ": json_encode: unknown option prety$")
  raises(function() util.json_encode({ a = 1 }, { sort = 1 }) end, ": json_encode: opts%.sort must be a boolean$")
  raises(function() util.json_encode({ a = 1 }, "pretty") end, "table expected")
  eq(util.json_encode({ b = 1, a = 2 }, { sort = true }), '{"a":2,"b":1}')
  eq(util.json_encode({ a = 1 }, { pretty = true, sort = false }), '{\n  "a": 1\n}')
  eq(util.json_encode({ a = 1 }, nil), '{"a":1}')
end)

case("sandbox_new_refuses_unknown_options", function()
  raises(
    function() sandbox.new({ instructions = 100000, memroy = 1 << 20 }) end,
    ": sandbox%.new: unknown option memroy$"
  )
  raises(
    function() sandbox.new({ instructions = 100000, yieldable = "yes" }) end,
    ": sandbox%.new: yieldable must be a boolean$"
  )
  local box =
    sandbox.new({ instructions = 100000, memory = 1 << 20, yieldable = false, strings = sandbox.strings(1024) })
  eq(select(2, sandbox.call(box, function() return 41 + 1 end)), 42)
end)
