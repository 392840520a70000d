-- mpic.metrics: the coordinator's counters, gauges and histograms, rendered
-- in the Prometheus text exposition format (version 0.0.4) for GET /metrics.
-- Everything lives in this process; nothing is persisted.
local M = {}
local pairs, ipairs, tostring, type = pairs, ipairs, tostring, type
local string_format, table_concat, table_sort = string.format, table.concat, table.sort
local error_types = require "mpic.error_types"

-- Latency buckets, in seconds.
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }

local families = {}
local order = {}

local function family(name, kind, help)
  local f = { name = name, kind = kind, help = help, series = {} }
  families[name] = f
  order[#order + 1] = name
  return f
end

local function escape(v)
  return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"'))
end

-- Label set -> canonical key (sorted names).
local function key_of(labels)
  if not labels then return "" end
  local names = {}
  for k in pairs(labels) do names[#names + 1] = k end
  table_sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = string_format('%s="%s"', k, escape(labels[k])) end
  return table_concat(parts, ",")
end

local function series(f, labels)
  local k = key_of(labels)
  local s = f.series[k]
  if not s then
    s = { key = k, value = 0 }
    if f.kind == "histogram" then
      s.counts, s.sum, s.count = {}, 0, 0
      for i = 1, #BUCKETS do s.counts[i] = 0 end
    end
    f.series[k] = s
  end
  return s
end

local validations = family("mpic_validations_total", "counter",
  "Validations answered, by verdict (valid, invalid, rejected, error), check type and method.")
local requests = family("mpic_http_requests_total", "counter", "HTTP requests answered, by path and status code.")
local check_latency = family("mpic_perspective_check_duration_seconds", "histogram",
  "Time taken by one perspective's check, by perspective.")
local check_errors = family("mpic_perspective_errors_total", "counter",
  "Perspective checks that reported an error, by perspective and error type (\"other\" outside the Open MPIC set).")
local inflight = family("mpic_validations_in_flight", "gauge", "Validations being processed now.")
local agent_up = family("mpic_agent_up", "gauge", "1 when the last health check of a remote perspective's agent succeeded.")
local agent_latency = family("mpic_agent_health_latency_seconds", "gauge", "Duration of the last agent health check.")
local persp_up = family("mpic_perspective_up", "gauge",
  "1 while a perspective can observe (its last canary probes answered), 0 when it is unhealthy.")
local persp_health = family("mpic_perspective_health_info", "gauge",
  "The health of each perspective: status (healthy, unhealthy, unknown) and the last canary error (one series each).")
local health_keys = {} -- perspective id -> the key of its one info series
local persp_probe = family("mpic_perspective_probe_duration_seconds", "gauge", "Duration of the last canary probe.")
local reloads = family("mpic_config_reloads_total", "counter", "Configuration reloads, by result (ok, refused).")
local agent_requests = family("mpic_agent_requests_total", "counter",
  "Check requests answered by agents, by whether a kept-alive connection carried them (connection=reused|new).")
local shadow_verdicts = family("mpic_shadow_verdicts_total", "counter",
  "Shadow policy verdicts (never part of the answer), by policy and verdict.")
local shadow_disagreements = family("mpic_shadow_disagreements_total", "counter",
  "Validations where a shadow policy's verdict differed from the live one, by policy.")

function M.inc(f, labels, n) local s = series(f, labels); s.value = s.value + (n or 1) end
function M.set(f, labels, v) series(f, labels).value = v end

function M.observe(f, labels, v)
  local s = series(f, labels)
  for i, b in ipairs(BUCKETS) do if v <= b then s.counts[i] = s.counts[i] + 1 end end
  s.sum = s.sum + v
  s.count = s.count + 1
end

--- A finished validation: verdict and the per-perspective outcomes; shadow
--- (optional): its shadow policies' verdicts ({policy, verdict} list, from
--- mpic.orchestrator.validate's third value), counted against the live one.
function M.validation(response, status, raw, shadow)
  local verdict
  if status == 200 then verdict = response.is_valid and "valid" or "invalid"
  elseif status == 400 then verdict = "rejected"
  else verdict = "error" end
  local ct = type(raw) == "table" and type(raw.check_type) == "string" and raw.check_type or "unknown"
  local method = "unknown"
  if status == 200 then
    method = response.mpic_decision and response.mpic_decision.method
      or (ct == "caa" and "caa") or "unknown"
  end
  if ct ~= "caa" and ct ~= "dcv" then ct = "unknown" end
  M.inc(validations, { verdict = verdict, check_type = ct, method = method })
  if status ~= 200 then return end
  local function one(p)
    if type(p) ~= "table" or not p.perspective_code then return end
    if p.elapsed_ms then M.observe(check_latency, { perspective = p.perspective_code }, p.elapsed_ms / 1000) end
    local cr = p.check_response
    if type(cr) == "table" and type(cr.errors) == "table" then
      for _, e in ipairs(cr.errors) do
        -- a closed set of labels: what a perspective reports cannot add series
        M.inc(check_errors, { perspective = p.perspective_code, error_type = error_types.label(e.error_type) })
      end
    end
  end
  for _, p in ipairs(response.perspectives or {}) do one(p) end
  if response.primary_perspective then one(response.primary_perspective) end
  M.shadow(shadow, response.is_valid)
end

--- Count one validation's shadow verdicts against the live verdict (the
--- series are per configured shadow policy path: a closed set).
function M.shadow(shadows, live_valid)
  if type(shadows) ~= "table" then return end
  local live = live_valid and "valid" or "invalid"
  for _, s in ipairs(shadows) do
    local verdict = s.verdict == "valid" and "valid" or "invalid"
    M.inc(shadow_verdicts, { policy = tostring(s.policy), verdict = verdict })
    M.inc(shadow_disagreements, { policy = tostring(s.policy) }, verdict == live and 0 or 1)
  end
end

function M.request(path, status) M.inc(requests, { path = path, status = tostring(status) }) end
function M.inflight(n) M.set(inflight, nil, n) end
function M.agent_health(id, up, ms)
  M.set(agent_up, { perspective = id }, up and 1 or 0)
  if ms then M.set(agent_latency, { perspective = id }, ms / 1000) end
end
--- The outcome of one canary probe (mpic.health): one series per
--- perspective in each family (the info series is replaced, not added).
function M.perspective_health(id, status, last_error, ms)
  M.set(persp_up, { perspective = id }, status == "unhealthy" and 0 or 1)
  if ms then M.set(persp_probe, { perspective = id }, ms / 1000) end
  local labels = { perspective = id, status = status, last_error = last_error and tostring(last_error):sub(1, 200) or "" }
  local old = health_keys[id]
  if old then persp_health.series[old] = nil end
  health_keys[id] = key_of(labels)
  M.set(persp_health, labels, 1)
end
function M.agent_request(id, reused)
  M.inc(agent_requests, { perspective = id, connection = reused and "reused" or "new" })
end
function M.reload(ok) M.inc(reloads, { result = ok and "ok" or "refused" }) end

local function num(v)
  if v == math.huge then return "+Inf" end
  if math.type(v) == "integer" then return tostring(v) end
  return string_format("%.6g", v)
end

local function with_label(key, extra)
  if key == "" then return "{" .. extra .. "}" end
  return "{" .. key .. "," .. extra .. "}"
end

--- The whole registry as Prometheus text.
function M.render()
  local out = {}
  for _, name in ipairs(order) do
    local f = families[name]
    out[#out + 1] = string_format("# HELP %s %s", name, f.help)
    out[#out + 1] = string_format("# TYPE %s %s", name, f.kind)
    local keys = {}
    for k in pairs(f.series) do keys[#keys + 1] = k end
    table_sort(keys)
    for _, k in ipairs(keys) do
      local s = f.series[k]
      if f.kind == "histogram" then
        for i, b in ipairs(BUCKETS) do
          out[#out + 1] = string_format("%s_bucket%s %d", name, with_label(k, 'le="' .. num(b) .. '"'), s.counts[i])
        end
        out[#out + 1] = string_format("%s_bucket%s %d", name, with_label(k, 'le="+Inf"'), s.count)
        out[#out + 1] = string_format("%s_sum%s %s", name, k ~= "" and "{" .. k .. "}" or "", num(s.sum))
        out[#out + 1] = string_format("%s_count%s %d", name, k ~= "" and "{" .. k .. "}" or "", s.count)
      else
        out[#out + 1] = string_format("%s%s %s", name, k ~= "" and "{" .. k .. "}" or "", num(s.value))
      end
    end
  end
  return table_concat(out, "\n") .. "\n"
end

--- Forget everything (tests).
function M.reset()
  for _, f in pairs(families) do f.series = {} end
  health_keys = {}
end

return M
