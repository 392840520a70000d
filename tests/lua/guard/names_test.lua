-- Only public names are validated outside labs: targets and redirect hosts
-- must be below an ICANN public suffix (a bare suffix is refused), one
-- trailing dot dropped first, and special-use names are refused with their
-- registry entry, before any DNS query. The lab switch
-- (network.allow_reserved_ips, allow_reserved here) lifts this for .test.
local T = require "mpic.testing"
local target = require "mpic.target"
local fetch = require "mpic.fetch"
local http = require "mpic.core.http"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local PROD = { allow_reserved = false }
local LAB = { allow_reserved = true }

local function refused(text, want)
  local t, kind, msg = target.normalise(text, PROD)
  eq(t, nil, text)
  eq(kind, "invalid-target", text)
  contains(msg, want, text)
end

case("special_use_targets_refused_with_their_reason", function()
  refused("secret.corp.internal", "special-use name: [ICANN 2024]: internal")
  refused("metadata.google.internal.", "special-use name: [ICANN 2024]: internal")
  refused("printer.local", "special-use name: [RFC6762]: local")
  refused("abcdefghijklmnop.onion", "special-use name: [RFC7686]: onion")
  refused("nas.home.arpa", "special-use name: [RFC8375]: home.arpa")
  refused("x.alt", "special-use name: [RFC9476]: alt")
  refused("localhost", "special-use name: [RFC6761]: localhost")
  refused("localhost.", "special-use name: [RFC6761]: localhost")
  refused("a.localhost", "special-use name: [RFC6761]: localhost")
  refused("shop.test", "special-use name: [RFC6761]: test")
  refused("*.shop.test", "special-use name: [RFC6761]: test")
  refused("www.example", "special-use name: [RFC6761]: example")
  refused("invalid.invalid", "special-use name: [RFC6761]: invalid")
  refused("1.0.0.127.in-addr.arpa", "special-use name: [RFC3172]: arpa")
  -- U-labels are converted first: the special label is still seen
  refused("BÜCHER.local", "special-use name: [RFC6762]: local")
end)

case("names_outside_the_icann_suffixes_refused", function()
  refused("my.tld.is.cpu", "not below an ICANN public suffix: my.tld.is.cpu")
  refused("intranet.corp", "not below an ICANN public suffix")
  refused("foo.lan.", "not below an ICANN public suffix: foo.lan")
  -- a bare public suffix is not a name below one
  refused("co.uk", "a public suffix itself, not a name below one: co.uk")
  refused("*.co.uk", "a public suffix itself")
  refused("com.", "a public suffix itself")
end)

case("public_names_accepted_and_trailing_dot_normalised", function()
  local t = assert(target.normalise("Example.COM.", PROD))
  eq(t.value, "example.com")
  t = assert(target.normalise("www.example.co.uk", PROD))
  eq(t.value, "www.example.co.uk")
  t = assert(target.normalise("*.foo.github.io", PROD))
  eq(t.value, "foo.github.io")
  eq(t.wildcard, true)
  t = assert(target.normalise("bücher.example.de", PROD))
  eq(t.value, "xn--bcher-kva.example.de")
end)

case("lab_switch_keeps_test_names", function()
  eq(assert(target.normalise("shop.test", LAB)).value, "shop.test")
  eq(assert(target.normalise("caa-timeout.com", LAB)).value, "caa-timeout.com")
  eq(assert(target.normalise("www.cut.example", LAB)).value, "www.cut.example")
  -- structure rules still hold in labs
  local t, _, msg = target.normalise("localhost", LAB)
  eq(t, nil)
  contains(msg, "at least two labels")
end)

case("target_fails_closed_without_the_name_check", function()
  local t, kind, msg = target.normalise("example.com", { vet_name = function() return nil, "no" end })
  eq(t, nil)
  eq(kind, "invalid-target")
  contains(msg, "name may not be validated: no")
end)

