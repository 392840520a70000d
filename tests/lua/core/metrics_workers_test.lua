-- mpic.service.metrics shared between the workers of `serve --workers N`
-- (M.share): one scrape sums the other workers' counters, histograms and
-- the in-flight gauge; other gauges are the answering worker's own; a
-- restarted worker takes up its predecessor's counts; a garbled snapshot is
-- ignored, not fatal.
local T = require "mpic.testing"
local metrics = require "mpic.service.metrics"
local case, eq, contains = T.case, T.eq, T.contains

local tmpdir = T.tmpdir

local write = T.write_file

local value = require("metrics_text").value

local VALID = 'mpic_validations_total{check_type="dcv",method="acme-dns-01",verdict="valid"}'

local function one_validation()
  metrics.validation({
    is_valid = true,
    mpic_decision = { method = "acme-dns-01" },
    perspectives = { { perspective_code = "pdx", elapsed_ms = 20 } },
  }, 200, { check_type = "dcv" })
end

case("metrics_workers_one_scrape_sums_the_others", function()
  local dir = tmpdir()
  metrics.reset()
  -- worker 1's snapshot, as its flush writes it
  metrics.share(dir, "w1", true)
  for _ = 1, 3 do
    one_validation()
  end
  metrics.inflight(5)
  metrics.agent_health("pdx", false, 10)
  metrics.flush()
  metrics.share(nil)
  -- worker 0: two of its own
  metrics.reset()
  metrics.share(dir, "w0", true)
  one_validation()
  one_validation()
  metrics.inflight(2)
  metrics.agent_health("pdx", true, 10)
  local text = metrics.render()
  eq(value(text, VALID), 5, text)
  eq(value(text, 'mpic_perspective_check_duration_seconds_count{perspective="pdx"}'), 5)
  eq(value(text, 'mpic_perspective_check_duration_seconds_bucket{perspective="pdx",le="0.025"}'), 5)
  eq(value(text, "mpic_validations_in_flight"), 7) -- summed
  eq(value(text, 'mpic_agent_up{perspective="pdx"}'), 1) -- this worker's own view
  -- the other worker's registry is not changed by the sum
  metrics.share(nil)
  eq(value(metrics.render(), VALID), 2)
  os.execute("rm -rf '" .. dir .. "'")
end)

case("metrics_workers_restarted_worker_takes_up_its_counts", function()
  local dir = tmpdir()
  metrics.reset()
  metrics.share(dir, "w0", true)
  for _ = 1, 4 do
    one_validation()
  end
  metrics.inflight(3)
  metrics.flush()
  metrics.share(nil)
  metrics.reset() -- the worker dies; its successor starts empty
  metrics.share(dir, "w0", true)
  one_validation()
  local text = metrics.render()
  eq(value(text, VALID), 5, text)
  eq(value(text, "mpic_validations_in_flight"), nil) -- a gauge is not taken up
  metrics.share(nil)
  metrics.reset()
  os.execute("rm -rf '" .. dir .. "'")
end)

case("metrics_workers_garbled_snapshot_is_ignored", function()
  local dir = tmpdir()
  write(
    dir .. "/w1.metrics",
    '{"mpic_validations_total":{"x":{"v":"many"}},"mpic_perspective_check_duration_seconds"' .. ':{"y":{"c":3}}}'
  )
  write(dir .. "/w2.metrics", "not json")
  metrics.reset()
  metrics.share(dir, "w0", true)
  one_validation()
  local text = metrics.render()
  eq(value(text, VALID), 1, text)
  contains(text, "# TYPE mpic_worker_restarts_total counter")
  metrics.share(nil)
  metrics.reset()
  os.execute("rm -rf '" .. dir .. "'")
end)
