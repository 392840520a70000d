-- mpic.orchestrator: one multi-perspective validation (the MPIC itself).
--
-- validate(request) takes an Open MPIC request table and returns
-- (response, http_status): 200 with the Open MPIC response, 400 with
-- {error="request-validation-failed", validation_issues=...}, 503 with
-- {error, unavailable_perspectives, retry_after_s} when perspectives it needs
-- are unhealthy (canary probes, mpic.service.health), 500 with {error=...}. For
-- each attempt it asks the policy for a cohort of remote
-- perspectives (seeded by SHA-256(selection_secret .. lower(target)), so a
-- retry cannot re-roll the cohort), runs the challenge check from the primary
-- and every selected remote as concurrent tasks, hands every arriving result
-- to the policy's decide(), and stops as soon as the verdict is certain
-- (cancelling the remaining checks unless the policy asks to wait for all).
-- Attempts never share corroborations. The audit line is written and
-- fsynced before the response is returned (through the group-commit writer
-- of mpic.core.audit: concurrent validations share one fdatasync); shadow
-- policies judge the same results and their verdicts go to the audit line
-- only.
local mpic = require "mpic"
local util = require "mpic.core.util"
local perspectives = require "mpic.perspectives"
local challenges = require "mpic.challenges"
local policy_mod = require "mpic.policy"
local request_mod = require "mpic.request"
local select_mod = require "mpic.select"
local quorum = require "mpic.quorum"
-- the transport to agents, installed by the layer that starts the process
local remote = require "mpic.remote"
local evidence = require "mpic.evidence"

local M = {}
local type, ipairs, pairs, tostring, string_format, os_date, os_time =
  type, ipairs, pairs, tostring, string.format, os.date, os.time

-- Per-configuration context (policy, shadow policies, challenge registry),
-- built once per loaded configuration.
local contexts = setmetatable({}, { __mode = "k" })

