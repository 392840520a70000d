-- Target normalisation (REFERENCE §2.1) and ADN rules per method (§1.8).
local T = require "mpic.testing"
local target = require "mpic.target"
local case, eq, ok = T.case, T.eq, T.ok

local LAB = { allow_reserved = true }
local function value(s, opts)
  local t = assert(target.normalise(s, opts or LAB))
  return t.value, t
end
local function rejected(s, opts)
  local t, kind, msg = target.normalise(s, opts or LAB)
  eq(t, nil, s)
  eq(kind, "invalid-target")
  ok(type(msg) == "string")
  return msg
end

case("target_name_lowercased_and_trailing_dot_removed", function() eq(value("Example.COM."), "example.com") end)
case("target_u_labels_become_a_labels", function()
  eq(value("bücher.example.de"), "xn--bcher-kva.example.de")
  eq(value("café.com"), "xn--caf-dma.com")
  eq(value("MÜNCHEN.de"), "xn--mnchen-3ya.de")
end)
case("target_a_labels_validated", function()
  eq(value("XN--BCHER-KVA.example.de"), "xn--bcher-kva.example.de")
  rejected("xn--.example.com")
  rejected("xn--abc-.example.com")
  rejected("ab--cd.example.com")
end)
case("target_label_and_name_lengths_enforced", function()
  value(string.rep("a", 63) .. ".com")
  rejected(string.rep("a", 64) .. ".com")
  local long = string.rep(string.rep("a", 60) .. ".", 5) .. "com"
  ok(#long > 253)
  rejected(long)
end)
case("target_malformed_names_rejected", function()
  for _, s in ipairs {
    "",
    "a..b.com",
    ".a.com",
    "-a.com",
    "a-.com",
    "a_b.com",
    "com",
    "exa mple.com",
    "a.*.com",
    "*.*.a.com",
    "*a.com",
    "[example.com]",
  } do
    rejected(s)
  end
end)
case("target_wildcard_flag_remembered", function()
  local v, t = value("*.Example.com")
  eq(v, "example.com")
  eq(t.wildcard, true)
  eq(t.kind, "dns")
end)
case("target_ipv4_strict_dotted_quad", function()
  local v, t = value("192.0.2.1")
  eq(v, "192.0.2.1")
  eq(t.kind, "ip")
  eq(t.ip_family, 4)
  rejected("1.2.00.3")
  rejected("1.2.3")
  rejected("256.1.1.1")
  rejected("01.2.3.4")
end)
case("target_ipv6_any_text_form_compared_in_binary", function()
  eq(value("[2001:DB8::1]"), "2001:db8::1")
  eq(value("2001:db8:0:0:0:0:0:1"), "2001:db8::1")
  eq(value("1:0:00:000:0000::"), "1::")
  eq(value("::11.22.33.44"), "::b16:212c")
  rejected("1:2:3:4:5:6:7:8:9")
  rejected("1:00000::")
  rejected("fe80::1%lo")
  rejected("1::2::3")
end)
case("target_reserved_ip_rejected_outside_labs", function()
  local check = function(ip)
    if ip:match("^127%.") then return true, "[RFC1122]: Loopback" end
    return false
  end
  local msg = rejected("127.0.0.1", { is_reserved = check })
  T.contains(msg, "Loopback")
  eq(value("8.8.8.8", { is_reserved = check }), "8.8.8.8")
  eq(value("127.0.0.1", LAB), "127.0.0.1")
end)
case("target_reserved_check_from_http_binding", function()
  -- the binding always ships: reserved addresses are refused through it
  rejected("10.1.2.3", {})
  rejected("2001:db8::1", {})
end)
case("target_reverse_names", function()
  eq(target.reverse_name(target.parse_ip("127.0.0.1")), "1.0.0.127.in-addr.arpa")
  eq(
    target.reverse_name(target.parse_ip("2001:db8::1")),
    "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa"
  )
end)
case("target_u_labels_become_a_labels", function()
  eq(value("bücher.example.de", LAB), "xn--bcher-kva.example.de")
  eq(value("café.com", LAB), "xn--caf-dma.com")
  eq(value("BÜCHER.example.de", LAB), "xn--bcher-kva.example.de")
end)
case("target_bad_a_label_rejected", function()
  rejected("xn--zzzzzz-.example", LAB)
  rejected("xn--bcher-kvb.example", LAB)
end)

-- §1.8 ADN rules
local challenges = require "mpic.challenges"
local reg = challenges.load()
local function adn(method, s) return target.for_method(assert(target.normalise(s, LAB)), reg.by_name[method]) end
case("adn_wildcard_rejected_for_http_tls_website", function()
  for _, m in ipairs { "acme-http-01", "acme-tls-alpn-01", "website-change" } do
    local t, kind = adn(m, "*.example.com")
    eq(t, nil, m)
    eq(kind, "invalid-target")
  end
end)
case("adn_wildcard_stripped_for_dns_methods", function()
  for _, m in ipairs {
    "acme-dns-01",
    "dns-account-01",
    "dns-change",
    "dns-persistent",
    "contact-email-txt",
    "contact-email-caa",
    "contact-phone-txt",
    "contact-phone-caa",
    "caa",
  } do
    local t = adn(m, "*.example.com")
    ok(t, m)
    eq(t.value, "example.com")
    eq(t.wildcard, true)
  end
end)
case("adn_ip_rejected_for_dns_only_methods", function()
  for _, m in ipairs { "acme-dns-01", "dns-account-01", "dns-change", "contact-email-txt" } do
    local t, kind = adn(m, "192.0.2.1")
    eq(t, nil, m)
    eq(kind, "invalid-target")
  end
  ok(adn("acme-http-01", "192.0.2.1"))
  ok(adn("acme-tls-alpn-01", "2001:db8::1"))
  ok(adn("dns-persistent", "192.0.2.1"))
  ok(adn("reverse-address-lookup", "192.0.2.1"))
end)

-- Every LDH-looking name, by an oracle written from the rules (§2.1): lower
-- case, labels of 1..63 octets of [a-z0-9-] without a hyphen at either edge,
-- "--" in positions 3-4 only for a valid xn-- label, at least two labels,
-- at most 253 octets, a top label that is not all digits. normalise must
-- accept exactly those (whichever of its paths a name takes).
local function oracle(s)
  local n = s:lower()
  if n:sub(-1) == "." then n = n:sub(1, -2) end
  if n == "" or #n > 253 then return nil end
  local labels = {}
  for l in (n .. "."):gmatch("([^.]*)%.") do
    if #l < 1 or #l > 63 or l:find("[^a-z0-9-]") or l:sub(1, 1) == "-" or l:sub(-1) == "-" then return nil end
    if l:sub(3, 4) == "--" then return false end -- an A-label candidate: left to idn2, not judged here
    labels[#labels + 1] = l
  end
  if #labels < 2 or labels[#labels]:find("^%d+$") then return nil end
  return n
end
case("target_ldh_names_match_the_rules", function()
  local alphabet = { "a", "b", "z", "0", "9", "-", ".", "A", "Q", "x", "n", "-", "." }
  local seed = 12345
  local function rnd(k)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % k + 1
  end
  local checked, accepted = 0, 0
  for _ = 1, 20000 do
    local parts = {}
    for i = 1, rnd(14) do
      parts[i] = alphabet[rnd(#alphabet)]
    end
    if rnd(9) == 1 then parts[#parts + 1] = string.rep("a", 60 + rnd(6)) .. ".com" end
    local s = table.concat(parts)
    local want = oracle(s)
    if want ~= false then
      local t = target.normalise(s, LAB)
      eq(t and t.value, want, s)
      checked = checked + 1
      if want then accepted = accepted + 1 end
    end
  end
  ok(checked > 15000 and accepted > 1000, string.format("names checked: %d, accepted: %d", checked, accepted))
end)