case("request_for_a_private_name_is_a_400_before_any_query", function()
  local request = require "mpic.request"
  local testing = require "mpic.testing"
  local cfg = testing.config({ network = { allow_reserved_ips = false } })
  local req = {
    check_type = "dcv",
    domain_or_ip_target = "secret.corp.internal",
    dcv_check_parameters = {
      validation_method = "acme-dns-01",
      key_authorization_hash = ("A"):rep(43),
    },
  }
  local out, issues = request.validate(req, {
    cfg = cfg,
    registry = require("mpic.challenges").load(),
    remotes = 6,
    date = "2026-12-16",
    now = 0,
    min_remotes = 2,
  })
  eq(out, nil)
  ok(issues and issues[1], "issues")
  eq(issues[1].issue_type, "invalid-target")
  contains(issues[1].message, "special-use name: [ICANN 2024]: internal")
end)

-- redirects and the first URL of a fetch ------------------------------------

-- fetch from http://example.com/ (a fake network) redirected to location.
local function redirect(location, allow)
  local resolved = {}
  local env = {
    allow_reserved = allow,
    resolve = function(host)
      resolved[#resolved + 1] = host
      return { "93.184.216.34" }
    end,
    get = function(url)
      if url == "http://example.com/" then
        return { status = 302, reason = "", headers = {}, location = location, body = "" }
      end
      return { status = 200, reason = "", headers = {}, body = "ok" }
    end,
  }
  local r, kind, detail = fetch.fetch("http://example.com/", {}, env)
  return r, kind, detail, resolved
end

local TLD = "Invalid host in redirect target, must end in IANA registered TLD"

case("redirect_to_a_name_ending_in_a_dot_refused", function()
  for _, loc in ipairs {
    "http://localhost./",
    "http://LOCALHOST./x",
    "http://metadata.google.internal./",
    "http://x.home.arpa./",
  } do
    local r, kind, detail, resolved = redirect(loc, false)
    eq(r, nil, loc)
    eq(kind, "redirect", loc)
    contains(detail, "Invalid host in redirect target: special-use name: ", loc)
    eq(#resolved, 1, loc) -- only the first host was looked up
  end
  for _, loc in ipairs { "http://127.0.0.1%2e/", "http://127.0.0.1./", "http://corp.lan./" } do
    local r, kind, detail, resolved = redirect(loc, false)
    eq(r, nil, loc)
    eq(kind, "redirect", loc)
    eq(detail, TLD, loc)
    eq(#resolved, 1, loc)
  end
  local r, kind, detail = redirect("http://co.uk./", false)
  eq(r, nil)
  eq(kind, "redirect")
  eq(detail, "Invalid host in redirect target: a public suffix itself, not a name below one: co.uk")
end)

case("redirect_to_a_public_name_with_a_dot_followed", function()
  local r, _, _, resolved = redirect("http://www.example.com./", false)
  ok(r, "followed")
  eq(r.status, 200)
  eq(resolved[2], "www.example.com.")
end)

case("redirect_names_in_labs_followed", function()
  local r = redirect("http://shop.test/", true)
  ok(r, "followed")
end)

case("fetch_of_a_private_name_refused_before_resolving", function()
  local resolved = 0
  local env = {
    resolve = function()
      resolved = resolved + 1
      return { "93.184.216.34" }
    end,
    get = function() return { status = 200, reason = "", headers = {}, body = "" } end,
  }
  local r, kind, detail = fetch.fetch("http://secret.corp.internal/x", {}, env)
  eq(r, nil)
  eq(kind, "invalid_target")
  eq(
    detail,
    "Invalid host secret.corp.internal: special-use name: " .. "[ICANN 2024]: internal (private-use top-level domain)"
  )
  eq(resolved, 0)
end)

case("vet_name_binding", function()
  eq(http.vet_name("www.example.co.uk."), "co.uk")
  local s, why, kind = http.vet_name("printer.local")
  eq(s, nil)
  eq(kind, "special_use")
  contains(why, "[RFC6762]")
  s, why, kind = http.vet_name("evil.com\0.local")
  eq(s, nil)
  eq(kind, "malformed")
  eq(why, "NUL byte in name")
  eq(select(3, http.vet_name("co.uk")), "bare_suffix")
  eq(select(3, http.vet_name("a.cpu")), "no_suffix")
  eq(select(3, http.vet_name("a..com")), "malformed")
  eq(http.psl_icann_suffix("localhost."), nil)
end)