local function build_context(cfg)
  -- a broken challenge file is reported on stderr and skipped, or refused
  -- with strict_challenges
  local registry, rerr = challenges.load_configured(cfg)
  if not registry then return nil, rerr end
  local pol, err = policy_mod.load(cfg.policy)
  if not pol then return nil, err end
  -- a shadow policy that does not load is reported (stderr, every audit
  -- line, check-config) and skipped: shadows never change the live answer
  local shadows, shadow_errors = {}, {}
  for _, path in ipairs(cfg.shadow_policies or {}) do
    local sp, serr = policy_mod.load(path)
    if sp then
      shadows[#shadows + 1] = sp
    else
      shadow_errors[#shadow_errors + 1] = { policy = path, error = tostring(serr) }
      io.stderr:write("mpic: shadow policy skipped: ", tostring(serr), "\n")
    end
  end
  if not M.floor_enabled(cfg) then
    io.stderr:write(
      string_format(
        "mpic: %s: lab.policy_floor is false: the BR floor under policy %s is OFF; "
          .. 'a policy\'s "valid" is not checked against the BR table (lab use only)\n',
        tostring(cfg.file),
        cfg.policy
      )
    )
  end
  local signer
  if cfg.audit.signing_key then
    local serr
    signer, serr = evidence.load_private(cfg.audit.signing_key)
    if not signer then return nil, serr end
  end
  -- every policy run is kept by its hash, so that `mpic audit replay` can
  -- judge a line with the policy it was decided by
  for _, pp in ipairs({ pol, table.unpack(shadows) }) do
    local ok, perr = M.store_policy(cfg.audit.policy_store, pp)
    if not ok then return nil, perr end
  end
  return {
    cfg = cfg,
    registry = registry,
    policy = pol,
    shadows = shadows,
    shadow_errors = shadow_errors,
    persp = perspectives.snapshot(),
    signer = signer,
  }
end

--- Keep a policy's file in the content-addressed store (dir/<sha256>.lua).
function M.store_policy(dir, pol)
  if not dir or not pol.sha256 then return true end
  local dest = dir .. "/" .. pol.sha256 .. ".lua"
  local f = io.open(dest, "rb")
  if f then
    f:close()
    return true
  end
  local src, serr = io.open(pol.path, "rb")
  if not src then return nil, "policy store: " .. tostring(serr) end
  local data = src:read("a")
  src:close()
  if util.hex(util.sha256(data)) ~= pol.sha256 then
    return nil, "policy store: " .. pol.path .. " changed since it was loaded"
  end
  local made, merr = util.mkdir(dir)
  if not made then return nil, "policy store: " .. tostring(merr) end
  local tmp = dest .. ".tmp" .. util.hex(util.random_bytes(6)) -- workers may store the same policy at once
  local out, oerr = io.open(tmp, "wb")
  if not out then return nil, "policy store: " .. tostring(oerr) end
  out:write(data)
  out:close()
  local ok, rerr = os.rename(tmp, dest)
  if not ok then return nil, "policy store: " .. tostring(rerr) end
  return true
end

--- The context for the current configuration (raises when none is loaded).
function M.context()
  local cfg = perspectives.config()
  if not cfg then error("no configuration loaded (mpic.load_config(path) or --config FILE)", 2) end
  local ctx = contexts[cfg]
  if not ctx then
    local err
    ctx, err = build_context(cfg)
    if not ctx then return nil, err end
    contexts[cfg] = ctx
  end
  return ctx
end

--- Drop cached contexts (after a reload).
function M.reset() contexts = setmetatable({}, { __mode = "k" }) end

--- A fresh trace_identifier for a validation started without one from the
--- command line or Lua (mpic validate, mpic.validate in the REPL), so that
--- `mpic explain --trace` finds its audit line: a random UUID (version 4)
--- from the C random source (OpenSSL). API requests keep what they sent.
function M.new_trace_identifier()
  local b = { util.random_bytes(16):byte(1, 16) }
  b[7] = (b[7] & 0x0f) | 0x40
  b[9] = (b[9] & 0x3f) | 0x80
  return string_format("%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", table.unpack(b))
end

--- The request with a generated trace_identifier when it has none (a
--- shallow copy; the caller's table is left alone). Anything that is not a
--- table is returned as it is, for validate() to refuse.
function M.with_trace(raw)
  if type(raw) ~= "table" or raw.trace_identifier ~= nil then return raw end
  local out = {}
  for k, v in pairs(raw) do
    out[k] = v
  end
  out.trace_identifier = M.new_trace_identifier()
  return out
end

local error_result = require("mpic.error_types").failure

-- Run one check from one perspective as the slot's task. Its deadline is
-- the attempt's deadline, which run_attempt enforces itself (it cancels what
-- still runs then), so the check runs right in this task: no child task.
local function run_check(ctx, req, pid, deadline_ms) return M.check_from(ctx, req, pid, deadline_ms, true) end

--- The real check of one perspective (local probe or remote agent), bounded
--- by deadline_ms unless `bounded` says the caller already bounds the task.
function M.check_from(ctx, req, pid, deadline_ms, bounded)
  local st = ctx.persp
  local p = perspectives.get(pid, st)
  local t0 = mpic.now()
  local res
  if p.agent then
    res = remote.check(p, req, deadline_ms)
  else
    local r, kind, msg
    if bounded then
      r = challenges.run(req.challenge, req.target, req.params, perspectives.probe(pid, st))
    else
      r, kind, msg = mpic.with_timeout(
        deadline_ms,
        challenges.run,
        req.challenge,
        req.target,
        req.params,
        perspectives.probe(pid, st)
      )
    end
    if r then
      res = r
    else
      res = error_result(
        req.check_type == "caa" and "mpic_error:caa_checker:lookup" or "mpic_error:dcv_checker:lookup",
        kind == "timeout" and string_format("check did not finish within %d ms", deadline_ms) or tostring(msg)
      )
    end
  end
  local ms = mpic.now() - t0
  -- a check's outcome never moves health (it may say more about the target
  -- than about the perspective); a transport failure to an agent only asks
  -- for an early canary probe, which decides
  if res.agent_unreachable then perspectives.suspect(pid) end
  res.elapsed_ms = ms
  res.timestamp_ns = util.time_ns()
  return res
end

-- A read-only view of t (reads pass through, pairs/# see t, writes raise).
local function read_only(t)
  return setmetatable({}, {
    __index = t,
    __pairs = function() return next, t, nil end,
    __len = function() return #t end,
    __metatable = false,
    __newindex = function() error("perspective records are read-only", 2) end,
  })
end

-- The public record of every perspective of a registry state, as one policy
-- sees it in decide(): {id, rir, location = {lat, lon}, provider, remote,
-- is_primary}, read-only. Built once per (registry state, policy) and then
-- only referenced, so a state costs no copy; each policy has its own, so
-- whatever one policy does to its records (rawset) no one else sees.
local public_cache = setmetatable({}, { __mode = "k" })
function M.public_records(st, pol)
  local by_pol = public_cache[st]
  if not by_pol then
    by_pol = setmetatable({}, { __mode = "k" })
    public_cache[st] = by_pol
  end
  local recs = by_pol[pol]
  if not recs then
    recs = {}
    local primary = st.cfg and st.cfg.primary
    for _, p in ipairs(st.list) do
      recs[p.id] = read_only({
        id = p.id,
        rir = p.rir,
        location = read_only({ lat = p.location.lat, lon = p.location.lon }),
        provider = p.provider,
        remote = p.agent ~= nil,
        is_primary = p.id == primary,
      })
    end
    by_pol[pol] = recs
  end
  return recs
end

-- A fresh plain table per call, never reused: policies get it without a copy.
-- pub: M.public_records of the deciding policy (each entry's `public`).
local function state_for(pub, slots, primary_slot, n, q, date)
  local remotes = {}
  for i, s in ipairs(slots) do
    remotes[i] = {
      id = s.id,
      rir = s.rir,
      passed = s.result and s.result.passed or false,
      completed = s.result and s.result.completed or false,
      done = s.result ~= nil,
      public = pub[s.id],
    }
  end
  local primary
  if primary_slot then
    local r = primary_slot.result
    primary = {
      id = primary_slot.id,
      passed = r and r.passed or false,
      completed = r and r.completed or false,
      done = r ~= nil,
      public = pub[primary_slot.id],
    }
  end
  return { primary = primary, remotes = remotes, count = n, quorum = q, date = date }
end
M.state_for = state_for

--[[ The floor under every policy: a "valid" that the BR table does not allow
(the primary passed where there is one, the table's quorum of the remotes,
two RIRs among the corroborators of more than two, the phase-in minimum for
the date) is not a "valid", whatever the policy answered; a policy may only
be stricter. The floor judges a state of its own, built from the same
results (the policy's copy is the policy's to change). While the BR rules
are still undecided the answer is "undecided" (the validation waits for more
results, then the deadline decides). cfg.lab.policy_floor = false (a lab
setting, logged when the configuration is first used) lowers it.
Returns verdict, reason, info. ]]
function M.floor_enabled(cfg)
  return not (type(cfg) == "table" and type(cfg.lab) == "table" and cfg.lab.policy_floor == false)
end

function M.floor(cfg, slots, primary_slot, date, verdict, reason, info)
  if verdict ~= "valid" or not M.floor_enabled(cfg) then return verdict, reason, info end
  local fv, fwhy, finfo = quorum.evaluate(
    state_for({}, slots, primary_slot, #slots, nil, date),
    { required = function(n) return quorum.required(n) end }
  )
  if fv == "valid" then return verdict, reason, info end
  local out = {}
  for k, v in pairs(info or {}) do
    out[k] = v
  end
  out.rule, out.floor_rule = "policy-floor", finfo and finfo.rule
  if fv == "undecided" then
    return "undecided",
      "policy floor: the policy answered valid before the BR rules allow it (" .. tostring(fwhy) .. ")",
      out
  end
  return "invalid", "policy floor: the policy answered valid, the BR rules refuse: " .. tostring(fwhy), out
end

-- The rule of an attempt decided after its deadline: "deadline" when the
-- verdict was still undecided, or when unfinished perspectives counted as
-- failures made the quorum or RIR rule refuse (info.cause keeps that rule).
local function deadline_rule(info, undecided)
  local out = {}
  for k, v in pairs(info or {}) do
    out[k] = v
  end
  if undecided or out.rule == "quorum" or out.rule == "rir-diversity" then
    out.cause, out.rule = out.rule, "deadline"
  end
  return out
end

--[[ One attempt: run the primary and the cohort, decide as results arrive.
Returns {slots, primary_slot, verdict, reason, info}. ]]
local function run_attempt(ctx, req, ids, date, deadline_at, runner)
  local cfg = ctx.cfg
  local per_check = cfg.defaults.timeout_ms
  local slots = {}
  for i, id in ipairs(ids) do
    local p = perspectives.get(id, ctx.persp)
    slots[i] = { id = id, rir = p.rir }
  end
  local primary_slot = cfg.primary and { id = cfg.primary, rir = perspectives.get(cfg.primary, ctx.persp).rir } or nil
  local pol = ctx.policy
  local running = {}
  local function start(slot)
    local remaining = deadline_at - mpic.now()
    if remaining < 1 then remaining = 1 end
    slot.started = mpic.now()
    slot.task = mpic.spawn(runner, ctx, req, slot.id, remaining < per_check and remaining or per_check)
    running[#running + 1] = slot
  end

  local function decide()
    local v, why, inf =
      pol:decide_owned(state_for(M.public_records(ctx.persp, pol), slots, primary_slot, #slots, req.quorum_count, date))
    return M.floor(cfg, slots, primary_slot, date, v, why, inf)
  end

  if primary_slot then start(primary_slot) end
  local remotes_started = false
  local function start_remotes()
    remotes_started = true
    for _, s in ipairs(slots) do
      start(s)
    end
  end
  if not (primary_slot and pol.primary_first) then start_remotes() end

  local verdict, reason, info = "undecided", "no result yet", {}
  local deadline_hit = false
  while #running > 0 do
    local tasks = {}
    for i, s in ipairs(running) do
      tasks[i] = s.task
    end
    local remaining = deadline_at - mpic.now()
    local done = mpic.wait_first(tasks, 1, remaining > 0 and remaining or 0)
    if #done == 0 then
      deadline_hit = true
      break
    end -- overall deadline
    local still = {}
    for _, s in ipairs(running) do
      local st = s.task:status()
      if st == "done" or st == "error" or st == "cancelled" then
        local r = table.pack(s.task:result())
        s.result = r[1]
          or error_result(
            "mpic_error:coordinator:remote_check",
            "The remote check failed to complete: " .. tostring(r[3] or r[2])
          )
        if ctx.signer then M.local_statement(ctx, s) end
      else
        still[#still + 1] = s
      end
    end
    running = still
    if primary_slot and pol.primary_first and not remotes_started and primary_slot.result then
      if primary_slot.result.passed then start_remotes() end
    end
    verdict, reason, info = decide()
    if verdict ~= "undecided" and not pol.wait_for_all then break end
  end
  -- whatever still runs is cancelled and reported as such
  for _, s in ipairs(running) do
    mpic.cancel(s.task)
    s.result = error_result(
      req.check_type == "caa" and "mpic_error:caa_checker:lookup" or "mpic_error:coordinator:remote_check",
      verdict ~= "undecided" and "cancelled after outcome decided" or "validation deadline exceeded"
    )
    s.cancelled = true
    s.after_verdict = verdict ~= "undecided"
    s.result.elapsed_ms = mpic.now() - s.started
  end
  for _, s in ipairs(slots) do
    if not s.result then -- never started (primary-first gate closed)
      s.result =
        error_result("mpic_error:coordinator:remote_check", "not contacted: the primary perspective did not pass")
      s.cancelled = true
      s.after_verdict = true
    end
  end
  if verdict == "undecided" then
    verdict, reason, info = decide()
    local undecided = verdict == "undecided"
    if undecided then
      verdict, reason = "invalid", "undecided at the deadline: " .. tostring(reason)
    end
    if deadline_hit or undecided then info = deadline_rule(info, undecided) end
  end
  return { slots = slots, primary_slot = primary_slot, verdict = verdict, reason = reason, info = info or {} }
end

--[[ A local perspective's evidence: what its check saw and when
(mpic.evidence.local_observation), held in the validation's audit line
beside the entry's result and proven with the whole line by the signed
checkpoint that seals its write batch (mpic.audit_log). A remote one's
statement and signature come from the agent, verified. ]]
function M.local_statement(ctx, s)
  local r = s.result
  if r.signature or perspectives.get(s.id, ctx.persp).agent then return end
  r.timestamp_ns = r.timestamp_ns or util.time_ns()
  r.statement = evidence.local_observation(r, r.timestamp_ns)
end

local function check_response(req, r)
  local errors = r.errors
  if errors ~= nil and #errors == 0 then errors = nil end
  return {
    check_type = req.check_type,
    check_passed = r.passed == true,
    check_completed = r.completed == true,
    timestamp_ns = r.timestamp_ns or util.time_ns(),
    errors = errors or util.null,
    details = r.details or {},
  }
end

local function perspective_entries(req, att)
  local out = {}
  for i, s in ipairs(att.slots) do
    out[i] = {
      perspective_code = s.id,
      check_response = check_response(req, s.result),
      rir = s.rir,
      elapsed_ms = s.result.elapsed_ms,
    }
  end
  return out
end

-- The validated value for the audit log (SC-099).
local VALUE_KEYS = {
  "key_authorization_hash",
  "key_authorization",
  "challenge_value",
  "expected_account_uri",
  "caa_domains",
}
local function expected_value(ctx, req)
  for _, k in ipairs(VALUE_KEYS) do
    if req.params[k] ~= nil then return req.params[k] end
  end
  if req.check_type == "caa" then return ctx.cfg.issuer.caa_domains end
  return util.null
end

local function passed_count(att)
  local k = 0
  for _, s in ipairs(att.slots) do
    if s.result.passed then k = k + 1 end
  end
  return k
end

-- A DNS-based check's evidence for the audit line: the resolver that answered
-- (details.resolver, "ip:port"; cut to AUDIT_RESOLVER_MAX bytes, as an agent's
-- answer is outside input) and the AD bit; nil, nil for other checks.
M.AUDIT_RESOLVER_MAX = 1024
local function dns_evidence(d)
  if type(d) ~= "table" then return nil, nil end
  local r = type(d.resolver) == "string" and d.resolver or nil
  if r and #r > M.AUDIT_RESOLVER_MAX then r = r:sub(1, M.AUDIT_RESOLVER_MAX) .. "..." end
  if type(d.ad_flag) ~= "boolean" then return r, nil end
  return r, d.ad_flag
end

-- The line's top-level perspectives: the last attempt's entries without
-- their evidence and signatures, which the line holds once, in attempts.
local function summary_entries(list)
  local out = {}
  for i, e in ipairs(list) do
    local c = {}
    for k, v in pairs(e) do
      c[k] = v
    end
    c.evidence, c.signature = nil, nil
    out[i] = c
  end
  return out
end

local function audit(ctx, req, attempts, final, response, shadows, date)
  local att_lines = {}
  for i, att in ipairs(attempts) do
    local ps = {}
    for j, s in ipairs(att.slots) do
      local d = s.result.details
      local resolver, ad = dns_evidence(d)
      ps[j] = {
        perspective_code = s.id,
        rir = s.rir,
        check_passed = s.result.passed == true,
        check_completed = s.result.completed == true,
        errors = s.result.errors or util.null,
        reason = type(d) == "table" and type(d.reason) == "string" and d.reason or nil,
        resolver = resolver,
        ad_flag = ad,
        cancelled = s.cancelled or nil,
        after_verdict = s.after_verdict or nil,
        evidence = s.result.statement,
        signature = s.result.signature,
      }
    end
    local pr = att.primary_slot and att.primary_slot.result
    local pres, pad = dns_evidence(pr and pr.details)
    att_lines[i] = {
      attempt = i,
      perspectives = ps,
      quorum = string_format("%d/%d", passed_count(att), #att.slots),
      passed_rirs = att.info.passed_rirs,
      required = att.info.required,
      verdict = att.verdict,
      reason = att.reason,
      rule = att.info.rule,
      primary = att.primary_slot and {
        perspective_code = att.primary_slot.id,
        check_passed = pr and pr.passed == true,
        check_completed = pr and pr.completed == true,
        errors = pr and pr.errors or util.null,
        resolver = pres,
        ad_flag = pad,
        cancelled = att.primary_slot.cancelled or nil,
        after_verdict = att.primary_slot.after_verdict or nil,
        evidence = pr and pr.statement,
        signature = pr and pr.signature,
      } or nil,
    }
  end
  local last = att_lines[#att_lines]
  local line = {
    ts = os_date("!%Y-%m-%dT%H:%M:%SZ"),
    trace_identifier = req.trace_identifier or util.null,
    target = req.target_text,
    adn = req.target.value ~= req.target_text and req.target.value or nil,
    check_type = req.check_type,
    validation_method = req.method,
    br_section = challenges.br_section_for(req.challenge, req.target),
    expected_value = expected_value(ctx, req),
    attempt = #attempts,
    attempts = att_lines,
    perspectives = summary_entries(last.perspectives),
    quorum = last.quorum,
    passed_rirs = last.passed_rirs,
    policy = ctx.policy.path,
    policy_sha256 = ctx.policy.sha256,
    is_valid = response.is_valid,
    reason = final.reason,
    rule = final.info.rule,
    mpic_completed = response.mpic_completed,
    shadow = #shadows > 0 and shadows or nil,
    shadow_errors = #ctx.shadow_errors > 0 and ctx.shadow_errors or nil,
    error = response.error,
    -- what `mpic audit replay` needs to judge the line again
    date = date,
    quorum_count = req.quorum_count,
    policy_floor = not M.floor_enabled(ctx.cfg) and false or nil,
  }
  -- the chained writer shared by every audit line (mpic.audit_log): inside a
  -- task, this task waits until its line is written (and synced), and with
  -- a signing key, sealed by a signed checkpoint
  return require("mpic.audit_log").append(ctx.cfg, line, ctx.signer or nil)
end

--- The audit writer of a context (opened once; its signing key set).
function M.audit_writer(ctx) return require("mpic.audit_log").writer(ctx.cfg, ctx.signer or nil) end

local function shadow_verdicts(ctx, req, att, date)
  local out = {}
  for i, sp in ipairs(ctx.shadows) do
    local v, why, inf = sp:decide_owned(
      state_for(M.public_records(ctx.persp, sp), att.slots, att.primary_slot, #att.slots, req.quorum_count, date)
    )
    v, why, inf = M.floor(ctx.cfg, att.slots, att.primary_slot, date, v, why, inf)
    out[i] = {
      policy = sp.path,
      policy_sha256 = sp.sha256,
      verdict = v == "undecided" and "invalid" or v,
      reason = why,
      rule = type(inf) == "table" and inf.rule or nil,
    }
  end
  return out
end

--[[ The 503 body when perspectives that the validation needs are unhealthy:
those in `only` (a set of ids; every perspective when nil), or nil when
all of them are usable. message overrides the error text. ]]
function M.unavailable(ctx, only, message)
  local out = {}
  for _, p in ipairs(ctx.persp.list) do
    if only == nil or only[p.id] then
      local h = perspectives.health(p.id, ctx.persp)
      if h and not perspectives.healthy(h) then
        out[#out + 1] = { perspective_code = p.id, reason = h.last_error or util.null }
      end
    end
  end
  if #out == 0 then return nil end
  local s = perspectives.health_settings(ctx.cfg)
  return {
    error = message or string_format(
      "perspective %s cannot observe now (%s); try again later",
      out[1].perspective_code,
      tostring(out[1].reason)
    ),
    unavailable_perspectives = out,
    retry_after_s = math.max(1, math.ceil(s.interval_ms / 1000)),
  }
end

--[[ validate(request [, opts]) -> response, status.
opts.date overrides the validation date ("YYYY-MM-DD", UTC);
opts.run_check(ctx, req, perspective_id, deadline_ms) replaces the real
per-perspective check (mpic.testing scripts outcomes through it); it must
return a check result {passed, completed, errors, details}. ]]
function M.validate(raw, opts)
  opts = opts or {}
  local ctx, cerr = M.context()
  if not ctx then return { error = cerr }, 500 end
  local cfg = ctx.cfg
  local date = opts.date or os_date("!%Y-%m-%d")
  local remotes_count = 0
  for _, p in ipairs(cfg.perspectives) do
    if p.id ~= cfg.primary then remotes_count = remotes_count + 1 end
  end
  -- once per context and date: a configuration the policy can never satisfy
  -- is refused with its reason, and the minimum perspective count is known
  if ctx.checked_date ~= date then
    local ok, why = ctx.policy:check_config(perspectives.list(ctx.persp), cfg.defaults, date)
    if not ok then
      return {
        error = string_format(
          "policy %s refuses the configuration %s on %s: %s",
          ctx.policy.path,
          tostring(cfg.file),
          date,
          tostring(why)
        ),
      },
        500
    end
    ctx.min_remotes = ctx.policy.fns.min_perspectives and ctx.policy:min_perspectives(date) or quorum.min_remotes(date)
    ctx.checked_date = date
  end
  local min = ctx.min_remotes
  local req, issues = request_mod.validate(raw, {
    cfg = cfg,
    registry = ctx.registry,
    remotes = remotes_count,
    date = date,
    now = opts.now or os_time(),
    min_remotes = min,
  })
  if not req then return { error = "request-validation-failed", validation_issues = issues }, 400 end

  -- perspectives that cannot observe (canary probes, mpic.service.health) make the
  -- service unavailable, never a 500 and never a verdict
  if cfg.primary then
    local unavailable = M.unavailable(ctx, { [cfg.primary] = true })
    if unavailable then return unavailable, 503 end
  end

  local seed = select_mod.seed(cfg.selection_secret or "mpic", req.target_text)
  local started = mpic.now()
  local attempts = {}
  local final
  local first = req.cohort or 1
  for a = first, first + req.max_attempts - 1 do
    local rng = select_mod.new_rng(seed)
    local ids, why =
      ctx.policy:select_owned(perspectives.list(ctx.persp), req.target_text, req.perspective_count, a, rng)
    if not ids then
      if #attempts == 0 then
        local msg = string_format(
          "The coordinator could not construct a cohort of size %d: %s",
          req.perspective_count,
          tostring(why)
        )
        local down = M.unavailable(ctx, nil, msg)
        if down then return down, 503 end
        return { error = msg }, 500
      end
      break
    end
    local deadline_at = mpic.now() + cfg.defaults.timeout_ms
    final = run_attempt(ctx, req, ids, date, deadline_at, opts.run_check or run_check)
    attempts[#attempts + 1] = final
    if final.verdict == "valid" then break end
  end

  local n = #final.slots
  local not_completed = 0
  -- checks cancelled because the verdict was already certain do not count:
  -- the evidence that decided was complete (see docs/DECISIONS.md)
  for _, s in ipairs(final.slots) do
    if not s.result.completed and not s.after_verdict then not_completed = not_completed + 1 end
  end
  local previous = util.null
  if #attempts > 1 then
    previous = {}
    for i = 1, #attempts - 1 do
      previous[i] = perspective_entries(req, attempts[i])
    end
  end
  local response = {
    is_valid = final.verdict == "valid",
    mpic_completed = not_completed <= n - req.required,
    check_type = req.check_type,
    domain_or_ip_target = req.target_text,
    trace_identifier = req.trace_identifier or util.null,
    request_orchestration_parameters = req.echo_orchestration or util.null,
    actual_orchestration_parameters = {
      perspective_count = n,
      quorum_count = req.required,
      attempt_count = #attempts,
    },
    perspectives = perspective_entries(req, final),
    previous_attempt_results = previous,
    -- mpic extensions
    mpic_decision = {
      verdict = final.verdict,
      reason = final.reason,
      rule = final.info.rule,
      quorum = final.info.quorum,
      required = final.info.required,
      method = req.method,
      br_section = challenges.br_section_for(req.challenge, req.target),
      passed_rirs = final.info.passed_rirs,
      policy = ctx.policy.name,
      elapsed_ms = mpic.now() - started,
    },
  }
  if req.check_type == "dcv" then
    response.dcv_check_parameters = req.echo_params
  else
    response.caa_check_parameters = next(req.echo_params) and req.echo_params or util.null
  end
  if final.primary_slot then
    response.primary_perspective = {
      perspective_code = final.primary_slot.id,
      check_response = check_response(req, final.primary_slot.result),
      rir = final.primary_slot.rir,
      elapsed_ms = final.primary_slot.result.elapsed_ms,
    }
  end
  -- a response that cannot be encoded leaves as a 500 without a verdict,
  -- never as a 200, and its audit line says so; the text is handed to the
  -- caller, which sends it as it is
  local text, eerr = util.json_encode(response)
  local unencodable = eerr and { error = "response encoding failed: " .. tostring(eerr) } or nil
  local shadows = shadow_verdicts(ctx, req, final, date)
  local ok, aerr = audit(
    ctx,
    req,
    attempts,
    final,
    unencodable and { is_valid = false, mpic_completed = false, error = unencodable.error } or response,
    shadows,
    date
  )
  if not ok then
    -- no verdict leaves without its record: fail closed
    return { error = "audit log write failed: " .. tostring(aerr) }, 500
  end
  if unencodable then return unencodable, 500 end
  -- third value: what the service records beside the answer (the shadow
  -- verdicts, for the metrics) and the response's JSON text
  return response, 200, { shadow = shadows, text = text }
end

return M
