-- mpic.dnssec_check: the start-up proof that the primary perspective's
-- resolver validates DNSSEC (BR 4.2.2.2, SC-085; REFERENCE §1.7). With
-- `primary_dnssec: {signed_name, bogus_name}` in the configuration, the
-- coordinator (and `mpic validate`) starts only if, through the primary's
-- own resolver, the signed name comes back authenticated (AD=1) and the bogus
-- name (a deliberately broken signature the operator keeps) fails with
-- SERVFAIL. A resolver that does not validate answers the bogus name, a
-- validating one refuses it: the pair tells them apart.
local M = {}
local ipairs, pcall, tostring = ipairs, pcall, tostring
local sfmt = string.format

local FAILED = { servfail = true, dnssec_bogus = true }

--- run(spec, probe) -> true, summary | nil, reason.
--- spec = cfg.primary_dnssec; probe = the primary's probe (probe.dns(name, type)).
function M.run(spec, probe)
  local rtype = spec.type or "A"
  local r, kind, detail, partial = probe.dns(spec.signed_name, rtype)
  -- a validated denial (NODATA, NXDOMAIN) is authenticated as well
  local answered = r or ((kind == "nodata" or kind == "nxdomain") and partial)
  if not answered then
    return nil,
      sfmt(
        "the signed name %s %s did not resolve through the primary's resolver: %s: %s",
        spec.signed_name,
        rtype,
        tostring(kind),
        tostring(detail)
      )
  end
  if answered.ad ~= true then
    return nil,
      sfmt(
        "the primary's resolver answered the signed name %s %s without AD=1: it does not "
          .. "validate DNSSEC (or does not trust the name's anchor)",
        spec.signed_name,
        rtype
      )
  end
  r, kind, detail = probe.dns(spec.bogus_name, rtype)
  if r or not FAILED[kind] then
    return nil,
      sfmt(
        "the primary's resolver %s the bogus name %s %s instead of SERVFAIL: it does not " .. "validate DNSSEC",
        r and "answered" or ("gave " .. tostring(kind) .. " (" .. tostring(detail) .. ") for"),
        spec.bogus_name,
        rtype
      )
  end
  return true,
    sfmt(
      "the primary's resolver validates DNSSEC: %s %s authenticated, %s %s refused (%s)",
      spec.signed_name,
      rtype,
      spec.bogus_name,
      rtype,
      kind
    )
end

--- check(cfg [, probe]) -> true, summary | nil, reason, or true, nil when
--- the configuration names no DNSSEC check. probe defaults to the primary's
--- probe of the current registry.
function M.check(cfg, probe)
  local spec = cfg.primary_dnssec
  if not spec then return true, nil end
  probe = probe or require("mpic.perspectives").probe(cfg.primary)
  return M.run(spec, probe)
end

M.NOT_SET = "primary_dnssec is not set: the primary's resolver is not checked for DNSSEC validation "
  .. "(BR 4.2.2.2 requires the primary to validate)"

--- How to configure the proof: the message of a refusal to start without it.
M.HOW = "add primary_dnssec: {signed_name: NAME, bogus_name: NAME [, type: A|AAAA|TXT|CAA|SOA]} to the "
  .. "configuration: signed_name in a zone you sign (it must come back with AD=1 through the primary's "
  .. "resolver), bogus_name a name whose signatures you keep broken (it must fail with SERVFAIL); "
  .. "labs on reserved addresses set network.allow_reserved_ips: true instead"

--- required(cfg): the proof is mandatory where a primary is configured and
--- reserved addresses are not allowed (production; SC-085, BR 4.2.2.2).
function M.required(cfg) return cfg.primary ~= nil and not (cfg.network and cfg.network.allow_reserved_ips == true) end

