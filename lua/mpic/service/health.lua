-- mpic.service.health: canary probes that decide perspective health.
--
-- Health must say whether a perspective can observe, never what a target
-- did: a validation's outcome never moves it (anyone who may ask for a
-- validation could otherwise take perspectives out for everyone). Only
-- signals the CA controls count:
--   local perspective: its resolvers answer the canary name
--     (health.canary_dns: {name, type}; the CA's own zone, which must answer
--     NOERROR). Without a canary name, any DNS answer of the resolver (any
--     rcode) to a SOA query for the CA's own domain (issuer.caa_domains[1])
--     counts: that proves the resolver is reachable and answering, not that
--     it resolves, so production configurations should name a canary. With health.canary_http, a GET of that URL through the
--     perspective must also answer with a status below 400.
--   remote perspective: its agent's GET /healthz over the agent channel
--     (connect, mutual TLS, a well-formed {"status":"healthy"}); the agent
--     answers it from its own canary probes of its local perspective.
-- A validation that suggests trouble (an agent refused the connection) may
-- ask for an early probe (M.suspect); only the probe decides.
local mpic = require "mpic"
local perspectives = require "mpic.perspectives"

local M = {}
local ipairs, pairs, pcall, tostring, type = ipairs, pairs, pcall, tostring, type
local string_format = string.format

--- After a failed probe, the next one comes this soon rather than a whole
--- interval later, so `failures` consecutive failures take seconds.
M.RETRY_MS = 500
--- A suspicion (M.suspect) probes a perspective at most this often.
M.SUSPECT_MIN_MS = 1000

-- the settings live with the health state (mpic.perspectives), which the
-- domain reads to refuse with 503
local settings = perspectives.health_settings
M.settings = settings

local function bounded(ms, fn, ...)
  local ok, a, b, c, d = pcall(mpic.with_timeout, ms, fn, ...)
  if not ok then return nil, "error", tostring(a) end
  return a, b, c, d
end

--- The DNS canary of a local perspective: ok, why.
function M.dns_canary(probe, s)
  local c = s.canary_dns
  if c then
    local rtype = c.type or "A"
    local r, kind, detail = bounded(s.timeout_ms, probe.dns, c.name, rtype)
    if r then return true end
    return false, string_format("canary %s %s: %s: %s", c.name, rtype, tostring(kind), tostring(detail))
  end
  local name = s.own_domain or "invalid"
  local r, kind, detail, partial = bounded(s.timeout_ms, probe.dns, name, "SOA")
  if r or (type(partial) == "table" and partial.rcode) then return true end
  return false, string_format("resolver does not answer (%s SOA): %s: %s", name, tostring(kind), tostring(detail))
end

--- The HTTP canary of a local perspective (when configured): ok, why.
function M.http_canary(probe, s)
  local url = s.canary_http
  if not url then return true end
  local res, kind, detail = bounded(s.timeout_ms, probe.http_get, url, { timeout_ms = s.timeout_ms })
  if not res then return false, string_format("canary %s: %s: %s", url, tostring(kind), tostring(detail)) end
  if type(res.status) ~= "number" or res.status >= 400 then
    return false, string_format("canary %s answered HTTP %s", url, tostring(res.status))
  end
  return true
end

--- The DNSSEC proof at the primary (mpic.dnssec_check.periodic), set by
--- `serve`: run with every probe of the primary whose canaries pass, as
--- primary_proof(probe, cfg, budget_ms) -> ok, why. A failed proof makes the
--- primary unhealthy at once (no second chance: validations get 503).
M.primary_proof = nil

--- Probe one perspective of registry state st: ok, ms, why, hard (a failure
--- that makes it unhealthy at once).
function M.probe(p, st)
  st = st or perspectives.snapshot()
  local s = settings(st.cfg)
  local t0 = mpic.now()
  local ok, why, hard
  if p.agent then
    local client = require "mpic.service.agent_client"
    ok, why = client.healthy(p, s.timeout_ms)
  else
    local probe = perspectives.probe(p.id, st)
    ok, why = M.dns_canary(probe, s)
    if ok then
      ok, why = M.http_canary(probe, s)
    end
    if ok and M.primary_proof and p.id == st.cfg.primary and st.cfg.primary_dnssec then
      ok, why = M.primary_proof(probe, st.cfg, s.timeout_ms)
      hard = not ok
    end
  end
  return ok, mpic.now() - t0, why, hard
