-- mpic.core.http and mpic.fetch against the nginx lab of tests/lab/test_http.sh.
-- These cases need the lab: without MPIC_LAB_HTTP they are not registered
-- (and a note says so); run them through test_http.sh.
local T = require "mpic.testing"
local mpic = require "mpic"
-- the lab is on loopback: each request lifts the reserved-address guard, as labs do
local http = setmetatable({}, { __index = require "mpic.core.http" })
function http.request(url, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.http").request(url, opts)
end
http.get = http.request
local fetch = require "mpic.fetch"
local case, eq, ok, contains, raises = T.case, T.eq, T.ok, T.contains, T.raises
local os_getenv = os.getenv

local HTTP = os_getenv("MPIC_LAB_HTTP")
if not HTTP then
  io.stderr:write(
    "lab_test.lua: MPIC_LAB_HTTP is not set; lab cases not registered " .. "(run tests/lab/test_http.sh)\n"
  )
  return
end
local HTTPS = assert(os_getenv("MPIC_LAB_HTTPS"))
local HTTP6 = assert(os_getenv("MPIC_LAB_HTTP6"))
local REFUSED = assert(os_getenv("MPIC_LAB_HTTP_REFUSED"))
local TOKEN = assert(os_getenv("MPIC_LAB_TOKEN"))
local KEY_AUTH = assert(os_getenv("MPIC_LAB_KEY_AUTH"))
local ADDR, PORT = HTTP:match("^(.*):(%d+)$")
PORT = tonumber(PORT)
local TLS_PORT = tonumber(HTTPS:match(":(%d+)$"))
local CHALLENGE = "/.well-known/acme-challenge/" .. TOKEN

local function header(res, name)
  for _, h in ipairs(res.headers) do
    if h[1] == name then return h[2] end
  end
end

-- A lab environment for fetch: names resolve to [::1] (nothing listens on
-- the HTTP port there) and then the lab's IPv4 address.
local function lab_env()
  local dns = { ["dual.test"] = { "::1", ADDR }, ["v4.test"] = { ADDR } }
  return {
    resolve = function(host) return dns[host] or nil, "nxdomain", host end,
    allow_reserved = true,
    http_port = PORT,
    https_port = TLS_PORT,
  }
end

-- http.get -----------------------------------------------------------------

case("lab_get_200_token_file", function()
  local r = assert(http.get("http://" .. HTTP .. CHALLENGE))
  eq(r.status, 200)
  eq(r.reason, "OK")
  eq(r.body, KEY_AUTH)
  eq(r.exceeded, false)
  eq(r.ip, ADDR)
  eq(r.port, PORT)
  eq(r.http_version, "1.1")
  eq(header(r, "content-length"), tostring(#KEY_AUTH))
  ok(header(r, "server"), "server header present")
  eq(r.url, "http://" .. HTTP .. CHALLENGE)
end)

case("lab_get_404_and_410_are_responses", function()
  local r = assert(http.get("http://" .. HTTP .. "/.well-known/acme-challenge/missing"))
  eq(r.status, 404)
  eq(r.reason, "Not Found")
  r = assert(http.get("http://" .. HTTP .. "/gone"))
  eq(r.status, 410)
  eq(r.reason, "Gone")
end)

case("lab_get_oversized_body_capped", function()
  local r = assert(http.get("http://" .. HTTP .. "/big", { max_bytes = 128 }))
  eq(r.status, 200)
  eq(r.exceeded, true)
  eq(#r.body, 128)
  eq(r.body, ("b"):rep(128))
  r = assert(http.get("http://" .. HTTP .. "/big", { max_bytes = 2 * 1024 * 1024 }))
  eq(r.exceeded, false)
  eq(#r.body, 1048576)
  r = assert(http.get("http://" .. HTTP .. "/big", { max_bytes = 1048576 }))
  eq(r.exceeded, false)
  eq(#r.body, 1048576)
end)

case("lab_get_slow_server_times_out_after_connect", function()
  local t0 = mpic.now()
  local r, kind, detail = http.get("http://" .. HTTP .. "/slow", { timeout_ms = 500 })
  eq(r, nil)
  eq(kind, "timeout")
  contains(detail, "Timeout after connect")
  ok(mpic.now() - t0 < 2000, "returned near the timeout")
end)

case("lab_get_connection_refused", function()
  local r, kind, detail = http.get("http://" .. REFUSED .. "/")
  eq(r, nil)
  eq(kind, "connect")
  eq(detail, "connect: Connection refused (" .. REFUSED .. ")")
end)

case("lab_get_ipv6_refused_ipv4_works", function()
  local r, kind, detail = http.get("http://[::1]:" .. PORT .. "/")
  eq(r, nil)
  eq(kind, "connect")
  contains(detail, "Connection refused ([::1]:" .. PORT .. ")")
  r = assert(http.get("http://" .. HTTP .. CHALLENGE))
  eq(r.status, 200)
end)

case("lab_get_ipv6_listener", function()
  local r = assert(http.get("http://" .. HTTP6 .. CHALLENGE))
  eq(r.status, 200)
  eq(r.ip, "::1")
  eq(r.body, KEY_AUTH)
end)

case("lab_get_pinned_connect_address", function()
  local r = assert(http.get("http://acme.test:" .. PORT .. "/host", { connect_ip = ADDR }))
  eq(r.body, "acme.test:" .. PORT)
  eq(r.ip, ADDR)
  raises(function() http.get("http://acme.test:" .. PORT .. "/host") end, "connect_ip is required")
end)

case("lab_get_pinned_ipv6_connect_address", function()
  local port6 = HTTP6:match(":(%d+)$")
  local r = assert(http.get("http://acme.test:" .. port6 .. "/host", { connect_ip = "::1" }))
  eq(r.body, "acme.test:" .. port6)
  eq(r.ip, "::1")
end)

case("lab_get_headers_and_user_agent_sent", function()
  local r = assert(http.get("http://" .. HTTP .. "/ua", { user_agent = "mpic-lab/1.0" }))
  eq(r.body, "mpic-lab/1.0")
  r = assert(http.get("http://" .. HTTP .. "/hdr", { headers = { ["X-A"] = "b" } }))
  eq(r.body, "b")
  r = assert(
    http.get("http://" .. HTTP .. "/ua", { user_agent = "config-ua", headers = { ["User-Agent"] = "caller-ua" } })
  )
  eq(r.body, "caller-ua")
  r = assert(http.get("http://" .. HTTP .. "/conn", { headers = { Connection = "keep-alive" } }))
  eq(r.body, "close */*")
end)

case("lab_get_https_without_verification", function()
  local r = assert(http.get("https://" .. HTTPS .. CHALLENGE))
  eq(r.status, 200)
  eq(r.body, KEY_AUTH)
  local r2, kind, detail = http.get("https://" .. HTTPS .. CHALLENGE, { verify_tls = true })
  eq(r2, nil)
  eq(kind, "tls")
  ok(detail ~= "")
end)

case("lab_get_plain_http_on_tls_port", function()
  local r, kind, detail = http.get("https://" .. HTTP .. "/")
  eq(r, nil)
  eq(kind, "protocol")
  contains(detail, "Server only speaks HTTP, not TLS")
end)

case("lab_get_misuse_raises", function()
  raises(function() http.get({}) end, "string expected")
  raises(function() http.get("http://" .. HTTP .. "/", { timeout_ms = "x" }) end, "timeout_ms")
  raises(function() http.get("gopher://" .. HTTP .. "/") end, "scheme")
  raises(
    function() http.get("http://" .. HTTP .. "/", { headers = { ["X-A"] = "b\r\nX-Evil: 1" } }) end,
    "control character"
  )
end)

case("lab_get_cancel_in_flight", function()
  local task = mpic.spawn(function() return http.get("http://" .. HTTP .. "/slow") end)
  mpic.sleep(100)
  eq(http.active(), 1)
  mpic.cancel(task)
  eq(task:status(), "cancelled")
  eq(http.active(), 0)
  mpic.sleep(50)
end)

case("lab_get_concurrent_batch", function()
  local tasks = {}
  for i = 1, 200 do
    tasks[i] = mpic.spawn(function() return http.get("http://" .. HTTP .. CHALLENGE) end)
  end
  mpic.wait_all(tasks)
  for i = 1, 200 do
    local r = tasks[i]:result()
    eq(r and r.status, 200, "request " .. i)
  end
end)

-- fetch against nginx -------------------------------------------------------

local function lab_fetch(path, opts, host)
  return fetch.fetch("http://" .. (host or HTTP) .. path, opts or {}, lab_env())
end

case("lab_fetch_follows_each_allowed_redirect", function()
  for _, code in ipairs { 301, 302, 307, 308 } do
    local r = assert(lab_fetch("/r" .. code))
    eq(r.status, 200)
    eq(r.body, KEY_AUTH)
    eq(r.history, { { status_code = code, url = "http://" .. HTTP .. CHALLENGE } })
  end
end)

case("lab_fetch_history_301_then_302", function()
  local r = assert(lab_fetch("/r301then302"))
  eq(r.history, {
    { status_code = 301, url = "http://" .. HTTP .. "/r302" },
    { status_code = 302, url = "http://" .. HTTP .. CHALLENGE },
  })
end)

case("lab_fetch_303_refused", function()
  local r, kind, detail = lab_fetch("/r303")
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "received disallowed redirect status code")
end)

case("lab_fetch_port_8080_refused", function()
  local r, kind, detail, history = lab_fetch("/port8080")
  eq(r, nil)
  eq(kind, "redirect")
  contains(detail, "not 8080")
  eq(history[1].url, "http://127.0.0.71:8080/x")
end)

case("lab_fetch_loop_detected", function()
  local r, kind, detail = lab_fetch("/loop")
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "Redirect loop detected")
end)

case("lab_fetch_10_hops_ok_11_too_many", function()
  local r = assert(lab_fetch("/chain/10"))
  eq(r.status, 200)
  eq(r.body, "end of chain")
  eq(#r.history, 10)
  local r2, kind, detail = lab_fetch("/chain/11")
  eq(r2, nil)
  eq(kind, "redirect")
  eq(detail, "Too many redirects")
  local r3 = assert(lab_fetch("/chain/12", { max_redirects = 20 }))
  eq(#r3.history, 12)
end)

case("lab_fetch_ipv6_refused_falls_back_to_ipv4", function()
  local r = assert(lab_fetch(CHALLENGE, {}, "dual.test:" .. PORT))
  eq(r.body, KEY_AUTH)
  eq(r.ip, ADDR)
  eq(#r.records, 2)
  eq(r.records[1].ip, "::1")
  eq(r.records[1].error, "connect")
end)

case("lab_fetch_fallback_on_redirect_hop_too", function()
  local r = assert(lab_fetch("/to-dual", {}, "v4.test:" .. PORT))
  eq(r.body, KEY_AUTH)
  eq(#r.records, 3)
  eq({ r.records[1].ip, r.records[2].ip, r.records[3].ip }, { ADDR, "::1", ADDR })
end)

case("lab_fetch_redirect_to_https", function()
  local r = assert(lab_fetch("/to-https"))
  eq(r.status, 200)
  eq(r.body, KEY_AUTH)
  eq(r.url, "https://" .. HTTPS .. CHALLENGE)
end)

case("lab_fetch_reserved_refused_outside_lab_mode", function()
  local env = lab_env()
  env.allow_reserved = false
  local r, kind = fetch.fetch("http://" .. HTTP .. CHALLENGE, {}, env)
  eq(r, nil)
  eq(kind, "reserved_address")
end)

-- connection pools --------------------------------------------------------

-- Six requests at once to a server that holds each one 150 ms; returns the
-- most the server saw at the same time.
local function peak_concurrency(keepalive)
  local server = require "mpic.core.server"
  local srv = assert(server.listen({ address = ADDR, port = 0 }))
  local now, peak = 0, 0
  local accept = mpic.spawn(function()
    while true do
      local req = srv:next()
      if not req then return end
      mpic.spawn(function()
        now = now + 1
        if now > peak then peak = now end
        mpic.sleep(150)
        now = now - 1
        req:respond(200, {}, "ok")
      end)
    end
  end)
  local tasks = {}
  for i = 1, 6 do
    tasks[i] = mpic.spawn(
      function()
        return assert(
          http.request("http://" .. ADDR .. ":" .. srv:port() .. "/", { keepalive = keepalive, timeout_ms = 5000 })
        )
      end
    )
  end
  mpic.wait_all(tasks, 10000)
  for _, t in ipairs(tasks) do
    eq(t:result().status, 200)
  end
  srv:close()
  mpic.cancel(accept)
  return peak
end

-- peak_concurrency(keepalive) with a channel pool of 2 (restored to 32)
local function peak_with_pool_of_two(keepalive)
  http.set_channel_connections(2)
  local ok_run, peak = pcall(peak_concurrency, keepalive)
  http.set_channel_connections(32)
  assert(ok_run, peak)
  return peak
end

case(
  "channel_requests_share_a_bounded_pool_of_connections",
  function() eq(peak_with_pool_of_two(true), 2, "keepalive requests beyond the pool wait for a connection") end
)

case(
  "probe_requests_are_not_held_by_the_channel_pool",
  function() eq(peak_with_pool_of_two(false), 6, "each probe has its own connection") end
)

case("channel_pool_size_is_checked", function()
  raises(function() http.set_channel_connections(0) end, "between 1 and 100000")
end)

case("cancelled_channel_request_leaves_its_connection_reusable", function()
  -- a check cancelled after the verdict must not cost the next one a new
  -- TLS connection: its answer is read and dropped, the connection kept
  local server = require "mpic.core.server"
  local srv = assert(server.listen({ address = ADDR, port = 0 }))
  local accept = mpic.spawn(function()
    while true do
      local req = srv:next()
      if not req then return end
      mpic.spawn(function()
        mpic.sleep(100)
        req:respond(200, {}, "ok")
      end)
    end
  end)
  local url = "http://" .. ADDR .. ":" .. srv:port() .. "/"
  local opts = { keepalive = true, timeout_ms = 5000 }
  local ran, err = pcall(function()
    eq(assert(http.request(url, opts)).reused, false, "the first request opens the connection")
    eq(assert(http.request(url, opts)).reused, true, "the second one reuses it")
    local t = mpic.spawn(http.request, url, opts)
    mpic.sleep(30)
    mpic.cancel(t)
    eq(t:status(), "cancelled")
    mpic.sleep(200) -- its answer arrives and is dropped
    eq(assert(http.request(url, opts)).reused, true, "the cancelled request's connection was kept")
    eq(assert(http.request(url, { timeout_ms = 5000 })).reused, false, "a probe never reuses one")
  end)
  srv:close()
  mpic.cancel(accept)
  assert(ran, err)
end)
