-- mpic.service.metrics finds a label set's series through a memo: the same
-- series whatever order the labels come in, a replaced series (health) is
-- not updated through a stale entry, and label values that keep changing
-- neither lose counts nor grow the memo without bound.
local T = require "mpic.testing"
local metrics = require "mpic.service.metrics"
local case, eq = T.case, T.eq

local text_of = require "metrics_text"
local value, count_lines = text_of.value, text_of.count_lines

case("metrics_series_same_counter_through_the_memo", function()
  metrics.reset()
  for _ = 1, 5 do
    metrics.agent_request("pdx", true)
  end
  metrics.agent_request("pdx", false)
  metrics.agent_request("fra", true)
  local text = metrics.render()
  eq(value(text, 'mpic_agent_requests_total{connection="reused",perspective="pdx"}'), 5, text)
  eq(value(text, 'mpic_agent_requests_total{connection="new",perspective="pdx"}'), 1, text)
  eq(value(text, 'mpic_agent_requests_total{connection="reused",perspective="fra"}'), 1, text)
end)

case("metrics_series_label_order_does_not_split_a_series", function()
  metrics.reset()
  -- the same label set built in two orders (and table sizes) lands on one series
  local a = { path = "/mpic", status = "200" }
  local b = {}
  b.status = "200"
  b.x = 1
  b.x = nil
  b.path = "/mpic"
  metrics.inc(metrics.families.mpic_http_requests_total, a)
  metrics.inc(metrics.families.mpic_http_requests_total, b)
  metrics.request("/mpic", 200)
  local text = metrics.render()
  eq(value(text, 'mpic_http_requests_total{path="/mpic",status="200"}'), 3, text)
  eq(count_lines(text, "mpic_http_requests_total{"), 1, text)
end)

case("metrics_series_replaced_health_series_is_the_one_updated", function()
  metrics.reset()
  metrics.perspective_health("pdx", "healthy", nil, 5)
  metrics.perspective_health("pdx", "unhealthy", "timeout", 5)
  metrics.perspective_health("pdx", "healthy", nil, 5) -- same labels as the first, a new series
  local text = metrics.render()
  eq(value(text, 'mpic_perspective_health_info{last_error="",perspective="pdx",status="healthy"}'), 1, text)
  eq(count_lines(text, "mpic_perspective_health_info{"), 1, text)
end)

case("metrics_series_changing_values_keep_every_count", function()
  metrics.reset()
  -- more distinct label values than the memo keeps: every count still lands
  for i = 1, 3000 do
    metrics.agent_request("p" .. (i % 1500), true)
  end
  local text = metrics.render()
  eq(count_lines(text, "mpic_agent_requests_total{"), 1500)
  eq(value(text, 'mpic_agent_requests_total{connection="reused",perspective="p7"}'), 2)
  eq(value(text, 'mpic_agent_requests_total{connection="reused",perspective="p0"}'), 2)
  local f = metrics.families.mpic_agent_requests_total
  T.ok(f.memo_n <= 1024, "memo bounded: " .. f.memo_n)
end)
