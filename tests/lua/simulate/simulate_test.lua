-- mpic.simulate / `mpic simulate`: policies measured against adversary and
-- outage models offline, with the real select() and decide().
local T = require "mpic.testing"
local sim = require "mpic.simulate"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local DATE = "2026-12-16"

-- majority.lua is looser than the BR table (a failed primary can be
-- outvoted), so the hand-checked numbers hold only with the BR floor
-- lowered, as a lab may (floor = true keeps it)
local function tiny_config(floor)
  return T.config {
    lab = { policy_floor = floor == true },
    perspectives = {
      { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
      { id = "a", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
      { id = "b", rir = "APNIC", location = { lat = 1.35, lon = 103.82 } },
    },
    defaults = { perspective_count = 2, max_attempts = 1 },
  }
end

local function tiny(trials, extra)
  local o = {
    config = tiny_config(extra and extra.floor),
    policy = HERE .. "/majority.lua",
    model = HERE .. "/tiny_model.lua",
    trials = trials or 200,
    date = DATE,
  }
  for k, v in pairs(extra or {}) do
    if k ~= "floor" then o[k] = v end
  end
  return T.simulate(o)
end

case("wilson_interval_hand_checked", function()
  local z2 = sim.Z95 ^ 2
  local lo, hi = sim.wilson(0, 100)
  eq(lo, 0)
  ok(math.abs(hi - z2 / (100 + z2)) < 1e-12, "0 of 100: hi = z^2/(n+z^2), got " .. hi)
  lo, hi = sim.wilson(100, 100)
  ok(math.abs(lo - 100 / (100 + z2)) < 1e-12, "100 of 100: lo = n/(n+z^2), got " .. lo)
  eq(hi, 1)
  lo, hi = sim.wilson(50, 100)
  ok(math.abs(lo - 0.4038) < 1e-4 and math.abs(hi - 0.5962) < 1e-4, "50 of 100: [0.4038, 0.5962]")
end)

case("tiny_case_majority_rule_by_hand", function()
  local r = tiny(200)
  -- 3 perspectives, majority = 2: k = 0 or 1 never wins, k = 2 or 3 always
  eq(r.attack["random-0"].accepted, 0)
  eq(r.attack["random-1"].accepted, 0)
  eq(r.attack["random-2"].share, 1)
  eq(r.attack["random-3"].share, 1)
  eq(r.attack["random-3"].trials, 200)
  eq(r.attack["primary-only"].share, 0)
  eq(r.attack["random-3"].ci95[2], 1)
  eq(r.attack["random-0"].ci95[1], 0)
  -- nothing down: never refused; everything down: always; one remote down:
  -- the other two still make a majority
  eq(r.outage["none"].refused, 0)
  eq(r.outage["all"].refused, 200)
  eq(r.outage["remote-a"].refused, 0)
  eq(r.mean_contacted, 3)
end)

case("the_br_floor_holds_in_simulation_too", function()
  -- with the floor, a majority that outvotes a failed primary is refused:
  -- of the three pairs the attacker can hold, {a, b} no longer wins
  local r = tiny(300, { floor = true, date = "2026-01-10" })
  eq(r.attack["random-3"].share, 1)
  ok(
    r.attack["random-2"].share < 0.9 and r.attack["random-2"].share > 0.4,
    "random-2 accepted only with the primary: " .. r.attack["random-2"].share
  )
  -- on 2026-12-16 the BR minimum is 5 remotes: two are never enough
  r = tiny(100, { floor = true })
  eq(r.attack["random-3"].accepted, 0)
end)

case("same_seed_same_numbers_other_seed_other_draws", function()
  local function run(seed)
    return T.simulate { policy = { "policies/br.lua", "policies/strict.lua" }, trials = 300, seed = seed, date = DATE }
  end
  local a, b, c = run(7), run(7), run(8)
  eq(a.policies[1].attacks, b.policies[1].attacks)
  eq(a.policies[2].outages, b.policies[2].outages)
  eq(a.policies[1].mean_contacted, b.policies[1].mean_contacted)
  local differs = false
  for i, row in ipairs(a.policies[1].outages) do
    if row.refused ~= c.policies[1].outages[i].refused then differs = true end
  end
  for i, row in ipairs(a.policies[1].attacks) do
    if row.accepted ~= c.policies[1].attacks[i].accepted then differs = true end
  end
  ok(differs, "another seed draws other trials")
end)

case("default_model_kinds_and_paired_policies", function()
  local r = T.simulate { policy = { "policies/br.lua", "policies/strict.lua" }, trials = 500, date = DATE }
  local br, strict = r.policies[1], r.policies[2]
  for _, kind in ipairs({ "regional", "rir", "provider", "random-4", "random-5", "random-6", "random-7" }) do
    ok(br.attack[kind], "attack kind " .. kind)
    -- strict needs every remote: it never accepts more attacks than br
    ok(strict.attack[kind].accepted <= br.attack[kind].accepted, kind)
  end
  ok(br.outage.independent and br.outage.provider, "outage kinds")
  -- and refuses more legitimate validations
  ok(strict.outage.independent.refused > br.outage.independent.refused)
  -- BR quorum 4 of 5: an attacker needs the primary and 4 remotes, so 4
  -- perspectives never win; 7 of the 8 win whenever the primary is among them
  eq(br.attack["random-4"].accepted, 0)
  ok(math.abs(br.attack["random-7"].share - 7 / 8) < 0.05, br.attack["random-7"].share)
end)

case("model_errors_name_the_file_and_the_key", function()
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local function model(text)
    local path = dir .. "/m.lua"
    local f = assert(io.open(path, "w"))
    f:write(text)
    f:close()
    return path
  end
  local cfg = tiny_config()
  local function run(text)
    local r, err =
      sim.run { cfg = cfg, policies = { HERE .. "/majority.lua" }, model = model(text), trials = 10, date = DATE }
    eq(r, nil)
    return nil, err
  end
  local _, err = run([[return { name = "x", attacks = function() return { { kind = "k", sees = { "nowhere" } } } end,
    outages = function() return { { kind = "o", p = 0 } } end }]])
  contains(err, dir .. "/m.lua")
  contains(err, 'attacks[1].sees[1]: unknown perspective "nowhere"')
  _, err = run("return {")
  contains(err, "model " .. dir .. "/m.lua")
  _, err = run([[return { name = "x", attacks = function() error("boom") end, outages = function() return {} end }]])
  contains(err, "attacks: ")
  contains(err, "boom")
  _, err = run([[return { name = "x", attacks = function() return { { kind = "k", random = 9 } } end,
    outages = function() return { { kind = "o", p = 0 } } end }]])
  contains(err, "attacks[1].random: expected an integer from 0 to 3")
  _, err = run([[return { name = "x", attacks = function() return { { kind = "k", random = 1 } } end,
    outages = function() return { { kind = "o", p = 2 } } end }]])
  contains(err, "outages[1].p: expected a probability")
  _, err = run([[return { name = "x", attacks = function() while true do end end, outages = function() end }]])
  contains(err, "instruction limit")
  _, err =
    run([[return { name = "x", attacks = function() return io.open("/etc/passwd") end, outages = function() end }]])
  contains(err, "attacks: ")
  _, err = sim.run { cfg = cfg, model = dir .. "/missing.lua", trials = 10, date = DATE }
  contains(err, "cannot read")
  os.execute("rm -rf " .. dir)
end)

case("limits_trials_and_scenarios", function()
  local cfg = tiny_config()
  local _, err = sim.run {
    cfg = cfg,
    policies = { HERE .. "/majority.lua" },
    model = HERE .. "/tiny_model.lua",
    trials = sim.MAX_TRIALS + 1,
    date = DATE,
  }
  contains(err, "trials must be an integer from 1 to " .. sim.MAX_TRIALS)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(string.format(
    [[return { name = "many", attacks = function()
    local out = {} for i = 1, %d do out[i] = { kind = "k", random = 1 } end return out end,
    outages = function() return { { kind = "o", p = 0 } } end }]],
    sim.MAX_SCENARIOS + 1
  ))
  f:close()
  _, err = sim.run { cfg = cfg, policies = { HERE .. "/majority.lua" }, model = path, trials = 5, date = DATE }
  contains(err, string.format("attacks returned %d scenarios (at most %d)", sim.MAX_SCENARIOS + 1, sim.MAX_SCENARIOS))
  os.remove(path)
end)

-- The mpic binary running this test.
local self_exe = T.self_exe

local function sh(cmd)
  local out, err, code = T.shell(cmd)
  return out, code, err
end

case("cli_json_shape", function()
  local body, code, err = sh(
    self_exe()
      .. " simulate --config perspectives.yaml --policy policies/br.lua"
      .. " --policy policies/strict.lua --trials 50 --seed 3 --date "
      .. DATE
      .. " --json"
  )
  eq(code, 0, err)
  local r = require("mpic").json.decode(body)
  ok(r, "JSON on stdout")
  eq(r.trials, 50)
  eq(r.seed, "3")
  eq(r.date, DATE)
  eq(r.perspective_count, 5)
  eq(r.model.name, "default")
  eq(#r.policies, 2)
  eq(r.policies[1].name, "br")
  eq(r.policies[2].name, "strict")
  local row = r.policies[1].attacks[1]
  eq(row.kind, "regional")
  eq(row.trials, 50)
  eq(type(row.accepted), "number")
  eq(type(row.share), "number")
  eq(#row.ci95, 2)
  ok(row.ci95[1] <= row.share and row.share <= row.ci95[2])
  eq(type(r.policies[1].outages[1].refused), "number")
  eq(type(r.policies[1].mean_contacted), "number")
  -- the same run as text: one column per policy
  local text = sh(
    self_exe()
      .. " simulate --config perspectives.yaml --policy policies/br.lua"
      .. " --policy policies/strict.lua --trials 50 --seed 3 --date "
      .. DATE
  )
  contains(text, "attacker accepted")
  contains(text, "legitimate refused")
  contains(text, "mean perspectives contacted")
  ok(text:find("\n%s+br%s+strict\n"), text)
end)

case("cli_errors_and_help", function()
  local exe = self_exe()
  local body, code = sh(exe .. " simulate --help")
  eq(code, 0)
  contains(body, "usage: mpic simulate")
  contains(body, "--trials N")
  local _, c2, err = sh(exe .. " simulate --config perspectives.yaml --model " .. HERE .. "/nope.lua --trials 5")
  eq(c2, 2)
  contains(err, "mpic simulate: model " .. HERE .. "/nope.lua: cannot read")
  local _, c3, err3 = sh(exe .. " simulate --config perspectives.yaml --trials many")
  eq(c3, 2)
  contains(err3, "--trials: expected an integer")
  local _, c4, err4 = sh(exe .. " simulate --bogus")
  eq(c4, 2)
  contains(err4, "unknown option --bogus")
  local main_help = sh(exe .. " --help")
  contains(main_help, "simulate [--config FILE]")
end)

-- decide() sees each perspective's public record, as the policy and as a
-- shadow. Five remotes, five selected: fra and sto are 1187 km apart.
local FIVE = {
  { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 } },
  { id = "pdx", rir = "ARIN", location = { lat = 45.52, lon = -122.68 } },
  { id = "fra", rir = "RIPE", location = { lat = 50.11, lon = 8.68 } },
  { id = "sto", rir = "RIPE", location = { lat = 59.33, lon = 18.07 } },
  { id = "sgp", rir = "APNIC", location = { lat = 1.35, lon = 103.82 } },
  { id = "gru", rir = "LACNIC", location = { lat = -23.55, lon = -46.63 } },
}

case("decide_sees_public_records_geography_rule", function()
  local cfg = T.config { perspectives = FIVE, defaults = { perspective_count = 5, max_attempts = 1 } }
  local r = T.scenario {
    config = cfg,
    date = DATE,
    outcomes = { ["*"] = "pass" },
    policy = HERE .. "/far_apart.lua",
    shadow = { "policies/br.lua" },
  }
  eq(r.is_valid, false)
  contains(r.reason, "1187 km apart")
  eq(r.shadow[1].verdict, "valid")
  -- sto does not corroborate: the other four are far apart
  local r2 = T.scenario {
    config = cfg,
    date = DATE,
    outcomes = { ["*"] = "pass", sto = "fail" },
    policy = HERE .. "/far_apart.lua",
  }
  eq(r2.is_valid, true, r2.reason)
  -- as a shadow policy too
  local s =
    T.scenario { config = cfg, date = DATE, outcomes = { ["*"] = "pass" }, shadow = { HERE .. "/far_apart.lua" } }
  eq(s.is_valid, true)
  eq(s.shadow[1].verdict, "invalid")
  contains(s.shadow[1].reason, "km apart")
end)

case("public_records_are_read_only", function()
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1 } },
    date = DATE,
    outcomes = { ["*"] = "pass" },
    policy = HERE .. "/writer.lua",
  }
  eq(r.is_valid, false)
  contains(r.reason, "read-only")
end)

