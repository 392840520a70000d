-- caa.find_relevant asks every label at once and judges the answers from the
-- target up: one round trip for a deep name, the same outcome as a climb one
-- label at a time, and no query left running once the outcome is known.
local T = require "mpic.testing"
local mpic = require "mpic"
local caa = require "mpic.caa"
local case, eq, ok = T.case, T.eq, T.ok

-- A DNS function answering from zone after delay_ms[name] (default 40 ms);
-- zone[name] is a list of records, or {fail = kind}. Counts started and
-- finished queries.
local function slow_dns(zone, delay_ms)
  local log = { started = {}, finished = {} }
  local function dns(name, rtype)
    assert(rtype == "CAA")
    log.started[#log.started + 1] = name
    mpic.sleep((delay_ms or {})[name] or 40)
    log.finished[#log.finished + 1] = name
    local z = zone[name]
    if z and z.fail then return nil, z.fail, z.fail .. " at " .. name end
    if z and #z > 0 then return { records = z, rcode = "NOERROR" } end
    return nil, "nodata", "no CAA at " .. name
  end
  return dns, log
end

local ISSUE = { { flags = 0, tag = "issue", value = "ca.example" } }

case("caa_climb_asks_every_label_at_once", function()
  local dns, log = slow_dns({ example = {} })
  local t0 = mpic.now()
  local found = assert(caa.find_relevant(dns, "a.b.c.d.example"))
  local ms = mpic.now() - t0
  eq(#found.records, 0)
  eq(#log.started, 5)
  ok(ms < 150, "five labels in about one query's time, not five (" .. ms .. " ms)")
end)

case("caa_climb_stops_at_the_closest_set_and_cancels_the_rest", function()
  local dns, log = slow_dns(
    { ["b.example"] = ISSUE, example = { fail = "servfail" } },
    { ["a.b.example"] = 10, ["b.example"] = 20, example = 500 }
  )
  local t0 = mpic.now()
  local found = assert(caa.find_relevant(dns, "a.b.example"))
  eq(found.found_at, "b.example")
  ok(mpic.now() - t0 < 300, "did not wait for the TLD's answer")
  eq(#log.finished, 2, "the TLD's query was cancelled")
  -- an error above the relevant set does not matter, whenever it arrives
  dns = slow_dns({ ["b.example"] = ISSUE, example = { fail = "servfail" } }, { example = 1 })
  eq(assert(caa.find_relevant(dns, "a.b.example")).found_at, "b.example")
end)

case("caa_climb_error_below_the_relevant_set_fails_closed", function()
  -- the parent answers first with a set; the target's own lookup fails later
  local dns = slow_dns({ ["a.example"] = { fail = "timeout" }, example = ISSUE }, { ["a.example"] = 80, example = 1 })
  local found, kind, _, at = caa.find_relevant(dns, "a.example")
  eq(found, nil)
  eq(kind, "timeout")
  eq(at, "a.example")
end)

case("caa_climb_probe_that_raises_is_a_lookup_error", function()
  local found, kind = caa.find_relevant(function(name)
    if name == "example" then error("probe bug") end
    return nil, "nodata"
  end, "a.example")
  eq(found, nil)
  eq(kind, "task_error")
end)
