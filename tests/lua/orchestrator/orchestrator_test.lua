-- The orchestrator with scripted per-perspective outcomes (no network):
-- Open MPIC response schema, early decision, attempts, audit records.
local T = require "mpic.testing"
local mpic = require "mpic"
local config = require "mpic.config"
local perspectives = require "mpic.perspectives"
local orchestrator = require "mpic.orchestrator"
local case, eq, ok = T.case, T.eq, T.ok

local HASH = ("A"):rep(43)
local DATE = "2026-12-16"

local function setup(extra)
  local audit = os.tmpname()
  local yaml = [[
issuer: {caa_domains: [ca.example]}
policy: policies/br.lua
selection_secret: test-secret
defaults: {perspective_count: 5, max_attempts: 2, timeout_ms: 2000}
audit: {path: ]] .. audit .. [[}
primary: primary
perspectives:
  - {id: primary, rir: ARIN,   location: {lat: 39.04, lon: -77.49},  resolvers: ["127.0.0.1:9"]}
  - {id: pdx,     rir: ARIN,   location: {lat: 45.52, lon: -122.68}, resolvers: ["127.0.0.1:9"]}
  - {id: fra,     rir: RIPE,   location: {lat: 50.11, lon: 8.68},    resolvers: ["127.0.0.1:9"]}
  - {id: sto,     rir: RIPE,   location: {lat: 59.33, lon: 18.07},   resolvers: ["127.0.0.1:9"]}
  - {id: sgp,     rir: APNIC,  location: {lat: 1.35,  lon: 103.82},  resolvers: ["127.0.0.1:9"]}
  - {id: syd,     rir: APNIC,  location: {lat: -33.87, lon: 151.21}, resolvers: ["127.0.0.1:9"]}
  - {id: gru,     rir: LACNIC, location: {lat: -23.55, lon: -46.63}, resolvers: ["127.0.0.1:9"]}
]] .. (extra or "")
  local cfg = assert(config.parse(yaml, "test.yaml", package.loaded["mpic.paths"].root))
  perspectives.configure(cfg)
  mpic.config = cfg
  orchestrator.reset()
  return audit
end

-- outcomes: id -> "pass" | "fail" | "error" | {sleep=ms, then=...}
local function scripted(outcomes, log)
  return function(_, _, pid)
    local o = outcomes[pid] or outcomes["*"] or "pass"
    if type(o) == "table" then
      mpic.sleep(o.sleep)
      o = o["then"]
    end
    if log then log[#log + 1] = pid end
    if o == "pass" then return { passed = true, completed = true, details = {} } end
    if o == "fail" then return { passed = false, completed = true, details = { reason = "wrong value" } } end
    return {
      passed = false,
      completed = false,
      details = {},
      errors = { { error_type = "mpic_error:dcv_checker:lookup", error_message = "scripted error" } },
    }
  end
end

local function dcv(extra)
  local r = {
    check_type = "dcv",
    domain_or_ip_target = "example.com",
    trace_identifier = "t-1",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH },
  }
  for k, v in pairs(extra or {}) do
    r[k] = v
  end
  return r
end

local function read_lines(path)
  local out = {}
  for line in io.lines(path) do
    out[#out + 1] = mpic.json.decode(line)
  end
  return out
end

case("orchestrator_response_has_open_mpic_fields", function()
  setup()
  local resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 200)
  eq(resp.is_valid, true)
  eq(resp.mpic_completed, true)
  eq(resp.check_type, "dcv")
  eq(resp.domain_or_ip_target, "example.com")
  eq(resp.trace_identifier, "t-1")
  eq(resp.request_orchestration_parameters, mpic.json.null)
  eq(resp.actual_orchestration_parameters, { perspective_count = 5, quorum_count = 4, attempt_count = 1 })
  eq(resp.dcv_check_parameters.validation_method, "acme-dns-01")
  eq(resp.previous_attempt_results, mpic.json.null)
  eq(#resp.perspectives, 5)
  for _, p in ipairs(resp.perspectives) do
    ok(type(p.perspective_code) == "string")
    local cr = p.check_response
    eq(cr.check_type, "dcv")
    eq(cr.check_passed, true)
    eq(cr.check_completed, true)
    ok(math.type(cr.timestamp_ns) == "integer" and cr.timestamp_ns > 1.7e18, "timestamp_ns is epoch ns")
    eq(cr.errors, mpic.json.null)
    ok(type(cr.details) == "table")
  end
  eq(resp.primary_perspective.perspective_code, "primary")
  -- the JSON encoding keeps null fields
  local js = mpic.json.encode(resp)
  T.contains(js, '"previous_attempt_results":null')
end)

case("orchestrator_cohort_is_deterministic_per_target", function()
  setup()
  local a = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local b = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local function ids(r)
    local t = {}
    for i, p in ipairs(r.perspectives) do
      t[i] = p.perspective_code
    end
    table.sort(t)
    return t
  end
  eq(ids(a), ids(b))
end)

case("orchestrator_one_failure_of_five_is_valid_two_are_not", function()
  setup()
  local resp = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local chosen = {}
  for i, p in ipairs(resp.perspectives) do
    chosen[i] = p.perspective_code
  end
  local r1 = orchestrator.validate(
    dcv({ orchestration_parameters = { max_attempts = 1 } }),
    { date = DATE, run_check = scripted({ [chosen[1]] = "fail" }) }
  )
  eq(r1.is_valid, true)
  local r2 = orchestrator.validate(
    dcv({ orchestration_parameters = { max_attempts = 1 } }),
    { date = DATE, run_check = scripted({ [chosen[1]] = "fail", [chosen[2]] = "error" }) }
  )
  eq(r2.is_valid, false)
  eq(r2.mpic_completed, true) -- 1 not completed <= n - quorum = 1: the domain genuinely failed
  local r3 = orchestrator.validate(
    dcv({ orchestration_parameters = { max_attempts = 1 } }),
    { date = DATE, run_check = scripted({ [chosen[1]] = "error", [chosen[2]] = "error" }) }
  )
  eq(r3.is_valid, false)
  eq(r3.mpic_completed, false) -- errors, not answers, decided it
end)

case("orchestrator_primary_failure_is_not_valid", function()
  setup()
  local resp = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({ primary = "fail" }) })
  eq(resp.is_valid, false)
  eq(resp.primary_perspective.check_response.check_passed, false)
  eq(resp.actual_orchestration_parameters.attempt_count, 2)
