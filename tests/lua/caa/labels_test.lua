-- CAA validationmethods labels (RFC 8657, BR 4.2.2.1): every method is
-- permitted by its declaration's caa_method_label and by the ca-tbr-N alias
-- of its BR section 3.2.2.4.N, through the CAA checker; the README's table
-- says the same as the declarations.
local T = require "mpic.testing"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local F = dofile(here .. "/../challenge/fake.lua")
local target = require "mpic.target"
local caa = require "mpic.caa"
local challenges = require "mpic.challenges"
local checker = require "mpic.challenge.caa"
local case, eq = T.case, T.eq

local CA = "ca.example"
local REG = challenges.load()

-- The checker's verdict for a record "ca.example; validationmethods=<vm>" and a request method.
local function check(vm, method)
  local zone = { ["site.test"] = { CAA = { F.caa(0, "issue", CA .. "; validationmethods=" .. vm) } } }
  local probe = F.probe { zone = zone, config = { caa_domains = { CA }, account_uri_prefixes = {} } }
  local t = assert(target.normalise("site.test", { allow_reserved = true }))
  return checker.check(t, { validation_method = method }, probe)
end
local function permits(vm, method)
  local r = check(vm, method)
  eq(r.completed, true, vm .. " / " .. tostring(method))
  return r.passed
end

case("caa_ca_tbr_label_from_br_section", function()
  eq(caa.ca_tbr_label("3.2.2.4.7"), "ca-tbr-7")
  eq(caa.ca_tbr_label("3.2.2.4.19"), "ca-tbr-19")
  eq(caa.ca_tbr_label("3.2.2.4.20"), "ca-tbr-20")
  eq(caa.ca_tbr_label("3.2.2.5.7"), nil) -- 3.2.2.5.x labels are not defined
  eq(caa.ca_tbr_label("4.2.2.1"), nil)
  eq(caa.ca_tbr_label("3.2.2.4.7.1"), nil)
  eq(caa.ca_tbr_label(nil), nil)
end)

case("caa_acme_methods_accept_label_and_ca_tbr_alias", function()
  for method, labels in pairs {
    ["acme-dns-01"] = { "dns-01", "ca-tbr-7" },
    ["acme-http-01"] = { "http-01", "ca-tbr-19" },
    ["acme-tls-alpn-01"] = { "tls-alpn-01", "ca-tbr-20" },
  } do
    eq(caa.method_labels(method), labels, method)
    for _, l in ipairs(labels) do
      eq(permits(l, method), true, method .. " with " .. l)
      -- the coordinator sends the ACME label in place of the name: the alias still counts
      eq(permits(l, labels[1]), true, labels[1] .. " with " .. l)
    end
  end
end)

case("caa_every_declared_method_accepts_each_of_its_labels", function()
  local n = 0
  for _, ch in ipairs(REG.list) do
    local alias = caa.ca_tbr_label(ch.br_section)
    if ch.check_type == "dcv" and (ch.caa_method_label or alias) then
      n = n + 1
      local labels = caa.method_labels(ch.name)
      if ch.caa_method_label then eq(labels[1], ch.caa_method_label, ch.name) end
      if alias then eq(labels[#labels], alias, ch.name) end
      for _, l in ipairs(labels) do
        eq(permits(l, ch.name), true, ch.name .. " with " .. l)
      end
      eq(permits("future-99", ch.name), false, ch.name)
    end
  end
  eq(n, 12)
end)

case("caa_alias_of_another_section_does_not_permit", function()
  eq(permits("ca-tbr-7", "acme-http-01"), false)
  eq(permits("ca-tbr-19", "acme-dns-01"), false)
  eq(permits("ca-tbr-20,ca-tbr-19", "acme-dns-01"), false)
  eq(permits("ca-tbr-19,ca-tbr-7", "acme-dns-01"), true)
  eq(
    check("ca-tbr-19", "acme-dns-01").details.reason,
    "CAA issue forbids issuance: validation method not permitted by validationmethods"
  )
end)

case("caa_acme_label_does_not_cover_other_methods_of_its_section", function()
  -- dns-change is 3.2.2.4.7 like acme-dns-01, but not ACME dns-01
  eq(permits("ca-tbr-7", "dns-change"), true)
  eq(permits("dns-01", "dns-change"), false)
  eq(permits("dns-01", "ca-tbr-7"), false) -- ca-tbr-7 is dns-change's own label
  eq(caa.method_labels("ca-tbr-7"), { "ca-tbr-7" })
end)

case("caa_request_naming_a_unique_alias_gets_the_acme_label_too", function()
  eq(caa.method_labels("ca-tbr-19"), { "http-01", "ca-tbr-19" })
  eq(permits("http-01", "ca-tbr-19"), true)
  eq(permits("tls-alpn-01", "ca-tbr-20"), true)
end)

case("caa_unknown_label_is_its_own_only_label", function()
  eq(caa.method_labels("future-99"), { "future-99" })
  eq(caa.method_labels("ca-tbr-99"), { "ca-tbr-99" })
  eq(permits("future-99", "future-99"), true)
  eq(permits("http-01", "future-99"), false)
  eq(caa.method_labels(nil), nil)
  eq(caa.method_labels(""), nil)
  eq(permits("http-01", nil), false)
end)

case("caa_labels_follow_the_declarations_not_a_table", function()
  local custom = { name = "custom-99", check_type = "dcv", br_section = "3.2.2.4.99", caa_method_label = "x-99" }
  local reg = { by_name = { ["custom-99"] = custom }, list = { custom } }
  eq(caa.method_labels("custom-99", reg), { "x-99", "ca-tbr-99" })
  eq(caa.method_labels("x-99", reg), { "x-99", "ca-tbr-99" })
  eq(caa.method_labels("ca-tbr-99", reg), { "x-99", "ca-tbr-99" })
  local bare = { name = "bare-98", check_type = "dcv", br_section = "3.2.2.4.98" }
  eq(caa.method_labels("bare-98", { by_name = { ["bare-98"] = bare }, list = { bare } }), { "ca-tbr-98" })
end)

case("caa_decide_takes_a_list_of_labels", function()
  local rr = { { flags = 0, tag = "issue", value = CA .. "; validationmethods=ca-tbr-20" } }
  eq((caa.decide(rr, { caa_domains = { CA }, method = { "tls-alpn-01", "ca-tbr-20" } })), true)
  eq((caa.decide(rr, { caa_domains = { CA }, method = { "tls-alpn-01" } })), false)
  eq((caa.decide(rr, { caa_domains = { CA }, method = {} })), false)
end)

case("caa_readme_table_matches_the_declarations", function()
  local f = assert(io.open("README.md", "r"))
  local text = f:read("a")
  f:close()
  local rows = 0
  for method, section, labels in text:gmatch("\n| ([a-z0-9-]+) | (3%.2%.2%.[0-9.]+) | ([^\n]-) |") do
    local ch = REG.by_name[method]
    T.ok(ch, "README names an unknown method " .. method)
    eq(section, ch.br_section, method)
    local want = {}
    for l in labels:gmatch("`([^`]+)`") do
      want[#want + 1] = l
    end
    eq(want, caa.method_labels(method), method)
    rows = rows + 1
  end
  eq(rows, 12)
end)
