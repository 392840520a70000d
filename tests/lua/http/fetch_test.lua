-- mpic.fetch with a fake network (env.resolve / env.get): the redirect rules
-- of REFERENCE §2.3 and the tables of §4.1 and §4.2, without any server.
local T = require "mpic.testing"
local fetch = require "mpic.fetch"
local case, eq, ok, contains, raises = T.case, T.eq, T.ok, T.contains, T.raises

-- A fake network. dns: host -> list of addresses. web: url -> response, or
-- url -> {[ip] = response}; a response is {status=, location=, body=} or
-- {err=kind, detail=}. Every call is logged.
local function net(dns, web, extra)
  local log = { resolved = {}, gets = {} }
  local env = {
    resolve = function(host)
      log.resolved[#log.resolved + 1] = host
      local a = dns[host]
      if not a then return nil, "nxdomain", "no such host " .. host end
      return a
    end,
    get = function(url, opts)
      log.gets[#log.gets + 1] = { url = url, ip = opts.connect_ip, ua = opts.user_agent, headers = opts.headers }
      local r = web[url]
      if r and r.status == nil and r.err == nil then r = r[opts.connect_ip] end
      if not r then return nil, "connect", "connect: Connection refused (" .. opts.connect_ip .. ":80)" end
      if r.err then return nil, r.err, r.detail end
      return {
        status = r.status,
        reason = "",
        headers = {},
        location = r.location,
        body = r.body or "",
        exceeded = false,
        ip = opts.connect_ip,
        port = 80,
      }
    end,
  }
  for k, v in pairs(extra or {}) do
    env[k] = v
  end
  return env, log
end

local PUB = { ["example.com"] = { "2001:4860::1", "93.184.216.34" }, ["cpu.letsencrypt.org"] = { "93.184.216.35" } }

-- One redirect from http://example.com/ to `location`; returns fetch's results.
local function redirect_to(location, extra, web_more)
  local web = { ["http://example.com/"] = { status = 302, location = location } }
  for k, v in pairs(web_more or {}) do
    web[k] = v
  end
  local dns = {
    ["example.com"] = { "93.184.216.34" },
    ["cpu.letsencrypt.org"] = { "93.184.216.35" },
    ["weird.port.letsencrypt.org"] = { "93.184.216.36" },
  }
  local env = net(dns, web, extra)
  return fetch.fetch("http://example.com/", {}, env)
end

local function refused(location, want, extra)
  local r, kind, detail = redirect_to(location, extra)
  eq(r, nil, location)
  eq(kind, "redirect", location)
  eq(detail, want, location)
end

-- §4.1 ---------------------------------------------------------------------
local TLD = "Invalid host in redirect target, must end in IANA registered TLD"

case(
  "redirect_gopher_scheme_refused",
  function()
    refused(
      "gopher://letsencrypt.org",
      'Invalid protocol scheme in redirect target. Only "http" and '
        .. '"https" protocol schemes are supported, not "gopher"'
    )
  end
)

case("redirect_port_9999_refused", function()
  refused(
    "https://weird.port.letsencrypt.org:9999",
    "Invalid port in redirect target. Only ports 80 and 443 are supported, not 9999"
  )
  refused(
    "http://127.0.0.1:9999",
    "Invalid port in redirect target. Only ports 80 and 443 are supported, not 9999",
    { allow_reserved = true }
  )
  refused(
    "http://[::1]:9999",
    "Invalid port in redirect target. Only ports 80 and 443 are supported, not 9999",
    { allow_reserved = true }
  )
end)

case(
  "redirect_empty_host_refused",
  function() refused("https:///who/needs/a/hostname?not=me", "Invalid empty host in redirect target") end
)

case(
  "redirect_well_known_last_label_message",
  function()
    refused(
      "https://my.webserver.is.misconfigured.well-known/acme-challenge/xxx",
      'Invalid host in redirect target "my.webserver.is.misconfigured.well-known". Check webserver '
        .. "config for missing '/' in redirect target."
    )
  end
)

case("redirect_unregistered_tld_refused", function()
  refused("https://my.tld.is.cpu/", TLD)
  refused("https://10.10.10.*", TLD)
  refused("https://[a:b:c:d:e:f:b:a:d]", TLD)
  -- special-use names say so
  refused("http://example.test/", "Invalid host in redirect target: special-use name: [RFC6761]: test (testing)")
  refused(
    "http://invalid.invalid/",
    "Invalid host in redirect target: special-use name: [RFC6761]: invalid (never resolves)"
  )
end)

case("redirect_reserved_ip_refused", function()
  refused(
    "http://10.10.10.10",
    "Invalid host in redirect target: IP address is in a reserved address " .. "block: [RFC1918]: Private-Use"
  )
  refused(
    "http://[3fff:aaa:aaaa:aaaa:abad:0ff1:cec0:ffee]",
    "Invalid host in redirect target: IP address " .. "is in a reserved address block: [RFC9637]: Documentation"
  )
  refused(
    "http://127.0.0.1/",
    "Invalid host in redirect target: IP address is in a reserved address " .. "block: [RFC1122]: Loopback"
  )
end)

case("redirect_zone_id_refused", function()
  local r, kind, detail = redirect_to("http://[fe80::1%25lo]/", { allow_reserved = true })
  eq(r, nil)
  eq(kind, "redirect")
  contains(detail, "zone")
end)

case(
  "redirect_path_over_2000_refused",
  function() refused("http://cpu.letsencrypt.org/" .. ("a"):rep(2000), "Redirect target too long") end
)

case("redirect_path_of_2000_allowed", function()
  local target = "http://cpu.letsencrypt.org/" .. ("a"):rep(1999)
  local r = redirect_to(target, nil, { [target] = { status = 200, body = "ok" } })
  ok(r, "followed")
  eq(r.url, target)
end)

case("redirect_allowed_targets_in_lab_mode", function()
  local lab = { allow_reserved = true }
  for _, c in ipairs {
    { "http://127.0.0.1", "http://127.0.0.1/", "127.0.0.1" },
    { "http://127.0.0.1:80", "http://127.0.0.1:80/", "127.0.0.1" },
    { "https://127.0.0.1", "https://127.0.0.1/", "127.0.0.1" },
    { "http://[::1]", "http://[::1]/", "::1" },
    { "http://[::1]:80", "http://[::1]:80/", "::1" },
    { "https://[::1]", "https://[::1]/", "::1" },
  } do
    local r, kind, detail = redirect_to(c[1], lab, { [c[2]] = { status = 200, body = "x" } })
    ok(r, c[1] .. ": " .. tostring(kind) .. " " .. tostring(detail))
    eq(r.url, c[2])
    eq(r.ip, c[3])
  end
end)

case("redirect_allowed_public_names", function()
  for _, c in ipairs {
    { "http://cpu.letsencrypt.org", "http://cpu.letsencrypt.org/" },
    { "http://cpu.letsencrypt.org:80", "http://cpu.letsencrypt.org:80/" },
    { "https://cpu.letsencrypt.org", "https://cpu.letsencrypt.org/" },
    { "https://cpu.letsencrypt.org:443/hello.world", "https://cpu.letsencrypt.org:443/hello.world" },
  } do
    local r, kind, detail = redirect_to(c[1], nil, { [c[2]] = { status = 200 } })
    ok(r, c[1] .. ": " .. tostring(kind) .. " " .. tostring(detail))
    eq(r.url, c[2])
    eq(r.history, { { status_code = 302, url = c[2] } })
  end
end)

case("redirect_lab_ports_configurable", function()
  local r = redirect_to(
    "http://127.0.0.1:15380/x",
    { allow_reserved = true, http_port = 15380 },
    { ["http://127.0.0.1:15380/x"] = { status = 200 } }
  )
  ok(r)
  refused(
    "http://127.0.0.1:80/x",
    "Invalid port in redirect target. Only ports 15380 and 443 are " .. "supported, not 80",
    { allow_reserved = true, http_port = 15380 }
  )
end)

-- §4.2 ---------------------------------------------------------------------

case("fetch_no_addresses_for_host", function()
  local env = net({}, {})
  local r, kind, detail = fetch.fetch("http://nothing.example.com/", {}, env)
  eq(r, nil)
  eq(kind, "nxdomain")
  contains(detail, "nothing.example.com")
end)

case("fetch_only_reserved_addresses_is_an_error", function()
  local env = net({ ["example.com"] = { "::1", "10.0.0.1" } }, {})
  local r, kind, detail = fetch.fetch("http://example.com/", {}, env)
  eq(r, nil)
  eq(kind, "dns")
  eq(detail, "no valid A records found for example.com; no valid AAAA records found for example.com")
end)

case("fetch_reserved_ip_target_refused", function()
  local env = net({}, {})
  local r, kind, detail = fetch.fetch("http://127.0.0.1/", {}, env)
  eq(r, nil)
  eq(kind, "reserved_address")
  contains(detail, "[RFC1122]: Loopback")
end)

case("fetch_redirect_loop_detected", function()
  local env = net(PUB, { ["http://example.com/loop"] = { status = 301, location = "/loop" } })
  local r, kind, detail, history = fetch.fetch("http://example.com/loop", {}, env)
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "Redirect loop detected")
  eq(history, { { status_code = 301, url = "http://example.com/loop" } })
end)

local function chain(n, final)
  local web = {}
  for i = 0, n - 1 do
    web["http://example.com/" .. i] = { status = 302, location = "/" .. (i + 1) }
  end
  web["http://example.com/" .. n] = final or { status = 200, body = "end" }
  return web
end

case("fetch_ten_redirects_followed", function()
  local env = net(PUB, chain(10))
  local r = assert(fetch.fetch("http://example.com/0", {}, env))
  eq(r.status, 200)
  eq(r.body, "end")
  eq(#r.history, 10)
  eq(r.url, "http://example.com/10")
end)

case("fetch_eleventh_redirect_fails", function()
  local env = net(PUB, chain(11))
  local r, kind, detail, history = fetch.fetch("http://example.com/0", {}, env)
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "Too many redirects")
  eq(#history, 11)
end)

case("fetch_max_redirects_20_for_website_change", function()
  local env = net(PUB, chain(12))
  local r = assert(fetch.fetch("http://example.com/0", { max_redirects = 20 }, env))
  eq(#r.history, 12)
end)

case("fetch_303_disallowed", function()
  local env = net(PUB, { ["http://example.com/"] = { status = 303, location = "/ok" } })
  local r, kind, detail, history = fetch.fetch("http://example.com/", {}, env)
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "received disallowed redirect status code")
  eq(history, { { status_code = 303, url = "http://example.com/ok" } })
end)

case("fetch_redirect_statuses_followed", function()
  for _, code in ipairs { 301, 302, 307, 308 } do
    local env = net(
      PUB,
      { ["http://example.com/"] = { status = code, location = "/ok" }, ["http://example.com/ok"] = { status = 200 } }
    )
    local r = assert(fetch.fetch("http://example.com/", {}, env))
    eq(r.history[1].status_code, code)
  end
end)

case("fetch_non_200_returned_as_response", function()
  local env = net(PUB, { ["http://example.com/gone"] = { status = 410 } })
  local r = assert(fetch.fetch("http://example.com/gone", {}, env))
  eq(r.status, 410)
end)

case("fetch_ipv6_broken_ipv4_works_on_every_hop", function()
  local web = {
    ["http://example.com/a"] = { ["93.184.216.34"] = { status = 302, location = "http://www.example.com/b" } },
    ["http://www.example.com/b"] = { ["93.184.216.99"] = { status = 200, body = "ok" } },
  }
  local dns = {
    ["example.com"] = { "2001:4860::1", "93.184.216.34" },
    ["www.example.com"] = { "2001:4860::2", "93.184.216.99" },
  }
  local env, log = net(dns, web)
  local r = assert(fetch.fetch("http://example.com/a", {}, env))
  eq(r.body, "ok")
  eq(r.ip, "93.184.216.99")
  eq(#r.records, 4)
  eq(
    { log.gets[1].ip, log.gets[2].ip, log.gets[3].ip, log.gets[4].ip },
    { "2001:4860::1", "93.184.216.34", "2001:4860::2", "93.184.216.99" }
  )
  eq(log.resolved, { "example.com", "www.example.com" })
end)

case("fetch_ipv6_only_broken_is_connect_error", function()
  local env = net({ ["example.com"] = { "2001:4860::1" } }, {})
  local r, kind, detail = fetch.fetch("http://example.com/", {}, env)
  eq(r, nil)
  eq(kind, "connect")
  contains(detail, "2001:4860::1")
end)

case("fetch_no_fallback_after_non_dial_error", function()
  local env, log = net(PUB, {
    ["http://example.com/"] = {
      ["2001:4860::1"] = { err = "timeout", detail = "Timeout after connect (your server may be slow)" },
      ["93.184.216.34"] = { status = 200 },
    },
  })
  local r, kind = fetch.fetch("http://example.com/", {}, env)
  eq(r, nil)
  eq(kind, "timeout")
  eq(#log.gets, 1)
end)

case("fetch_uppercase_host_lowercased", function()
  local env, log = net(PUB, {
    ["http://example.com/"] = { status = 302, location = "http://CPU.LetsEncrypt.ORG/x" },
    ["http://cpu.letsencrypt.org/x"] = { status = 200 },
  })
  local r = assert(fetch.fetch("http://example.com/", {}, env))
  eq(r.url, "http://cpu.letsencrypt.org/x")
  eq(log.resolved[2], "cpu.letsencrypt.org")
end)

case("fetch_redirect_to_invalid_name_and_port_8080_cite_url", function()
  local r, kind, detail, history = redirect_to("http://invalid.invalid/path")
  eq(r, nil)
  eq(kind, "redirect")
  contains(detail, "special-use name: [RFC6761]: invalid")
  eq(history[1].url, "http://invalid.invalid/path")
  r, kind, detail, history = redirect_to("http://example.com:8080/path")
  eq(r, nil)
  eq(kind, "redirect")
  contains(detail, "not 8080")
  eq(history[1].url, "http://example.com:8080/path")
end)

case("fetch_user_agent_and_headers_on_every_hop", function()
  local env, log = net(PUB, chain(2))
  assert(fetch.fetch("http://example.com/0", { user_agent = "mpic-ua", headers = { ["X-A"] = "b" } }, env))
  eq(#log.gets, 3)
  for _, g in ipairs(log.gets) do
    eq(g.ua, "mpic-ua")
    eq(g.headers, { ["X-A"] = "b" })
  end
end)

case("fetch_query_kept_across_redirect", function()
  local r = redirect_to("/next?a=1&b=2", nil, { ["http://example.com/next?a=1&b=2"] = { status = 200 } })
  ok(r)
  eq(r.url, "http://example.com/next?a=1&b=2")
end)

case("fetch_source_address_per_family", function()
  local seen = {}
  local env = net(PUB, {})
  env.get = function(_, o)
    seen[#seen + 1] = o.source_ip
    return nil, "connect", "refused"
  end
  fetch.fetch("http://example.com/", { source_ipv4 = "192.0.2.10", source_ipv6 = "2001:db8::10" }, env)
  eq(seen, { "2001:db8::10", "192.0.2.10" })
end)

case("fetch_total_deadline_bounds_hops", function()
  local clock = 0
  local env = net(PUB, chain(3))
  local inner = env.get
  env.now = function() return clock end
  env.get = function(url, o)
    clock = clock + 400
    return inner(url, o)
  end
  local r, kind = fetch.fetch("http://example.com/0", { total_timeout_ms = 1000 }, env)
  eq(r, nil)
  eq(kind, "timeout")
end)

case("fetch_misuse_raises", function()
  raises(function() fetch.fetch(nil, {}, {}) end, "url must be a string")
  raises(function() fetch.fetch("http://example.com/", {}, {}) end, "env.resolve")
end)

case("fetch_bad_initial_url_is_invalid_target", function()
  local r, kind = fetch.fetch("ftp://example.com/", {}, net(PUB, {}))
  eq(r, nil)
  eq(kind, "invalid_target")
end)