end)

case("orchestrator_decides_early_and_cancels_the_slow_perspective", function()
  setup()
  local resp0 = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local slow = resp0.perspectives[1].perspective_code
  local t0 = mpic.now()
  local resp = orchestrator.validate(
    dcv(),
    { date = DATE, run_check = scripted({ [slow] = { sleep = 100000, ["then"] = "pass" } }) }
  )
  ok(mpic.now() - t0 < 1000, "a perspective that never answers does not delay a decided verdict")
  eq(resp.is_valid, true)
  for _, p in ipairs(resp.perspectives) do
    if p.perspective_code == slow then
      eq(p.check_response.check_completed, false)
      T.contains(p.check_response.errors[1].error_message, "cancelled after outcome decided")
    end
  end
end)

case("orchestrator_failed_attempt_goes_to_previous_results", function()
  setup()
  local n = 0
  local run = function(_, _, pid)
    if pid == "primary" then n = n + 1 end
    if n == 1 and pid ~= "primary" then return { passed = false, completed = true, details = {} } end
    return { passed = true, completed = true, details = {} }
  end
  local resp = orchestrator.validate(dcv(), { date = DATE, run_check = run })
  eq(resp.is_valid, true)
  eq(resp.actual_orchestration_parameters.attempt_count, 2)
  eq(#resp.previous_attempt_results, 1)
  eq(#resp.previous_attempt_results[1], 5)
  for _, p in ipairs(resp.previous_attempt_results[1]) do
    eq(p.check_response.check_passed, false)
  end
end)

case("orchestrator_rejects_bad_requests_with_issue_list", function()
  setup()
  local cases = {
    { dcv({ orchestration_parameters = { perspective_count = 3 } }), "invalid-perspective-count" },
    { dcv({ orchestration_parameters = { perspective_count = 5, quorum_count = 2 } }), "invalid-quorum-count" },
    { dcv({ domain_or_ip_target = "bad..name" }), "invalid-target" },
    {
      {
        check_type = "dcv",
        domain_or_ip_target = "example.com",
        dcv_check_parameters = { validation_method = "nope" },
      },
      "invalid-validation-method",
    },
    {
      {
        check_type = "dcv",
        domain_or_ip_target = "example.com",
        dcv_check_parameters = { validation_method = "ip-address", challenge_value = "1.2.3.4", dns_record_type = "A" },
      },
      "validation-method-retired",
    },
    { { check_type = "dns", domain_or_ip_target = "example.com" }, "invalid-check-type" },
    {
      {
        check_type = "dcv",
        domain_or_ip_target = "1.2.3.4",
        dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH },
      },
      "invalid-target",
    },
  }
  for _, c in ipairs(cases) do
    local resp, status = orchestrator.validate(c[1], { date = DATE, run_check = scripted({}) })
    eq(status, 400, c[2])
    eq(resp.error, "request-validation-failed")
    local found = false
    for _, i in ipairs(resp.validation_issues) do
      if i.issue_type == c[2] then found = true end
    end
    ok(found, "expected issue " .. c[2] .. " in " .. T.repr(resp.validation_issues))
  end
end)

case("orchestrator_audit_line_matches_response", function()
  local audit = setup()
  local resp = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local lines = read_lines(audit)
  eq(#lines, 1)
  local a = lines[1]
  eq(a.trace_identifier, "t-1")
  eq(a.target, "example.com")
  eq(a.check_type, "dcv")
  eq(a.validation_method, "acme-dns-01")
  eq(a.br_section, "3.2.2.4.7")
  eq(a.expected_value, HASH)
  eq(a.is_valid, resp.is_valid)
  eq(a.quorum, resp.mpic_decision.quorum)
  ok(a.policy:find("br.lua$"), "policy path")
  eq(#a.policy_sha256, 64)
  eq(#a.perspectives, #resp.perspectives)
  for i, p in ipairs(a.perspectives) do
    eq(p.perspective_code, resp.perspectives[i].perspective_code)
    eq(p.check_passed, resp.perspectives[i].check_response.check_passed)
    ok(type(p.rir) == "string")
  end
  os.remove(audit)
end)

case("orchestrator_shadow_policy_verdict_recorded_not_answered", function()
  local audit = setup("shadow_policies: [" .. package.loaded["mpic.paths"].root .. "/policies/strict.lua]\n")
  local resp0 = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  local one = resp0.perspectives[1].perspective_code
  local resp = orchestrator.validate(
    dcv({ orchestration_parameters = { max_attempts = 1 } }),
    { date = DATE, run_check = scripted({ [one] = "fail" }) }
  )
  eq(resp.is_valid, true) -- br.lua tolerates one failure
  ok(resp.shadow == nil, "shadow verdicts never reach the answer")
  local lines = read_lines(audit)
  local last = lines[#lines]
  eq(last.shadow[1].verdict, "invalid") -- strict.lua does not
  ok(last.shadow[1].policy:find("strict.lua$"))
  os.remove(audit)
end)

case("orchestrator_audit_failure_fails_closed", function()
  setup()
  mpic.config.audit.path = "/nonexistent-dir/audit.jsonl"
  local resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 500)
  T.contains(resp.error, "audit log write failed")
end)

case("orchestrator_script_crash_fails_closed", function()
  setup()
  local resp = orchestrator.validate(
    dcv({ orchestration_parameters = { max_attempts = 1 } }),
    { date = DATE, run_check = function() error("checker exploded") end }
  )
  eq(resp.is_valid, false)
  for _, p in ipairs(resp.perspectives) do
    eq(p.check_response.check_passed, false)
  end
end)

local function health_of(id)
  for _, p in ipairs(perspectives.list()) do
    if p.id == id then return p.health, p.healthy end
  end
end

case("perspective_health_moves_only_on_canary_probes", function()
  setup()
  eq(health_of("fra"), "unknown")
  perspectives.observe("fra", false, 5, "timeout")
  eq(select(2, health_of("fra")), true, "one failed probe is not enough")
  perspectives.observe("fra", false, 5, "timeout")
  eq(health_of("fra"), "unhealthy")
  eq(select(2, health_of("fra")), false)
  perspectives.observe("fra", true, 5)
  eq(health_of("fra"), "healthy", "one answered probe brings it back")
end)

case("failed_checks_never_move_health", function()
  -- every check fails here (the resolvers at 127.0.0.1:9 refuse), as a
  -- target whose DNS fails would make them: health must not notice
  setup()
  for _ = 1, 4 do
    local resp, status =
      orchestrator.validate(dcv({ orchestration_parameters = { max_attempts = 1 } }), { date = DATE })
    eq(status, 200)
    eq(resp.is_valid, false)
  end
  for _, p in ipairs(perspectives.list()) do
    eq(p.health, "unknown", p.id)
  end
  local resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 200)
  eq(resp.is_valid, true)
end)

case("perspective_health_changes_are_reported_once_with_their_reason", function()
  setup()
  local seen = {}
  perspectives.on_health_change = function(id, healthy, why) seen[#seen + 1] = { id, healthy, why } end
  local ran, err = pcall(function()
    perspectives.observe("fra", false, 5, "connect timeout")
    eq(#seen, 0, "one failure changes nothing")
    perspectives.observe("fra", false, 5, "TLS handshake failed")
    perspectives.observe("fra", false, 5, "still down")
    eq(#seen, 1, "one report when it becomes unhealthy, none while it stays so")
    eq(seen[1][1], "fra")
    eq(seen[1][2], false)
    eq(seen[1][3], "2 consecutive failed probes, the last: TLS handshake failed")
    perspectives.observe("fra", true, 5)
    eq(#seen, 2)
    eq(seen[2][2], true)
    -- a registry that is no longer current (a probe across a reload) reports nothing
    local old = perspectives.snapshot()
    setup()
    for _ = 1, 3 do
      perspectives.observe("fra", false, 5, "old", old)
    end
    eq(#seen, 2)
  end)
  perspectives.on_health_change = nil
  assert(ran, err)
end)

case("unhealthy_primary_is_503_with_the_reason", function()
  setup()
  for _ = 1, 2 do
    perspectives.observe("primary", false, 5, "canary SERVFAIL")
  end
  local resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 503)
  eq(resp.unavailable_perspectives[1].perspective_code, "primary")
  eq(resp.unavailable_perspectives[1].reason, "canary SERVFAIL")
  ok(resp.retry_after_s >= 1)
  T.contains(resp.error, "primary")
  -- a bad request is still a 400, whatever the health
  local _, st = orchestrator.validate({ check_type = "dcv" }, { date = DATE, run_check = scripted({}) })
  eq(st, 400)
end)

case("no_healthy_cohort_is_503_listing_the_unhealthy", function()
  setup()
  -- 6 remotes, 5 needed: the one outside the cohort may be out, a member may not
  local resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 200)
  local used = {}
  for _, p in ipairs(resp.perspectives) do
    used[p.perspective_code] = true
  end
  local spare, member
  for _, p in ipairs(perspectives.list()) do
    if not p.is_primary then
      if used[p.id] then
        member = member or p.id
      else
        spare = p.id
      end
    end
  end
  for _ = 1, 2 do
    perspectives.observe(spare, false, 5, "canary timeout")
  end
  resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 200, resp.error)
  eq(resp.is_valid, true)
  for _, p in ipairs(resp.perspectives) do
    ok(p.perspective_code ~= spare, "the unhealthy one is skipped")
  end
  for _ = 1, 2 do
    perspectives.observe(member, false, 5, "canary timeout")
  end
  resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 503)
  eq(#resp.unavailable_perspectives, 2)
  T.contains(resp.error, "could not construct a cohort")
  local health = require "mpic.service.health"
  eq((health.summary()), "unavailable")
  perspectives.observe(member, true, 5)
  eq((health.summary()), "degraded")
  resp, status = orchestrator.validate(dcv(), { date = DATE, run_check = scripted({}) })
  eq(status, 200)
  eq(resp.is_valid, true)
end)

case("a_suspected_perspective_is_probed_early_and_only_the_probe_decides", function()
  setup() -- resolvers at 127.0.0.1:9: every canary probe fails at once
  local health = require "mpic.service.health"
  local saved = health.SUSPECT_MIN_MS
  health.SUSPECT_MIN_MS = 0
  local probes = {}
  local t = mpic.spawn(health.run, 60000, function(p) probes[p.id] = (probes[p.id] or 0) + 1 end)
  mpic.sleep(800) -- the first round and its retry
  local before = probes.fra
  health.suspect("fra")
  mpic.sleep(500)
  mpic.cancel(t)
  health.SUSPECT_MIN_MS = saved
  eq(before, 2, "a failed probe is retried once in the round")
  eq(probes.fra, 3, "the suspicion probed fra again before the next round")
  eq(probes.pdx, 2, "and nothing else")
  eq(select(1, health_of("fra")), "unhealthy")
end)

case("dns_canary_judges_the_resolver_not_a_target", function()
  local health = require "mpic.service.health"
  local function probe(r, kind, detail, partial)
    return { dns = function() return r, kind, detail, partial end }
  end
  local s = { timeout_ms = 500 }
  -- no canary name: any answer of the resolver counts, even REFUSED
  local okv = health.dns_canary(probe(nil, "dns", "REFUSED", { rcode = "REFUSED" }), s)
  eq(okv, true)
  local bad, why = health.dns_canary(probe(nil, "timeout", "no answer"), s)
  eq(bad, false)
  T.contains(why, "resolver does not answer")
  -- a canary name must answer NOERROR
  s.canary_dns = { name = "canary.ca.example", type = "TXT" }
  eq((health.dns_canary(probe({ rcode = "NOERROR", records = {} }), s)), true)
  local sf, swhy = health.dns_canary(probe(nil, "dns", "SERVFAIL looking up TXT", { rcode = "SERVFAIL" }), s)
  eq(sf, false)
  T.contains(swhy, "canary canary.ca.example TXT")
  -- a probe that raises is a failure, not a crash
  local raised = health.dns_canary({ dns = function() error("boom") end }, s)
  eq(raised, false)
end)

case("orchestrator_validation_in_flight_survives_a_reload", function()
  setup()
  local t = mpic.spawn(
    orchestrator.validate,
    dcv(),
    { date = DATE, run_check = scripted({ ["*"] = { sleep = 50, ["then"] = "pass" } }) }
  )
  mpic.sleep(10)
  setup() -- a reload: new configuration, new registry
  local resp, status = mpic.wait(t)
  eq(status, 200)
  eq(resp.is_valid, true)
end)