case("public_record_fields", function()
  local orch = require "mpic.orchestrator"
  local cfg = T.config {
    perspectives = {
      { id = "primary", rir = "ARIN", location = { lat = 39.04, lon = -77.49 }, provider = "acme-cloud" },
      {
        id = "fra",
        rir = "RIPE",
        location = { lat = 50.11, lon = 8.68 },
        agent = { url = "https://fra.example:8443", ca = "/dev/null", cert = "/dev/null", key = "/dev/null" },
      },
    },
  }
  local pub = orch.public_records({ cfg = cfg, list = cfg.perspectives }, {})
  eq(pub.primary.provider, "acme-cloud")
  eq(pub.primary.is_primary, true)
  eq(pub.primary.remote, false)
  eq(pub.fra.remote, true)
  eq(pub.fra.location.lat, 50.11)
  eq(pub.fra.rir, "RIPE")
  local st = orch.state_for(
    pub,
    { { id = "fra", rir = "RIPE", result = { passed = true, completed = true } } },
    { id = "primary", result = { passed = true, completed = true } },
    1,
    nil,
    DATE
  )
  eq(st.remotes[1].public.location.lon, 8.68)
  eq(st.primary.public.provider, "acme-cloud")
  T.raises(function() pub.fra.rir = "ARIN" end, "read%-only")
end)
