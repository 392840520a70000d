-- Challenge files run sandboxed and bounded (mpic.challenges over
-- mpic.core.sandbox): no io/os/load/debug, an instruction limit and a
-- memory limit per check that survive the check's probe yields, and a
-- runaway check through `mpic validate` ends quickly as a failed,
-- not-completed check.
local T = require "mpic.testing"
local challenges = require "mpic.challenges"
local mpic = require "mpic"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local write = T.write_file

local function tempdir()
  local base = os.tmpname()
  os.remove(base)
  assert(os.execute("mkdir -p '" .. base .. "'"))
  return base
end
local function rmdir(d) os.execute("rm -rf '" .. d .. "'") end

local function decl(name, check, extra)
  return string.format(
    [[
return {
  name = %q, check_type = %q, br_section = "3.2.2.4.99",
  identifiers = {dns = true}, wildcard = "strip", params = {},
  %s
  check = function(target, params, probe)
    %s
  end,
}
]],
    name,
    (extra and extra.caa) and "caa" or "dcv",
    extra and extra.fields or "",
    check
  )
end

-- Load the given {file = source} into a temp dir; returns the registry.
local function load(files)
  local dir = tempdir()
  for f, src in pairs(files) do
    write(dir .. "/" .. f, src)
  end
  local reg = challenges.load({ dir })
  rmdir(dir)
  return reg
end

local TGT = { value = "example.com", kind = "dns" }

local function run(src, probe, extra)
  local reg = load({ ["x.lua"] = decl("x-test", src, extra) })
  eq(reg.errors, {})
  local t0 = mpic.now()
  local r = challenges.run(reg.by_name["x-test"], TGT, {}, probe or {})
  return r, mpic.now() - t0
end

local function script_error(r, pattern, prefix)
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, (prefix or "mpic_error:dcv_checker:") .. "script")
  contains(r.errors[1].error_message, pattern)
end

case("runaway_check_stops_at_the_instruction_limit", function()
  local r, ms = run("while true do pcall(function() while true do end end) end")
  script_error(r, "instruction limit (" .. challenges.CHECK_INSTRUCTION_LIMIT .. ") exceeded")
  ok(ms < 2000, "took " .. ms .. " ms")
  r = run("while true do end", nil, { caa = true })
  script_error(r, "instruction limit", "mpic_error:caa_checker:")
end)

case("io_os_load_and_debug_are_not_in_a_challenge_file", function()
  local path = os.tmpname()
  os.remove(path)
  script_error(run(string.format("io.open(%q, 'w'):write('x')", path)), "global 'io'")
  script_error(run("os.execute('touch " .. path .. "')"), "global 'os'")
  local f = io.open(path)
  eq(f, nil)
  if f then f:close() end
  script_error(run("return load('return 1')()"), "global 'load'")
  script_error(run("return loadfile('/etc/passwd')"), "global 'loadfile'")
  script_error(run("return dofile('/etc/passwd')"), "global 'dofile'")
  script_error(run("return debug.getinfo(1)"), "global 'debug'")
  script_error(run("return coroutine.yield()"), "global 'coroutine'")
  script_error(run("return require('io')"), "not available to challenge files")
  script_error(run("return require('mpic.core.http')"), "not available to challenge files")
  script_error(run("return string.dump(function() end)"), "dump")
  script_error(run("return ('x').dump(function() end)"), "dump")
  -- the helpers' util is the hashing/encoding part only
  script_error(run("return require('mpic.challenge._common').util().append_line('/tmp/x', 'y')"), "append_line")
end)

