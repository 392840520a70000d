-- T.scenario hides no mistakes: a misspelt outcome, an outcome for a
-- perspective the configuration does not have, or a scripted function that
-- answers nonsense fails the test itself (never just one check); a failing
-- assertion after a scenario names its verdict and reason.
local T = require "mpic.testing"
local case, eq, contains, raises = T.case, T.eq, T.contains, T.raises

local function cfg() return T.config { defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 2000 } } end

case("outcome_typo_fails_the_test", function()
  local err = raises(
    function() T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass", sgp = "fial" } } end
  )
  contains(err, 'outcome for sgp is "fial"')
  contains(err, '"pass" and "fail"')
  err = raises(
    function() T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = { pass = true, delay = 5 } } } end
  )
  contains(err, 'unknown key "delay"')
  err = raises(
    function()
      T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass", fra = { "pass", "fial" } } }
    end
  )
  contains(err, 'outcome for fra[2] is "fial"')
  err = raises(
    function() T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = { delay_ms = 5 } } } end
  )
  contains(err, "says nothing")
end)

case("unknown_perspective_id_in_outcomes_fails_the_test", function()
  local err = raises(
    function() T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass", sgpp = "fail" } } end
  )
  contains(err, 'outcomes names "sgpp", which is not a perspective')
  contains(err, "primary, pdx, fra, sto, sgp, syd, gru, jnb")
  err = raises(
    function()
      T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass" }, unhealthy = { "nowhere" } }
    end
  )
  contains(err, 'unhealthy names "nowhere"')
end)

case("a_scripted_function_answering_nonsense_fails_the_test", function()
  local err = raises(function()
    T.scenario {
      config = cfg(),
      date = "2026-12-16",
      outcomes = { ["*"] = "pass", fra = function() return "fial" end },
    }
  end)
  contains(err, "outcome for fra must be")
end)

case("a_failing_assertion_names_the_verdict_and_its_reason", function()
  local r = T.scenario { config = cfg(), date = "2026-12-16", outcomes = { ["*"] = "pass", primary = "fail" } }
  eq(r.is_valid, false)
  local err = raises(function() eq(r.is_valid, true) end)
  contains(err, "expected true, got false")
  contains(err, "verdict invalid: primary perspective primary failed")
  err = raises(function() T.ok(r.is_valid) end)
  contains(err, "primary perspective primary failed")
end)

case("correct_scripts_still_run", function()
  local r = T.scenario {
    config = cfg(),
    date = "2026-12-16",
    outcomes = {
      ["*"] = "pass",
      fra = { "fail", "pass" },
      sgp = { fail = "nope" },
      syd = { pass = true, delay_ms = 5 },
      gru = function() return "pass" end,
      jnb = { passed = true, completed = true },
    },
  }
  eq(r.status, 200)
end)