--- startup(cfg [, probe]) -> true, message | nil, reason: what `serve`,
--- `validate` and `check-config` require before they run. With
--- primary_dnssec the proof runs (probe: the primary's probe, default of the
--- current registry); without it a production configuration is refused with
--- M.HOW, a lab (or a configuration without a primary) says why no proof runs.
function M.startup(cfg, probe)
  if cfg.primary_dnssec then return M.check(cfg, probe) end
  if M.required(cfg) then
    return nil,
      "DNSSEC validation at the primary perspective is mandatory (SC-085, BR 4.2.2.2) and "
        .. "primary_dnssec is not set: "
        .. M.HOW
  end
  if not cfg.primary then
    return true, "no primary perspective: no DNSSEC proof at the primary (" .. M.NOT_SET .. ")"
  end
  return true, "lab switch network.allow_reserved_ips is on: DNSSEC proof at the primary not required; " .. M.NOT_SET
end

local function resolvers_of(cfg)
  for _, p in ipairs(cfg.perspectives or {}) do
    if p.id == cfg.primary then return p.resolvers end
  end
  return nil
end

--- audit(cfg, phase, passed, text, ms) -> true | nil, err: one audit line
--- for one proof (SC-100 evidence): event "primary_dnssec_proof", the phase
--- (start, reload, periodic), the primary, its resolvers, the names, the
--- outcome and why, chained and checkpointed like every audit line.
function M.audit(cfg, phase, passed, text, ms)
  local spec = cfg.primary_dnssec or {}
  -- through the chained writer every audit line uses (mpic.audit_log)
  return require("mpic.audit_log").append(cfg, {
    ts = os.date("!%Y-%m-%dT%H:%M:%SZ"),
    event = "primary_dnssec_proof",
    phase = phase,
    primary = cfg.primary,
    resolvers = resolvers_of(cfg),
    signed_name = spec.signed_name,
    bogus_name = spec.bogus_name,
    type = spec.type or "A",
    passed = passed == true,
    reason = tostring(text),
    elapsed_ms = ms,
  })
end

--- prove(cfg, phase [, probe, budget_ms]) -> true, message | nil, reason:
--- startup() and, when a proof ran, its outcome in the audit log. A proof
--- whose outcome cannot be written is refused (no evidence, no start).
--- budget_ms bounds the proof (a timeout fails it).
function M.prove(cfg, phase, probe, budget_ms)
  if not cfg.primary_dnssec then return M.startup(cfg, probe) end
  local mpic = require "mpic"
  local t0 = mpic.now()
  local ok, why
  if budget_ms then
    local fine, r1, r2, r3 = pcall(mpic.with_timeout, budget_ms, M.startup, cfg, probe)
    if not fine then
      ok, why = nil, tostring(r1)
    elseif r1 == nil and r3 ~= nil then -- with_timeout's own failure: kind, detail
      ok, why = nil, sfmt("the proof did not finish within %d ms: %s: %s", budget_ms, tostring(r2), tostring(r3))
    else
      ok, why = r1, r2
    end
  else
    local fine, r1, r2 = pcall(M.startup, cfg, probe)
    if fine then
      ok, why = r1, r2
    else
      ok, why = nil, tostring(r1)
    end
  end
  local written, werr = M.audit(cfg, phase, ok, why, mpic.now() - t0)
  if not written then
    return nil, sfmt("%s (and its audit line could not be written: %s)", tostring(why), tostring(werr))
  end
  return ok, why
end

--- The periodic proof of `serve` (its health probe of the primary runs it):
--- ok, why. A failure makes the primary unhealthy at once, so validations
--- get 503 until a proof passes again. Every failed proof is logged through
--- log(fmt, ...) (the service's log), and the first one to pass after a
--- failure.
local last_failed = false
function M.periodic(probe, cfg, budget_ms, log)
  local ok, why = M.prove(cfg, "periodic", probe, budget_ms)
  if ok then
    if last_failed then log("primary %s: DNSSEC proof passes again: %s", tostring(cfg.primary), tostring(why)) end
    last_failed = false
    return true, why
  end
  last_failed = true
  log(
    "primary %s: DNSSEC proof failed, new validations get 503 until one passes: %s",
    tostring(cfg.primary),
    tostring(why)
  )
  return false, "DNSSEC proof failed: " .. tostring(why)
end

return M