case("io_at_load_time_is_refused", function()
  local path = os.tmpname()
  os.remove(path)
  local reg = load({ ["bad.lua"] = string.format("io.open(%q, 'w'):write('x')\nreturn {}", path) })
  eq(#reg.errors, 1)
  contains(reg.errors[1].message, "global 'io'")
  eq(io.open(path), nil)
end)

case("runaway_main_chunk_is_a_load_error", function()
  local reg = load({ ["loop.lua"] = "while true do end" })
  eq(#reg.errors, 1)
  contains(reg.errors[1].message, "instruction limit")
end)

case("memory_bomb_fails_that_check_only", function()
  local reg = load({
    ["bomb.lua"] = decl("x-bomb", "local s = 'x' while true do s = s .. s end"),
    ["good.lua"] = decl("x-good", "return {passed = true, completed = true}"),
  })
  local t0 = mpic.now()
  local r = challenges.run(reg.by_name["x-bomb"], TGT, {}, {})
  ok(mpic.now() - t0 < 2000, "bounded")
  script_error(r, "memory limit (" .. challenges.CHECK_MEMORY_LIMIT .. " bytes) exceeded")
  local g = challenges.run(reg.by_name["x-good"], TGT, {}, {})
  eq(g.passed, true)
  -- and outside the check the program allocates freely
  local big = ("y"):rep(challenges.CHECK_MEMORY_LIMIT + 1)
  eq(#big, challenges.CHECK_MEMORY_LIMIT + 1)
end)

case("pattern_bomb_in_a_check_is_refused", function()
  local r, ms = run("return {passed = (('a'):rep(200000)):find('.-.-.-.-b') ~= nil, completed = true}")
  script_error(r, "pattern too costly")
  ok(ms < 1000, "took " .. ms .. " ms")
end)

-- A probe whose functions wait on the event loop (as real probes do).
local function sleepy_probe(log)
  return {
    id = "p1",
    wait = function(ms)
      mpic.sleep(ms)
      log[#log + 1] = ms
      return { slept = ms }
    end,
    work = function()
      local n = 0
      for i = 1, 20000000 do
        n = n + i
      end
      return n
    end,
    peek = function(t) return t.missing end,
  }
end

case("probes_yield_and_the_limits_follow_the_check", function()
  local log = {}
  -- probe time and the probe's own work are not charged to the check
  local r = run(
    [[
    local a = probe.wait(30)
    local b = probe.wait(30)
    probe.work()
    return {passed = a.slept + b.slept == 60 and probe.id == "p1", completed = true}]],
    sleepy_probe(log)
  )
  eq(r.passed, true)
  eq(log, { 30, 30 })
  -- the instruction limit still holds after yields
  r = run("probe.wait(10) while true do end", sleepy_probe({}))
  script_error(r, "instruction limit")
  -- and a probe error caught by the check does not leave the limits paused
  r = run(
    [[
    pcall(probe.wait, "not a number")
    local s = "x" while true do s = s .. s end]],
    sleepy_probe({})
  )
  script_error(r, "memory limit")
end)

case("memory_of_other_tasks_is_not_charged_to_a_waiting_check", function()
  local saved = challenges.CHECK_MEMORY_LIMIT
  challenges.CHECK_MEMORY_LIMIT = 4 << 20
  local reg = load({ ["w.lua"] = decl("x-wait", "probe.wait(100) return {passed = true, completed = true}") })
  local other = mpic.spawn(function()
    local keep = {}
    for i = 1, 16 do
      keep[i] = ("z"):rep(1 << 20) .. i
    end -- 16 MiB while the check waits
    return #keep
  end)
  local r = challenges.run(reg.by_name["x-wait"], TGT, {}, sleepy_probe({}))
  challenges.CHECK_MEMORY_LIMIT = saved
  eq(mpic.wait(other), 16)
  eq(r.passed, true)
end)

case("no_function_of_the_file_runs_outside_its_limits", function()
  -- a metatable handed to a probe is dropped on the way in
  local r = run(
    [[
    local v = probe.peek(setmetatable({}, {__index = function() while true do end end}))
    return {passed = v == nil, completed = true}]],
    sleepy_probe({})
  )
  eq(r.passed, true)
  -- a result whose metatable would run code is read raw
  r = run([[return setmetatable({passed = true, completed = true},
    {__index = function() while true do end end})]])
  eq(r.passed, true)
  eq(r.details, {})
  -- functions in the result are refused
  r = run("return {passed = true, completed = true, details = {f = function() end}}")
  script_error(r, "malformed result")
end)

case("validate_params_is_bounded_too", function()
  local reg = load({
    ["v.lua"] = decl(
      "x-params",
      "return {passed = true, completed = true}",
      { fields = "validate_params = function() while true do end end," }
    ),
  })
  local issues = challenges.validate_params(reg.by_name["x-params"], {})
  eq(#issues, 1)
  eq(issues[1].issue_type, "invalid-parameters")
  contains(issues[1].message, "instruction limit")
end)

-- The mpic binary running this test.
local self_exe = T.self_exe

case("validate_with_a_looping_challenge_file_ends_quickly_not_completed", function()
  local dir = tempdir()
  write(dir .. "/loop.lua", decl("x-loop-01", "while true do pcall(function() while true do end end) end"))
  local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")
  local root = here .. "/../../.."
  local persp = { { id = "p", rir = "ARIN", location = { lat = 39.0, lon = -77.5 } } }
  for i, r in ipairs({
    { "RIPE", 50.1, 8.7 },
    { "APNIC", 1.35, 103.8 },
    { "LACNIC", -23.5, -46.6 },
    { "AFRINIC", -26.2, 28.0 },
    { "ARIN", 47.6, -122.3 },
  }) do
    persp[#persp + 1] = { id = "r" .. i, rir = r[1], location = { lat = r[2], lon = r[3] } }
  end
  for _, p in ipairs(persp) do
    p.resolvers = { "127.0.0.1:9" }
  end -- never queried: the check only loops
  write(
    dir .. "/cfg.json",
    mpic.json.encode({
      issuer = { caa_domains = { "ca.example" } },
      policy = root .. "/policies/br.lua",
      selection_secret = "0123456789abcdef0123456789abcdef",
      challenge_dirs = { dir },
      defaults = { perspective_count = 4, max_attempts = 1, timeout_ms = 20000 },
      network = { allow_reserved_ips = true },
      primary = "p",
      perspectives = persp,
    })
  )
  local t0 = mpic.now()
  local p = assert(
    io.popen(
      self_exe()
        .. " validate --config "
        .. dir
        .. "/cfg.json --check dcv"
        .. ' --method x-loop-01 --target example.com --json 2>&1; echo "exit=$?"'
    )
  )
  local out = p:read("a")
  p:close()
  local ms = mpic.now() - t0
  rmdir(dir)
  contains(out, "exit=1")
  ok(ms < 5000, "took " .. ms .. " ms (the deadline was 20000)")
  local body = mpic.json.decode(out:match("^(.*)exit=%d+%s*$"))
  eq(body.is_valid, false)
  eq(body.mpic_completed, false)
  ok(#body.perspectives >= 1, "perspectives reported")
  for _, pr in ipairs(body.perspectives) do
    local cr = pr.check_response
    eq(cr.check_completed, false)
    eq(cr.errors[1].error_type, "mpic_error:dcv_checker:script")
    contains(cr.errors[1].error_message, "instruction limit")
  end
end)