end

--- A validation saw a sign that perspective id may be unable to observe:
--- probe it soon (mpic.perspectives.suspect, which the orchestrator calls).
--- The probe alone decides; at most one early probe per SUSPECT_MIN_MS.
M.suspect = perspectives.suspect

-- Probe the perspectives `ids` (all when nil) of st concurrently and record
-- each outcome.
local function probe_set(st, ids, on_probe)
  local s = settings(st.cfg)
  local tasks = {}
  for _, p in ipairs(st.list) do
    if ids == nil or ids[p.id] then
      tasks[#tasks + 1] = mpic.spawn(function()
        local ok, ms, why, hard = M.probe(p, st)
        perspectives.observe(p.id, ok, ms, why, st, hard)
        if on_probe then pcall(on_probe, p, ok, ms, why, perspectives.health(p.id, st)) end
      end)
    end
  end
  if #tasks > 0 then mpic.wait_all(tasks, s.timeout_ms + 1000) end
end

--[[ One round: probe every perspective of the current configuration (those
in the set `only` when given); a perspective whose probe failed but has not
reached `failures` is probed again after RETRY_MS, until it either answers
or turns unhealthy. ]]
function M.round(on_probe, only)
  local st = perspectives.snapshot()
  if not st.cfg then return end
  local s = settings(st.cfg)
  probe_set(st, only, on_probe)
  for _ = 2, s.failures do
    local again = nil
    for _, p in ipairs(st.list) do
      local h = perspectives.health(p.id, st)
      if (only == nil or only[p.id]) and h.failures > 0 and h.status ~= "unhealthy" then
        again = again or {}
        again[p.id] = true
      end
    end
    if not again then break end
    mpic.sleep(M.RETRY_MS)
    probe_set(st, again, on_probe)
  end
end

--[[ The health loop of a long-lived process: a round every interval (the
configuration's health.interval_s unless interval_ms is given), and early
probes of suspected perspectives in between. on_probe(p, ok, ms, why, h)
sees every probe (metrics); only limits the probes to a set of ids (an
agent probes its own perspective). Runs until its task is cancelled. ]]
function M.run(interval_ms, on_probe, only)
  local SLICE = 250
  while true do
    M.round(on_probe, only)
    local st = perspectives.snapshot()
    local every = interval_ms or (st.cfg and settings(st.cfg).interval_ms) or 10000
    local next_round = mpic.now() + every
    while mpic.now() < next_round do
      local wait = next_round - mpic.now()
      mpic.sleep(wait < SLICE and wait or SLICE)
      local suspects = perspectives.take_suspects()
      if suspects then
        local cur = perspectives.snapshot()
        local due = nil
        for id in pairs(suspects) do
          local h = perspectives.health(id, cur)
          if h and (h.last_probe == nil or mpic.now() - h.last_probe >= M.SUSPECT_MIN_MS) then
            due = due or {}
            due[id] = true
          end
        end
        if due then probe_set(cur, due, on_probe) end
      end
      if perspectives.snapshot() ~= st then break end -- reloaded: probe the new set now
    end
  end
end

--[[ Whether the current configuration can validate now: "healthy" (every
perspective usable), "degraded" (some are out, enough remain for the
default perspective count and the primary), or "unavailable"; and the list
of {id, reason} that are out. With `only` (a set of ids), just those
perspectives: "healthy" or "unavailable". ]]
function M.summary(st, only)
  st = st or perspectives.snapshot()
  local cfg = st.cfg
  if not cfg then return "unavailable", {} end
  local out, usable_remotes, primary_ok = {}, 0, true
  for _, p in ipairs(st.list) do
    local h = perspectives.health(p.id, st)
    if only and not only[p.id] then -- luacheck: ignore 542
    elseif perspectives.healthy(h) then
      if p.id ~= cfg.primary then usable_remotes = usable_remotes + 1 end
    else
      out[#out + 1] = { id = p.id, reason = h.last_error }
      if p.id == cfg.primary then primary_ok = false end
    end
  end
  if #out == 0 then return "healthy", out end
  if only then return "unavailable", out end
  if not primary_ok or usable_remotes < cfg.defaults.perspective_count then return "unavailable", out end
  return "degraded", out
end

return M
