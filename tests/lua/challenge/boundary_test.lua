-- The sandbox boundary of a check: copies made in C (mpic.core.sandbox.copy)
-- with the same refusals and messages as before, entries copied inside a
-- check charged to its instruction limit, and a probe view that is fresh
-- for every check although its wrappers are shared.
local T = require "mpic.testing"
local challenges = require "mpic.challenges"
local policy = require "mpic.policy"
local sandbox = require "mpic.core.sandbox"
local util = require "mpic.core.util"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local function tempdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p '" .. d .. "'"))
  return d
end

local function load_one(name, body)
  local dir = tempdir()
  local f = assert(io.open(dir .. "/" .. name .. ".lua", "w"))
  f:write(string.format(
    [[
return {
  name = %q, check_type = "dcv", br_section = "3.2.2.4.7",
  identifiers = {dns = true, ip = false}, wildcard = "reject", params = {},
  check = function(target, params, probe)
%s
  end,
}]],
    name,
    body
  ))
  f:close()
  local reg = challenges.load({ dir })
  os.execute("rm -rf '" .. dir .. "'")
  eq(reg.errors, {})
  return reg.by_name[name]
end

local TGT = { value = "example.com", kind = "dns" }

case("copy_data_refuses_what_it_refused_and_keeps_the_array_metatable", function()
  local arr = setmetatable({ 1, 2, 3 }, util.array_mt)
  local src = { a = arr, n = util.null, s = "x", t = { u = true }, other = setmetatable({}, { __index = error }) }
  local c = challenges.copy_data(src, "v")
  ok(c ~= src and c.a ~= arr and c.t ~= src.t, "a copy")
  eq(getmetatable(c.a), util.array_mt)
  eq(getmetatable(c.other), nil)
  ok(rawequal(c.n, util.null), "null kept")
  eq(c.t.u, true)
  eq({ c.a[1], c.a[2], c.a[3] }, { 1, 2, 3 })
  local function err(v, what)
    local good, e = pcall(challenges.copy_data, v, what or "v")
    eq(good, false)
    return e
  end
  eq(err({ f = print }), "v holds a function")
  eq(err(print), "v holds a function")
  eq(err({ [{}] = 1 }), "v has a table key")
  local deep = {}
  local t = deep
  for _ = 1, challenges.MAX_COPY_DEPTH do
    t.x = {}
    t = t.x
  end
  eq(err(deep), "v is nested too deeply")
  local big = {}
  for i = 1, challenges.MAX_COPY_ITEMS + 1 do
    big[i] = i
  end
  eq(err(big), "v is too large")
end)

case("policy_copies_name_the_path_to_the_problem", function()
  eq(
    { policy.plain_copy({ remotes = { { id = "a" }, { id = print } } }, "state") },
    { nil, "state.remotes.2.id holds a function" }
  )
  eq({ policy.plain_copy({ a = { [true] = { [{}] = 1 } } }, "state") }, { nil, "state.a.true has a table key" })
  local deep = {}
  local t = deep
  for i = 1, policy.MAX_COPY_DEPTH do
    t[i] = {}
    t = t[i]
  end
  local _, why = policy.plain_copy(deep, "info")
  contains(why, "is nested too deeply")
  contains(why, "info.1.2.3")
  eq(policy.plain_copy(setmetatable({ x = 1 }, { __index = error }), "s"), { x = 1 })
  eq(getmetatable(policy.plain_copy(setmetatable({}, util.array_mt), "s")), nil)
  eq(policy.plain_copy("x", "s"), "x")
  eq({ policy.plain_copy(print, "s") }, { nil, "s holds a function" })
end)

case("copies_inside_a_check_are_bounded", function()
  -- one table of 100,000 entries handed to a probe again and again: each
  -- copy is C work, charged to the check (bytes and entries), so it stops
  local ch = load_one(
    "x-copyloop",
    [[
    local t = {}
    for i = 1, 100000 do t[i] = i end
    for _ = 1, 1000000 do probe.echo(t) end
    return {passed = true, completed = true}]]
  )
  local calls = 0
  local t0 = os.clock()
  local r = challenges.run(ch, TGT, {}, { echo = function() calls = calls + 1 end })
  eq(r.passed, false)
  contains(r.errors[1].error_message, "check stopped")
  ok(calls < 100, calls .. " calls")
  ok(os.clock() - t0 < 10, "bounded")
end)

case("copy_charges_its_entries_to_the_running_box", function()
  local t = {}
  for i = 1, 100000 do
    t[i] = i
  end
  local box = sandbox.new { instructions = 1000000, memory = 1 << 30 }
  local copies = 0
  local r = {
    sandbox.call(box, function()
      for _ = 1, 20 do
        sandbox.copy(t, "t", 200000, 4)
        copies = copies + 1
      end
    end),
  }
  eq(r[1], nil)
  eq(r[2], "instructions")
  ok(copies < 10, copies .. " copies")
  -- outside any bounded call nothing is charged
  local okc, c = sandbox.copy({ 1, 2, 3 }, "v", 10, 4)
  eq(okc, true)
  eq(c, { 1, 2, 3 })
end)

case("each_check_gets_a_fresh_probe_view", function()
  -- a check that replaces a probe function or changes the probe's data
  -- changes nothing for the next check, of the same file or another
  local bad = load_one(
    "x-poison",
    [[
    probe.lookup = function() return "forged" end
    table.insert(probe.config.caa_domains, "evil.example")
    probe.id = "forged"
    return {passed = true, completed = true}]]
  )
  local good = load_one(
    "x-read",
    [[
    return {passed = probe.lookup() == "real" and #probe.config.caa_domains == 1 and probe.id == "p1",
            completed = true}]]
  )
  local probe = { id = "p1", config = { caa_domains = { "ca.example" } }, lookup = function() return "real" end }
  eq(challenges.run(bad, TGT, {}, probe).passed, true)
  eq(challenges.run(good, TGT, {}, probe).passed, true)
  eq(challenges.run(bad, TGT, {}, probe).passed, true)
  eq(challenges.run(good, TGT, {}, probe).passed, true)
  eq(probe.config.caa_domains, { "ca.example" })
  -- a probe whose function is replaced is seen with the new function
  probe.lookup = function() return "other" end
  eq(challenges.run(good, TGT, {}, probe).passed, false)
end)

