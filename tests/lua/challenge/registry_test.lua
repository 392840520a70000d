-- The challenge registry: discovery, declaration checks, broken files
-- reported with path and line, parameter schema, sunset dates, fail-closed run.
local T = require "mpic.testing"
local challenges = require "mpic.challenges"
local case, eq, ok = T.case, T.eq, T.ok

local BUILTIN = {
  "acme-dns-01",
  "acme-http-01",
  "acme-tls-alpn-01",
  "caa",
  "contact-email-caa",
  "contact-email-txt",
  "contact-phone-caa",
  "contact-phone-txt",
  "dns-account-01",
  "dns-change",
  "dns-persistent",
  "ip-address",
  "reverse-address-lookup",
  "website-change",
}

case("registry_loads_every_builtin_method", function()
  local reg = challenges.load()
  eq(reg.errors, {})
  local names = {}
  for _, c in ipairs(reg.list) do
    names[#names + 1] = c.name
  end
  table.sort(names)
  eq(names, BUILTIN)
end)

local write = T.write_file

local GOOD = [[
return {
  name = "x-custom-01", check_type = "dcv", br_section = "3.2.2.4.99",
  identifiers = {dns = true, ip = false}, wildcard = "strip",
  params = {value = {type = "string", required = true}},
  check = function(target, params, probe)
    return {passed = params.value == "yes", completed = true, details = {seen = target.value}}
  end,
}
]]

local function tempdir()
  local base = os.tmpname()
  os.remove(base)
  assert(os.execute("mkdir -p '" .. base .. "'"))
  return base
end
local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

case("registry_loads_a_dropped_in_file_and_reports_broken_ones", function()
  local dir = tempdir()
  write(dir .. "/custom.lua", GOOD)
  write(dir .. "/syntax.lua", "return {\n  name = 'broken',\n  check = function( end\n}\n")
  write(
    dir .. "/nocheck.lua",
    [[return {name = "no-check", check_type = "dcv", br_section = "1",
    identifiers = {dns = true}, wildcard = "strip", params = {}}]]
  )
  write(dir .. "/raises.lua", "local x = nil\n\nreturn x.field\n")
  write(dir .. "/_helper.lua", "error('helpers are not loaded')")
  write(dir .. "/notes.txt", "not lua")
  local reg = challenges.load({ dir, challenges.builtin_folder() })
  rmdir(dir)
  ok(reg.by_name["x-custom-01"], "custom file loaded")
  ok(reg.by_name["acme-dns-01"], "built-ins still loaded")
  eq(#reg.list, #BUILTIN + 1)
  eq(#reg.errors, 3)
  local by = {}
  for _, e in ipairs(reg.errors) do
    by[e.path:match("[^/]+$")] = e
  end
  ok(by["syntax.lua"] and by["syntax.lua"].line == 3, "syntax error with its line")
  T.contains(by["syntax.lua"].message, dir .. "/syntax.lua")
  ok(by["nocheck.lua"], "missing check reported")
  T.contains(by["nocheck.lua"].message, dir .. "/nocheck.lua")
  T.contains(by["nocheck.lua"].message, "check")
  ok(by["raises.lua"] and by["raises.lua"].line == 3, "runtime error with its line")
  local text = challenges.format_errors(reg)
  T.contains(text, dir .. "/syntax.lua:3:")
  T.contains(text, dir .. "/raises.lua:3:")
end)

case("registry_custom_check_runs", function()
  local dir = tempdir()
  write(dir .. "/custom.lua", GOOD)
  local reg = challenges.load({ dir })
  rmdir(dir)
  local r = challenges.run(reg.by_name["x-custom-01"], { value = "example.com", kind = "dns" }, { value = "yes" }, {})
  eq(r.passed, true)
  eq(r.details.seen, "example.com")
end)

case("registry_duplicate_name_reported", function()
  local dir = tempdir()
  write(dir .. "/a.lua", GOOD)
  write(dir .. "/b.lua", GOOD)
  local reg = challenges.load({ dir })
  rmdir(dir)
  eq(#reg.list, 1)
  eq(#reg.errors, 1)
  T.contains(reg.errors[1].message, "already defined")
end)

case("registry_missing_folder_reported", function()
  local reg = challenges.load({ "/nonexistent/mpic-challenges" })
  eq(#reg.list, 0)
  eq(#reg.errors, 1)
end)

case("registry_files_have_private_environments", function()
  local dir = tempdir()
  write(dir .. "/leak.lua", "leaked_global_from_challenge = 1\n" .. GOOD)
  local reg = challenges.load({ dir })
  rmdir(dir)
  ok(reg.by_name["x-custom-01"])
  eq(rawget(_G, "leaked_global_from_challenge"), nil)
end)

case("registry_declaration_checks", function()
  local base = {
    name = "m",
    check_type = "dcv",
    br_section = "3.2.2.4.99",
    identifiers = { dns = true },
    wildcard = "strip",
    params = {},
    check = function() end,
  }
  ok(challenges.validate_declaration(base))
  local function without(k, v)
    local c = {}
    for kk, vv in pairs(base) do
      c[kk] = vv
    end
    c[k] = v
    local good, why = challenges.validate_declaration(c)
    eq(good, false, k)
    ok(why)
  end
  without("name", nil)
  without("name", "Bad Name")
  without("check_type", "other")
  without("identifiers", {})
  without("wildcard", "keep")
  without("sunset", "soon")
  without("params", nil)
  without("params", { x = { type = "blob" } })
  without("check", nil)
  without("caa_method_label", "bad label")
end)

case("registry_validate_params_against_schema", function()
  local reg = challenges.load()
  eq(challenges.validate_params(reg.by_name["acme-dns-01"], { key_authorization_hash = "x" }), {})
  local issues = challenges.validate_params(reg.by_name["acme-dns-01"], {})
  eq(#issues, 1)
  T.contains(issues[1].message, "key_authorization_hash")
  issues = challenges.validate_params(reg.by_name["dns-change"], { challenge_value = "v", dns_record_type = "A" })
  eq(issues[1].issue_type, "invalid-validation-method-record-type-combination")
  issues =
    challenges.validate_params(reg.by_name["ip-address"], { challenge_value = "1.2.3.4", dns_record_type = "TXT" })
  eq(issues[1].issue_type, "invalid-validation-method-record-type-combination")
  issues = challenges.validate_params(reg.by_name["caa"], { certificate_type = "code-signing" })
  eq(issues[1].issue_type, "invalid-certificate-type")
  issues = challenges.validate_params(reg.by_name["website-change"], { challenge_value = "", http_token_path = "p" })
  eq(issues[1].issue_type, "empty-challenge-value")
  eq(
    challenges.validate_params(
      reg.by_name["website-change"],
      { challenge_value = "", http_token_path = "p", match_regex = "x" }
    ),
    {}
  )
  issues = challenges.validate_params(reg.by_name["acme-http-01"], { token = 5, key_authorization = "k" })
  eq(#issues, 1)
end)

local function utc(y, m, d) return os.time { year = y, month = m, day = d, hour = 0 } end
case("registry_sunset_dates", function()
  local reg = challenges.load()
  local ip = reg.by_name["ip-address"]
  eq(challenges.is_retired(ip, 1773532800 - 1), false) -- 2026-03-14T23:59:59Z
  eq(challenges.is_retired(ip, 1773532800), true) -- 2026-03-15T00:00:00Z
  eq(challenges.is_retired(reg.by_name["contact-phone-txt"], 1773532800), false)
  eq(challenges.is_retired(reg.by_name["contact-phone-txt"], 1805068800), true) -- 2027-03-15
  eq(challenges.is_retired(reg.by_name["contact-email-caa"], 1836691200 - 1), false)
  eq(challenges.is_retired(reg.by_name["contact-email-caa"], 1836691200), true) -- 2028-03-15
  eq(challenges.is_retired(reg.by_name["reverse-address-lookup"], 1805068800), true)
  eq(challenges.is_retired(reg.by_name["acme-dns-01"], utc(2100, 1, 1)), false)
end)

case("registry_run_fails_closed_on_script_error", function()
  local ch = { name = "boom", check_type = "dcv", check = function() error("kaboom") end }
  local r = challenges.run(ch, { value = "example.com", kind = "dns" }, {}, {})
  eq(r.passed, false)
  eq(r.completed, false)
  T.contains(r.errors[1].error_message, "kaboom")
  local ch2 = { name = "nothing", check_type = "caa", check = function() return "yes" end }
  local r2 = challenges.run(ch2, {}, {}, {})
  eq(r2.passed, false)
  eq(r2.errors[1].error_type, "mpic_error:caa_checker:script")
end)

case("registry_run_never_passes_an_incomplete_check", function()
  local ch = { name = "odd", check_type = "dcv", check = function() return { passed = true, completed = false } end }
  eq(challenges.run(ch, {}, {}, {}).passed, false)
end)

case("registry_caa_labels_declared", function()
  local reg = challenges.load()
  eq(reg.by_name["acme-http-01"].caa_method_label, "http-01")
  eq(reg.by_name["acme-dns-01"].caa_method_label, "dns-01")
  eq(reg.by_name["acme-tls-alpn-01"].caa_method_label, "tls-alpn-01")
  eq(reg.by_name["dns-account-01"].caa_method_label, "dns-account-01")
  eq(reg.by_name["dns-persistent"].caa_method_label, "dns-persist-01")
  eq(reg.by_name["dns-change"].caa_method_label, "ca-tbr-7")
end)
