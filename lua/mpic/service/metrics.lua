-- mpic.service.metrics: the coordinator's counters, gauges and histograms, rendered
-- in the Prometheus text exposition format (version 0.0.4) for GET /metrics.
-- Everything lives in this process; nothing is persisted. With workers
-- (mpic.service.workers), M.share(dir, name) writes this registry's counters,
-- histograms and summed gauges to DIR/NAME.metrics (within FLUSH_MS of a
-- change, by rename: a reader never sees half a file), and render() adds
-- the other files' series to its own: one scrape of any worker gives the
-- service's totals. Other gauges (health, agent latency) are the answering
-- worker's own: every worker probes. A restarted worker takes up its
-- predecessor's counts, so totals do not fall (less what the predecessor
-- had not written yet: at most FLUSH_MS of counts after a kill -9).
local M = {}
local pairs, ipairs, tostring, type = pairs, ipairs, tostring, type
local string_format, table_concat, table_sort = string.format, table.concat, table.sort
local error_types = require "mpic.error_types"

-- Latency buckets, in seconds.
local BUCKETS = { 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30 }

local families = {}
local order = {}
M.families = families -- by name (tests)

-- the shared registry of workers: {dir, name, path, dirty}
local share
M.FLUSH_MS = 50

local function family(name, kind, help)
  local f = { name = name, kind = kind, help = help, series = {}, sum = kind ~= "gauge", memo = {}, memo_n = 0 }
  families[name] = f
  order[#order + 1] = name
  return f
end

local function escape(v) return (tostring(v):gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub('"', '\\"')) end

-- Label set -> canonical key (sorted names).
local function key_of(labels)
  if not labels then return "" end
  local names = {}
  for k in pairs(labels) do
    names[#names + 1] = k
  end
  table_sort(names)
  local parts = {}
  for i, k in ipairs(names) do
    parts[i] = string_format('%s="%s"', k, escape(labels[k]))
  end
  return table_concat(parts, ",")
end

-- The series of a label set is found through f.memo, a tree walked by the
-- labels' names and values in the order pairs() gives them (one call site
-- builds its labels the same way each time), so the canonical key is built
-- once per series and order, not on every update. A hit counts only while
-- the series is still registered (the health family replaces its series);
-- the tree is dropped when it holds MEMO_MAX series (varying label values).
local MEMO_MAX, LEAF = 1024, {}

-- the series of labels by its canonical key (created when new), then
-- remembered at memo node `node` (nil: not remembered)
local function series_of(f, labels, node)
  local k = key_of(labels)
  local s = f.series[k]
  if not s then
    s = { key = k, value = 0 }
    if f.kind == "histogram" then
      s.counts, s.sum, s.count = {}, 0, 0
      for i = 1, #BUCKETS do
        s.counts[i] = 0
      end
    end
    f.series[k] = s
  end
  if not node then return s end
  f.memo_n = f.memo_n + 1
  if f.memo_n > MEMO_MAX then -- starts afresh; this series is found again next time
    f.memo, f.memo_n = {}, 0
  else
    node[LEAF] = s
  end
  return s
end

local function series(f, labels)
  local node = f.memo
  if labels then
    for k, v in pairs(labels) do
      if type(v) ~= "string" then return series_of(f, labels, nil) end -- only text values are remembered
      local a = node[k]
      if not a then
        a = {}
        node[k] = a
      end
      node = a[v]
      if not node then
        node = {}
        a[v] = node
      end
    end
  end
  local s = node[LEAF]
  if s and f.series[s.key] == s then return s end
  return series_of(f, labels, node)
end

local validations = family(
  "mpic_validations_total",
  "counter",
  "Validations answered, by verdict (valid, invalid, rejected, error), check type and method."
)
local requests = family("mpic_http_requests_total", "counter", "HTTP requests answered, by path and status code.")
local check_latency = family(
  "mpic_perspective_check_duration_seconds",
  "histogram",
  "Time taken by one perspective's check, by perspective."
)
local check_errors = family(
  "mpic_perspective_errors_total",
  "counter",
  'Perspective checks that reported an error, by perspective and error type ("other" outside the Open MPIC set).'
)
local inflight = family("mpic_validations_in_flight", "gauge", "Validations being processed now.")
inflight.sum = true -- over workers
local agent_up =
  family("mpic_agent_up", "gauge", "1 when the last health check of a remote perspective's agent succeeded.")
local agent_latency = family("mpic_agent_health_latency_seconds", "gauge", "Duration of the last agent health check.")
local persp_up = family(
  "mpic_perspective_up",
  "gauge",
  "1 while a perspective can observe (its last canary probes answered), 0 when it is unhealthy."
)
local persp_health = family(
  "mpic_perspective_health_info",
  "gauge",
  "The health of each perspective: status (healthy, unhealthy, unknown) and the last canary error (one series each)."
)
local health_keys = {} -- perspective id -> the key of its one info series
local persp_probe = family("mpic_perspective_probe_duration_seconds", "gauge", "Duration of the last canary probe.")
local reloads = family("mpic_config_reloads_total", "counter", "Configuration reloads, by result (ok, refused).")
local agent_requests = family(
  "mpic_agent_requests_total",
  "counter",
  "Check requests answered by agents, by whether a kept-alive connection carried them (connection=reused|new)."
)
local shadow_verdicts = family(
  "mpic_shadow_verdicts_total",
  "counter",
  "Shadow policy verdicts (never part of the answer), by policy and verdict."
)
local shadow_disagreements = family(
  "mpic_shadow_disagreements_total",
  "counter",
  "Validations where a shadow policy's verdict differed from the live one, by policy."
)
local worker_restarts = family(
  "mpic_worker_restarts_total",
  "counter",
  "Worker processes started again after they exited or were killed, by worker (--workers)."
)

function M.inc(f, labels, n)
  local s = series(f, labels)
  s.value = s.value + (n or 1)
  if share then share.dirty = true end
end
function M.set(f, labels, v)
  series(f, labels).value = v
  if share then share.dirty = true end
end

function M.observe(f, labels, v)
  local s = series(f, labels)
  if share then share.dirty = true end
  for i, b in ipairs(BUCKETS) do
    if v <= b then s.counts[i] = s.counts[i] + 1 end
  end
  s.sum = s.sum + v
  s.count = s.count + 1
end

--- A finished validation: verdict and the per-perspective outcomes; shadow
--- (optional): its shadow policies' verdicts ({policy, verdict} list, from
--- mpic.orchestrator.validate's third value), counted against the live one.
function M.validation(response, status, raw, shadow)
  local verdict
  if status == 200 then
    verdict = response.is_valid and "valid" or "invalid"
  elseif status == 400 then
    verdict = "rejected"
  else
    verdict = "error"
  end
  local ct = type(raw) == "table" and type(raw.check_type) == "string" and raw.check_type or "unknown"
  local method = "unknown"
  if status == 200 then
    method = response.mpic_decision and response.mpic_decision.method or (ct == "caa" and "caa") or "unknown"
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
  for _, p in ipairs(response.perspectives or {}) do
    one(p)
  end
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
--- The outcome of one canary probe (mpic.service.health): one series per
--- perspective in each family (the info series is replaced, not added).
function M.perspective_health(id, status, last_error, ms)
  M.set(persp_up, { perspective = id }, status == "unhealthy" and 0 or 1)
  if ms then M.set(persp_probe, { perspective = id }, ms / 1000) end
  local labels =
    { perspective = id, status = status, last_error = last_error and tostring(last_error):sub(1, 200) or "" }
  local old = health_keys[id]
  if old then persp_health.series[old] = nil end
  health_keys[id] = key_of(labels)
  M.set(persp_health, labels, 1)
end
function M.agent_request(id, reused)
  M.inc(agent_requests, { perspective = id, connection = reused and "reused" or "new" })
end
function M.reload(ok) M.inc(reloads, { result = ok and "ok" or "refused" }) end
function M.worker_restart(k) M.inc(worker_restarts, { worker = tostring(k) }) end

-- Workers ------------------------------------------------------------------------

local function snapshot()
  local snap = {}
  for name, f in pairs(families) do
    if f.sum then
      local t = {}
      for k, s in pairs(f.series) do
        if f.kind == "histogram" then
          t[k] = { c = s.counts, s = s.sum, n = s.count }
        else
          t[k] = { v = s.value }
        end
      end
      snap[name] = t
    end
  end
  return snap
end

local function isnum(v) return type(v) == "number" end

-- Add the series of a snapshot's family (fs) to out (a series table of f).
local function add_into(out, f, fs, copy)
  if type(fs) ~= "table" then return end
  for k, o in pairs(fs) do
    if type(k) == "string" and type(o) == "table" then
      local s = out[k]
      if not s or (copy and not copy[k]) then
        local n = { key = k, value = s and s.value or 0 }
        if f.kind == "histogram" then
          n.counts, n.sum, n.count = {}, s and s.sum or 0, s and s.count or 0
          for i = 1, #BUCKETS do
            n.counts[i] = s and s.counts[i] or 0
          end
        end
        s, out[k] = n, n
        if copy then copy[k] = true end
      end
      if f.kind == "histogram" then
        if type(o.c) == "table" and isnum(o.s) and isnum(o.n) then
          for i = 1, #BUCKETS do
            s.counts[i] = s.counts[i] + (isnum(o.c[i]) and o.c[i] or 0)
          end
          s.sum, s.count = s.sum + o.s, s.count + o.n
        end
      elseif isnum(o.v) then
        s.value = s.value + o.v
      end
    end
  end
end

local function read_snapshot(path)
  local util = require "mpic.core.util"
  local fh = io.open(path, "rb")
  if not fh then return nil end
  local text = fh:read("a")
  fh:close()
  local snap = text and util.json_decode(text)
  return type(snap) == "table" and snap or nil
end

--- Write this registry's snapshot now (a worker's, or the master's).
function M.flush()
  if not share then return true end
  share.dirty = false
  local util = require "mpic.core.util"
  local text, err = util.json_encode(snapshot())
  if not text then return nil, err end
  local tmp = share.path .. ".tmp"
  local fh, oerr = io.open(tmp, "wb")
  if not fh then return nil, oerr end
  fh:write(text)
  fh:close()
  return os.rename(tmp, share.path)
end

--[[ Share this registry with the other processes of a service: its
snapshot goes to DIR/NAME.metrics, render() adds the others. A snapshot
already there (a predecessor's) is taken up first: its counters and
histograms continue here. no_task: flush only when M.flush() is called (the
master); else a task writes within FLUSH_MS of a change. share(nil) stops. ]]
function M.share(dir, name, no_task)
  if not dir then
    if share then M.flush() end
    share = nil
    return
  end
  local me = { dir = dir, name = name, path = dir .. "/" .. name .. ".metrics", dirty = true }
  local old = read_snapshot(me.path)
  if old then
    for fname, f in pairs(families) do
      if f.kind ~= "gauge" then add_into(f.series, f, old[fname]) end
    end
  end
  share = me
  M.flush()
  if no_task then return end
  local mpic = require "mpic"
  mpic.spawn(function()
    while share == me do
      mpic.sleep(M.FLUSH_MS)
      if share == me and me.dirty then M.flush() end
    end
  end)
end

-- The summed families over every process of the service (nil: this one's).
local function service_view()
  if not share then return nil end
  local util = require "mpic.core.util"
  local others = {}
  for _, fname in ipairs(util.listdir(share.dir) or {}) do
    if fname:match("%.metrics$") and share.dir .. "/" .. fname ~= share.path then
      others[#others + 1] = read_snapshot(share.dir .. "/" .. fname)
    end
  end
  if #others == 0 then return nil end
  local view = {}
  for name, f in pairs(families) do
    if f.sum then
      local out, copied = {}, {}
      for k, s in pairs(f.series) do
        out[k] = s
      end
      for _, snap in ipairs(others) do
        add_into(out, f, snap[name], copied)
      end
      view[name] = out
    end
  end
  return view
end

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
  local view = service_view()
  for _, name in ipairs(order) do
    local f = families[name]
    local all = view and view[name] or f.series
    out[#out + 1] = string_format("# HELP %s %s", name, f.help)
    out[#out + 1] = string_format("# TYPE %s %s", name, f.kind)
    local keys = {}
    for k in pairs(all) do
      keys[#keys + 1] = k
    end
    table_sort(keys)
    for _, k in ipairs(keys) do
      local s = all[k]
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
  for _, f in pairs(families) do
    f.series, f.memo, f.memo_n = {}, {}, 0
  end
  health_keys = {}
end

return M
