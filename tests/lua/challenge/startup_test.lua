-- A broken challenge file is reported when a command starts (validate,
-- serve, agent, the REPL, a reload), with every problem; strict_challenges
-- makes them refuse to start instead.
local T = require "mpic.testing"
local mpic = require "mpic"
local util = require "mpic.core.util"
local challenges = require "mpic.challenges"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local self_exe = T.self_exe

local write = T.write_file

local BROKEN = [[
return {
  name = "x-typo-01", check_type = "dcv", br_section = "3.2.2.4.99",
  identifiers = {dns = true}, wildcard = "strip", params = {},
  chek = function() return {passed = true, completed = true} end,
}
]]

-- A folder with one broken challenge file and a configuration using it.
local function setup(strict)
  local dir = os.tmpname()
  os.remove(dir)
  assert(util.mkdir(dir .. "/ch"))
  write(dir .. "/ch/typo.lua", BROKEN)
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  local root = here .. "/../../.."
  local persp = {}
  for i, r in ipairs({ { "ARIN", 39.0, -77.5 }, { "RIPE", 50.1, 8.7 }, { "APNIC", 1.35, 103.8 } }) do
    persp[i] = { id = "r" .. i, rir = r[1], location = { lat = r[2], lon = r[3] }, resolvers = { "127.0.0.1:9" } }
  end
  write(
    dir .. "/cfg.json",
    mpic.json.encode({
      issuer = { caa_domains = { "ca.example" } },
      policy = root .. "/policies/br.lua",
      selection_secret = "0123456789abcdef0123456789abcdef",
      challenge_dirs = { dir .. "/ch" },
      strict_challenges = strict or nil,
      audit = { path = dir .. "/audit.log" },
      defaults = { perspective_count = 3, max_attempts = 1, timeout_ms = 2000 },
      network = { allow_reserved_ips = true },
      perspectives = persp,
    })
  )
  return dir
end

local function cleanup(dir) os.execute("rm -rf '" .. dir .. "'") end

local function run(cmd)
  local p = assert(io.popen(self_exe() .. " " .. cmd .. ' 2>&1 </dev/null; echo "exit=$?"'))
  local out = p:read("a")
  p:close()
  return out
end

case("startup_validate_reports_a_broken_file", function()
  local dir = setup(false)
  local out = run(
    "validate --config "
      .. dir
      .. "/cfg.json --check dcv --method acme-dns-01"
      .. " --target example.com --param key_authorization_hash=x"
  )
  cleanup(dir)
  contains(out, "mpic: challenge file skipped: " .. dir .. "/ch/typo.lua:4: field 'chek': expected no such field")
  contains(out, "field 'check': expected a function")
end)

case("startup_strict_challenges_refuses_validate_serve_and_agent", function()
  local dir = setup(true)
  local cfg = dir .. "/cfg.json"
  local v = run("validate --config " .. cfg .. " --check caa --target example.com")
  local s = run("serve --config " .. cfg .. " --listen 127.0.49.1:16500")
  local a = run(
    "agent --config "
      .. cfg
      .. " --listen 127.0.49.1:16501 --perspective r1"
      .. " --tls-cert "
      .. dir
      .. "/c.pem --tls-key "
      .. dir
      .. "/k.pem --client-ca "
      .. dir
      .. "/ca.pem"
  )
  cleanup(dir)
  for _, out in ipairs({ v, s, a }) do
    contains(out, "strict_challenges: refusing to start with 1 broken challenge file(s)")
    contains(out, "typo.lua:4: field 'chek'")
    contains(out, "exit=2")
  end
end)

case("startup_load_configured_writes_every_problem", function()
  local dir = setup(false)
  local lines = {}
  local sink = { write = function(_, ...) lines[#lines + 1] = table.concat({ ... }) end }
  local reg = challenges.load_configured({ challenge_dirs = { dir .. "/ch" } }, sink)
  local strict, serr = challenges.load_configured({ challenge_dirs = { dir .. "/ch" }, strict_challenges = true }, sink)
  cleanup(dir)
  ok(reg.by_name["acme-dns-01"], "the others still load")
  eq(reg.by_name["x-typo-01"], nil)
  eq(#lines, 2) -- two problems: the unknown field and the missing check
  eq(strict, nil)
  contains(serr, "strict_challenges")
end)
