-- The closed schema of a challenge declaration: every problem of a file at
-- once (path, line, field, expected and got), unknown fields refused, every
-- declared field used (br_section_ip, caa_method_label, parameter types).
local T = require "mpic.testing"
local challenges = require "mpic.challenges"
local util = require "mpic.core.util"
local case, eq, contains = T.case, T.eq, T.contains

local function tempdir()
  local base = os.tmpname()
  os.remove(base)
  assert(util.mkdir(base))
  return base
end
local write = T.write_file
local function cleanup(dir)
  for _, n in ipairs(util.listdir(dir) or {}) do
    os.remove(dir .. "/" .. n)
  end
  os.remove(dir)
end

local function load_one(text)
  local dir = tempdir()
  write(dir .. "/m.lua", text)
  local reg = challenges.load({ dir })
  cleanup(dir)
  return reg, dir .. "/m.lua"
end

local BROKEN = [[
return {
  name = "x-broken",
  check_type = "dcv",
  br_section = 3.2,
  identifiers = {dns = "yes"},
  wildcard = "strip",
  params = {token = {type = "string", requried = true}, n = {type = "blob"}},
  chek = function() end,
}
]]

case("schema_reports_every_problem_at_once_with_lines", function()
  local reg, path = load_one(BROKEN)
  eq(#reg.list, 0)
  eq(#reg.errors, 1)
  local e = reg.errors[1]
  local fields = {}
  for _, p in ipairs(e.problems) do
    fields[#fields + 1] = p.field
  end
  table.sort(fields)
  eq(fields, { "br_section", "check", "chek", "identifiers", "params.n.type", "params.token.requried" })
  local msg = challenges.format_errors(reg)
  -- br_section = 3.2 is a wrong type, not a missing field
  contains(msg, path .. ":4: field 'br_section': expected a BR section as a string")
  contains(msg, "got the number 3.2")
  contains(msg, path .. ":5: field 'identifiers': expected {dns = <boolean>, ip = <boolean>}")
  contains(msg, "field 'check': expected a function check(target, params, probe), got nothing (missing)")
  contains(msg, path .. ":8: field 'chek': expected no such field")
  contains(msg, path .. ":7: field 'params.n.type'")
  contains(msg, "field 'params.token.requried': expected no such key")
end)

case("schema_refuses_br_section_ip_without_ip_targets", function()
  local reg = load_one([[return {name = "x-ip", check_type = "dcv", br_section = "3.2.2.4.99",
    br_section_ip = "3.2.2.5.99", identifiers = {dns = true, ip = false}, wildcard = "strip",
    params = {}, check = function() return {passed = false, completed = true} end}]])
  eq(#reg.errors, 1)
  contains(reg.errors[1].message, "no br_section_ip unless identifiers.ip is true")
end)

case("schema_refuses_data_holding_functions", function()
  local reg = load_one([[return {name = "x-f", check_type = "dcv", br_section = "3.2.2.4.99",
    identifiers = {dns = true}, wildcard = "strip", params = {v = {type = "string", enum = {function() end}}},
    check = function() return {passed = false, completed = true} end}]])
  eq(#reg.errors, 1)
  contains(reg.errors[1].message, "field 'params': expected plain data")
end)

case("schema_builtin_declarations_are_clean", function()
  local reg = challenges.load()
  eq(reg.errors, {})
  for _, ch in ipairs(reg.list) do
    local decl = {}
    for k, v in pairs(ch) do
      if k ~= "path" then decl[k] = v end
    end -- path: set by the loader
    eq(challenges.declaration_problems(decl), {}, ch.name)
  end
end)

case("schema_br_section_ip_used_for_ip_targets", function()
  local reg = challenges.load()
  local http = reg.by_name["acme-http-01"]
  eq(challenges.br_section_for(http, { kind = "ip", value = "192.0.2.1" }), "3.2.2.5.6")
  eq(challenges.br_section_for(http, { kind = "dns", value = "example.com" }), "3.2.2.4.19")
  -- no br_section_ip: the one section serves both
  eq(challenges.br_section_for(reg.by_name["caa"], { kind = "ip", value = "192.0.2.1" }), "4.2.2.1")
end)

case("schema_helpers_run_sandboxed", function()
  local reg = load_one([[return {name = "x-h", check_type = "dcv", br_section = "3.2.2.4.99",
    identifiers = {dns = true}, wildcard = "strip", params = {},
    helpers = {double = function(x) return x * 2 end, spin = function() while true do end end},
    check = function() return {passed = false, completed = true} end}]])
  eq(reg.errors, {})
  local h = reg.by_name["x-h"].helpers
  eq(h.double(21), 42)
  local good, err = pcall(h.spin)
  eq(good, false)
  contains(err, "instruction limit")
end)