case("a_stable_probe_is_shared_behind_a_table_of_each_checks_own", function()
  -- a configured perspective's probe (marked stable) is viewed through one
  -- shared view; what a check writes, or changes in its copy of
  -- probe.config, stays with that check
  local bad = load_one(
    "x-poison-stable",
    [[
    probe.lookup = function() return "forged" end
    table.insert(probe.config.caa_domains, "evil.example")
    probe.id = "forged"
    probe.extra = "mine"
    local ok = getmetatable(probe) == false and probe.extra == "mine" and probe.lookup() == "forged"
    return {passed = ok, completed = true}]]
  )
  local good = load_one(
    "x-read-stable",
    [[
    local seen = {}
    for k, v in pairs(probe) do seen[#seen + 1] = k .. "=" .. type(v) end
    table.sort(seen)
    local c1, c2 = probe.config, probe.config
    return {passed = probe.lookup() == "real" and #probe.config.caa_domains == 1 and probe.id == "p1"
              and probe.extra == nil and c1 == c2 and next(probe, nil) ~= nil,
            completed = true, details = {fields = table.concat(seen, ",")}}]]
  )
  -- dropping its own copy does not uncover the shared one
  local dropper = load_one(
    "x-drop-stable",
    [[
    probe.config = nil
    local c = probe.config
    if c then table.insert(c.caa_domains, "evil.example") end
    return {passed = c == nil, completed = true}]]
  )
  local probe = { id = "p1", config = { caa_domains = { "ca.example" } }, lookup = function() return "real" end }
  challenges.STABLE_PROBES[probe] = true
  for _ = 1, 2 do
    eq(challenges.run(dropper, TGT, {}, probe).passed, true)
    eq(challenges.run(bad, TGT, {}, probe).passed, true)
    local r = challenges.run(good, TGT, {}, probe)
    eq(r.passed, true)
    eq(r.details.fields, "config=table,id=string,lookup=function")
  end
  eq(probe.config.caa_domains, { "ca.example" })
end)

case("fresh_probe_results_reach_the_check_without_a_copy", function()
  -- a function marked as returning fresh tables hands them over whole;
  -- any other function's results are copies
  local ch = load_one(
    "x-mutate",
    [[
    local r = probe.fresh()
    r.seen = true
    local c = probe.other()
    c.seen = true
    return {passed = true, completed = true}]]
  )
  local fresh_t, other_t = { records = {} }, { records = {} }
  local probe = { fresh = function() return fresh_t end, other = function() return other_t end }
  challenges.FRESH_RESULTS[probe.fresh] = true
  eq(challenges.run(ch, TGT, {}, probe).passed, true)
  eq(fresh_t.seen, true)
  eq(other_t.seen, nil)
  -- a local perspective's DNS probe is marked (the binding builds each answer)
  local perspectives = require "mpic.perspectives"
  local p = perspectives.probe_of({
    issuer = { caa_domains = { "ca.example" } },
    defaults = { dns_timeout_ms = 100, dns_tries = 1 },
    network = { allow_reserved_ips = true, http_port = 80, tls_port = 443 },
    perspectives = { { id = "p1", rir = "ARIN", resolvers = { "127.0.0.1:53" } } },
  }, "p1")
  eq(challenges.FRESH_RESULTS[p.dns], true)
  eq(challenges.FRESH_RESULTS[p.resolve], nil)
end)

case("the_probe_view_copies_data_and_leaves_out_what_cannot_be_copied", function()
  local ch = load_one(
    "x-view",
    [[
    local c = probe.config
    return {passed = probe.n == 7 and probe.bad == nil and c.list[2] == "b" and c ~= nil
      and type(probe.f) == "function" and probe.f() == "ok", completed = true}]]
  )
  local probe = { n = 7, bad = { print }, config = { list = { "a", "b" } }, f = function() return "ok" end }
  eq(challenges.run(ch, TGT, {}, probe).passed, true)
  local v = sandbox.view(probe, setmetatable({}, { __mode = "k" }), function(_, fn) return fn end, 100, 4)
  eq(v.n, 7)
  eq(v.bad, nil)
  ok(v.config ~= probe.config and v.config.list ~= probe.config.list, "data copied")
  eq(v.config, probe.config)
  eq(v.f, probe.f)
  eq(sandbox.view(42, {}, print, 1, 1), {})
end)

case("probe_results_of_any_count_come_back_copied", function()
  local ch = load_one(
    "x-results",
    [[
    local n0 = select("#", probe.none())
    local a, b, c, d, e = probe.five(nil, "x")
    e.seen = true
    local one = probe.one({k = 1}, 2, 3)
    return {passed = n0 == 0 and a == 1 and b == nil and c == "x" and d == true and e.v == 5 and one.k == 1,
            completed = true}]]
  )
  local tail = { v = 5 }
  local got
  local probe = {
    none = function() end,
    five = function(x, y) return 1, x, y, true, tail end,
    one = function(t, ...)
      got = { t, ... }
      return t
    end,
  }
  eq(challenges.run(ch, TGT, {}, probe).passed, true)
  eq(tail.seen, nil)
  eq(got, { { k = 1 }, 2, 3 })
end)
