-- Perspectives behind DNS paths with delays of 0 (primary), 20, 40, 60, 80,
-- 100 and 400 ms, the 40 ms path also losing 40% of its queries
-- (tests/lab/test_latency.sh). Six remotes, quorum 4: the verdict is certain
-- when the fourth remote (80 ms) answers, so the 400 ms perspective is
-- cancelled, and loss only costs time (c-ares retries), never the verdict.
local T = require "mpic.testing"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok

local HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local config = os.getenv("MPIC_LAB_LATENCY_CONFIG")

local function validate(hash)
  assert(config, "run through tests/lab/test_latency.sh")
  assert(mpic.load_config(config))
  require("mpic.orchestrator").reset()
  local resp, status = require("mpic.orchestrator").validate({
    check_type = "dcv",
    domain_or_ip_target = "shop.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  }, { date = "2026-12-16" })
  eq(status, 200)
  return resp
end

local function by_id(resp)
  local out = {}
  for _, p in ipairs(resp.perspectives) do
    out[p.perspective_code] = p.check_response
  end
  return out
end

case("latency_delayed_paths_still_valid", function()
  for _ = 1, 5 do
    local resp = validate(HASH)
    eq(resp.is_valid, true, T.repr(resp.mpic_decision))
  end
end)

case("latency_verdict_before_the_slowest_perspective", function()
  local resp = validate(HASH)
  eq(resp.is_valid, true)
  local gru = by_id(resp).gru
  eq(gru.check_completed, false)
  T.contains(gru.errors[1].error_message, "cancelled after outcome decided")
  ok(resp.mpic_decision.elapsed_ms < 400, "decided before the 400 ms path answered: " .. resp.mpic_decision.elapsed_ms)
end)

case("latency_wrong_value_is_invalid_whatever_the_delays", function()
  for _ = 1, 3 do
    local resp = validate(("A"):rep(43))
    eq(resp.is_valid, false)
    eq(resp.mpic_completed, true)
  end
end)
