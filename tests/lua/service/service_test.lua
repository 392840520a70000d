-- The coordinator (mpic serve) and its agents (mpic agent) on loopback,
-- started by tests/lab/test_service.sh (addresses and files in MPIC_SVC_*).
local T = require "mpic.testing"
local mpic = require "mpic"
-- the lab is on loopback: each request lifts the reserved-address guard, as labs do
local http = setmetatable({}, { __index = require "mpic.core.http" })
function http.request(url, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.http").request(url, opts)
end
http.get = http.request
local util = require "mpic.core.util"
local client = require "mpic.service.agent_client"
local perspectives_mod = require "mpic.perspectives"
local case, eq, ok = T.case, T.eq, T.ok

local WORK = assert(os.getenv("MPIC_SVC_WORK"), "run through tests/lab/test_service.sh")
local C = os.getenv("MPIC_SVC_CERTS") .. "/"
local COORD = os.getenv("MPIC_SVC_COORDINATOR")
local TOKEN = os.getenv("MPIC_SVC_TOKEN")
local GOOD_HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local EVIL_HASH = "uomAjM7apOVLySMSYPYgge1Rsk2kVk_menYFSpM-K6w"
local AGENT = {
  pdx = "https://127.0.30.11:15411",
  fra = "https://127.0.30.12:15412",
  syd = "https://127.0.30.15:15415",
}

local function mtls(extra)
  local o = {
    ca = C .. "ca.pem",
    cert = C .. "coordinator.pem",
    key = C .. "coordinator.key",
    verify_tls = true,
    timeout_ms = 8000,
  }
  for k, v in pairs(extra or {}) do
    o[k] = v
  end
  return o
end

local function post(url, body, opts)
  opts = opts or {}
  opts.method, opts.body = "POST", type(body) == "string" and body or assert(util.json_encode(body))
  opts.headers = opts.headers or { ["Content-Type"] = "application/json" }
  return http.request(url, opts)
end

local function coord(body, headers)
  local h = { ["Content-Type"] = "application/json", Authorization = "Bearer " .. TOKEN }
  for k, v in pairs(headers or {}) do
    h[k] = v or nil
  end
  local res, kind, detail =
    post(COORD .. "/mpic", body, { ca = C .. "ca.pem", verify_tls = true, timeout_ms = 15000, headers = h })
  assert(res, tostring(kind) .. ": " .. tostring(detail))
  return res, util.json_decode(res.body)
end

local function dcv_request(hash, trace)
  return {
    check_type = "dcv",
    domain_or_ip_target = "svc.test",
    trace_identifier = trace or util.null,
    orchestration_parameters = { perspective_count = 6 },
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  }
end

local function is_int(v) return math.type(v) == "integer" end

-- Agents ------------------------------------------------------------------------

case("agent_healthz_with_client_certificate", function()
  local r = assert(http.request(AGENT.pdx .. "/healthz", mtls()))
  eq(r.status, 200)
  eq(util.json_decode(r.body), { status = "healthy" })
end)

case("agent_refuses_a_client_without_certificate", function()
  local r, kind = http.request(AGENT.pdx .. "/healthz", { ca = C .. "ca.pem", verify_tls = true, timeout_ms = 3000 })
  eq(r, nil)
  ok(kind == "connect" or kind == "tls", "transport failure, got " .. tostring(kind))
  -- and no check is run for a POST either
  local r2 =
    post(AGENT.pdx .. "/dcv", dcv_request(GOOD_HASH), { ca = C .. "ca.pem", verify_tls = true, timeout_ms = 3000 })
  eq(r2, nil)
end)

case("agent_refuses_a_certificate_from_another_ca", function()
  local r, kind = http.request(AGENT.pdx .. "/healthz", mtls({ cert = C .. "rogue.pem", key = C .. "rogue.key" }))
  eq(r, nil)
  ok(kind == "connect" or kind == "tls", "transport failure, got " .. tostring(kind))
end)

case("coordinator_refuses_an_agent_from_another_ca", function()
  local r, kind = http.request(AGENT.pdx .. "/healthz", mtls({ ca = C .. "rogue-ca.pem" }))
  eq(r, nil)
  eq(kind, "tls")
end)

case("agent_dcv_pass_is_a_200_check_response", function()
  local body = {
    domain_or_ip_target = "svc.test",
    trace_identifier = "t-1",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }
  local r = assert(post(AGENT.fra .. "/dcv", body, mtls()))
  eq(r.status, 200)
  local d = util.json_decode(r.body)
  eq(d.check_type, "dcv")
  eq(d.check_passed, true)
  eq(d.check_completed, true)
  ok(is_int(d.timestamp_ns) and d.timestamp_ns > 1.7e18, "timestamp_ns is epoch ns")
  eq(d.errors, util.null)
  eq(d.details.validation_method, "acme-dns-01")
  eq(d.perspective_code, "fra")
  eq(d.rir, "RIPE")
  eq(d.trace_identifier, "t-1")
end)

case("agent_dcv_mismatch_is_a_completed_non_pass", function()
  local body = {
    domain_or_ip_target = "svc.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }
  local r = assert(post(AGENT.syd .. "/dcv", body, mtls())) -- syd sees the attacker's zone
  eq(r.status, 200) -- no error: the record was read and does not match
  local d = util.json_decode(r.body)
  eq(d.check_passed, false)
  eq(d.check_completed, true)
  eq(d.perspective_code, "syd")
  eq(d.rir, "APNIC")
end)

case("agent_check_with_errors_is_a_500_with_the_same_body", function()
  local body = {
    domain_or_ip_target = "nozone.test", -- knot refuses: a lookup error
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }
  local r = assert(post(AGENT.pdx .. "/dcv", body, mtls()))
  eq(r.status, 500)
  local d = util.json_decode(r.body)
  eq(d.check_passed, false)
  eq(d.check_type, "dcv")
  eq(d.perspective_code, "pdx")
  ok(
    type(d.errors) == "table"
      and #d.errors >= 1
      and type(d.errors[1].error_type) == "string"
      and type(d.errors[1].error_message) == "string",
    "errors listed"
  )
end)

case("agent_caa_check", function()
  local r =
    assert(post(AGENT.pdx .. "/caa", { domain_or_ip_target = "svc.test", caa_check_parameters = util.null }, mtls()))
  eq(r.status, 200)
  local d = util.json_decode(r.body)
  eq(d.check_type, "caa")
  eq(d.check_passed, true)
  eq(d.details.caa_record_present, true)
  local r2 = assert(post(AGENT.pdx .. "/caa", { domain_or_ip_target = "deny.svc.test" }, mtls()))
  local d2 = util.json_decode(r2.body)
  eq(d2.check_passed, false)
  eq(d2.check_completed, true)
end)

case("agent_bad_json_and_bad_bodies_are_400", function()
  local r = assert(post(AGENT.pdx .. "/dcv", "{not json", mtls()))
  eq(r.status, 400)
  T.contains(util.json_decode(r.body).error, "not valid JSON")
  r = assert(post(AGENT.pdx .. "/dcv", "[1,2]", mtls()))
  eq(r.status, 400)
  r = assert(post(AGENT.pdx .. "/dcv", { dcv_check_parameters = { validation_method = "acme-dns-01" } }, mtls()))
  eq(r.status, 400)
  T.contains(util.json_decode(r.body).error, "domain_or_ip_target")
  r = assert(
    post(
      AGENT.pdx .. "/dcv",
      { domain_or_ip_target = "svc.test", dcv_check_parameters = { validation_method = "no-such-method" } },
      mtls()
    )
  )
  eq(r.status, 400)
  T.contains(util.json_decode(r.body).error, "unknown validation_method")
  r = assert(
    post(
      AGENT.pdx .. "/dcv",
      { domain_or_ip_target = "svc.test", dcv_check_parameters = { validation_method = "acme-dns-01" } },
      mtls()
    )
  )
  eq(r.status, 400)
  T.contains(util.json_decode(r.body).error, "key_authorization_hash")
end)

case("agent_oversized_body_is_413", function()
  local big = string.rep("x", 70000)
  -- "Expect: 100-continue": the server refuses on the headers, so the client
  -- is not still sending the body when the connection closes
  local r = assert(
    post(
      AGENT.pdx .. "/dcv",
      big,
      mtls({ headers = { ["Content-Type"] = "application/json", Expect = "100-continue" } })
    )
  )
  eq(r.status, 413)
end)

-- Agent client: identity and transport failures --------------------------------

local function remote(id, rir, url, timeout_ms)
  return {
    id = id,
    rir = rir,
    agent = {
      url = url,
      ca = C .. "ca.pem",
      cert = C .. "coordinator.pem",
      key = C .. "coordinator.key",
      timeout_ms = timeout_ms,
    },
  }
end
local function checker_req(hash)
  return {
    check_type = "dcv",
    target_text = "svc.test",
    trace_identifier = nil,
    echo_params = { validation_method = "acme-dns-01", key_authorization_hash = hash },
  }
end

case("agent_client_passes_a_good_answer", function()
  local r = client.check(remote("fra", "RIPE", AGENT.fra), checker_req(GOOD_HASH), 5000)
  eq(r.passed, true)
  eq(r.completed, true)
end)

case("agent_claiming_another_perspective_fails", function()
  -- the "liar" is the fra perspective answering where jnb is configured
  local r = client.check(remote("jnb", "AFRINIC", "https://127.0.30.17:15417"), checker_req(GOOD_HASH), 5000)
  eq(r.passed, false)
  eq(r.completed, false)
  eq(r.errors[1].error_type, "mpic_error:coordinator:remote_check")
  T.contains(r.errors[1].error_message, "comes from perspective fra, not jnb")
  -- right id, wrong RIR
  r = client.check(remote("fra", "APNIC", AGENT.fra), checker_req(GOOD_HASH), 5000)
  eq(r.passed, false)
  T.contains(r.errors[1].error_message, "RIR")
end)

-- "sha256//BASE64" of a certificate's public key (openssl, as an operator would)
local function pin_of(pem)
  local p = assert(
    io.popen(
      "openssl x509 -in '"
        .. pem
        .. "' -pubkey -noout | openssl pkey -pubin -outform der"
        .. " | openssl dgst -sha256 -binary | base64"
    )
  )
  local out = p:read("a")
  p:close()
  return "sha256//" .. out:gsub("%s", "")
end

case("agent_public_key_pin_is_enforced_even_on_a_kept_alive_connection", function()
  -- an unpinned check first leaves a kept-alive connection to the agent in the pool
  eq(client.check(remote("fra", "RIPE", AGENT.fra), checker_req(GOOD_HASH), 5000).passed, true)
  local wrong = remote("fra", "RIPE", AGENT.fra)
  wrong.agent.pinned_key = pin_of(C .. "agent-sgp.pem")
  local r = client.check(wrong, checker_req(GOOD_HASH), 5000)
  eq(r.passed, false)
  eq(r.completed, false)
  T.contains(r.errors[1].error_message, "tls")
  local right = remote("fra", "RIPE", AGENT.fra)
  right.agent.pinned_key = pin_of(C .. "agent-sgp.pem") .. ";" .. pin_of(C .. "agent-fra.pem")
  eq(client.check(right, checker_req(GOOD_HASH), 5000).passed, true, "one matching pin of several")
end)

case("agent_that_never_answers_times_out", function()
  local t0 = mpic.now()
  local r = client.check(remote("hang", "AFRINIC", "https://127.0.30.18:15418"), checker_req(GOOD_HASH), 800)
  local ms = mpic.now() - t0
  eq(r.passed, false)
  eq(r.completed, false)
  T.contains(r.errors[1].error_message, "The remote check failed to complete: timeout")
  ok(ms >= 700 and ms < 2500, "took " .. ms .. " ms")
end)

case("agent_down_is_a_transport_failure", function()
  local r = client.check(remote("fra", "RIPE", "https://127.0.30.12:15499"), checker_req(GOOD_HASH), 3000)
  eq(r.passed, false)
  T.contains(r.errors[1].error_message, "connect")
end)

-- Coordinator: the Open MPIC API ------------------------------------------------

case("coordinator_response_matches_the_open_mpic_schema", function()
  local res, d = coord(dcv_request(GOOD_HASH, "trace-42"))
  eq(res.status, 200)
  eq(d.is_valid, true)
  eq(d.mpic_completed, true)
  eq(d.check_type, "dcv")
  eq(d.domain_or_ip_target, "svc.test")
  eq(d.trace_identifier, "trace-42")
  eq(d.request_orchestration_parameters, { perspective_count = 6 })
  eq(d.actual_orchestration_parameters, { perspective_count = 6, quorum_count = 4, attempt_count = 1 })
  eq(d.dcv_check_parameters, { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH })
  eq(d.previous_attempt_results, util.null)
  eq(d.caa_check_parameters, nil)
  eq(#d.perspectives, 6)
  local seen, passed = {}, 0
  for _, p in ipairs(d.perspectives) do
    ok(type(p.perspective_code) == "string", "perspective_code")
    seen[p.perspective_code] = true
    local cr = p.check_response
    eq(cr.check_type, "dcv")
    ok(type(cr.check_passed) == "boolean" and type(cr.check_completed) == "boolean", "booleans")
    ok(is_int(cr.timestamp_ns), "timestamp_ns integer")
    ok(cr.errors == util.null or (type(cr.errors) == "table" and #cr.errors > 0), "errors null or a list")
    ok(type(cr.details) == "table", "details object")
    if cr.check_passed then passed = passed + 1 end
  end
  eq(seen, { pdx = true, fra = true, sto = true, sgp = true, syd = true, gru = true })
  -- the verdict is returned once 4 passes are in; stragglers are cancelled
  ok(passed >= 4, passed .. " passed")
end)

case("coordinator_auth_by_bearer_or_api_key", function()
  local res = coord(dcv_request(GOOD_HASH), { Authorization = false })
  eq(res.status, 401)
  res = coord(dcv_request(GOOD_HASH), { Authorization = "Bearer wrong" })
  eq(res.status, 401)
  res = coord(dcv_request(GOOD_HASH), { Authorization = false, ["X-Api-Key"] = TOKEN })
  eq(res.status, 200)
end)

case("coordinator_malformed_json_is_400", function()
  local res, d = coord('{"check_type": ')
  eq(res.status, 400)
  eq(d.error, "request-validation-failed")
  eq(d.validation_issues[1].issue_type, "invalid-json")
end)

case("coordinator_invalid_request_is_400_with_issues", function()
  local req = dcv_request(GOOD_HASH)
  req.orchestration_parameters = { perspective_count = 1 }
  local res, d = coord(req)
  eq(res.status, 400)
  eq(d.error, "request-validation-failed")
  eq(d.validation_issues[1].issue_type, "invalid-perspective-count")
  ok(type(d.validation_issues[1].message) == "string", "message")
end)

case("coordinator_oversized_body_is_413", function()
  local res = coord(string.rep(" ", 262145), { Expect = "100-continue" }) -- one byte over the default cap
  eq(res.status, 413)
end)

case("coordinator_healthz_and_metrics", function()
  local r = assert(http.request(COORD .. "/healthz", { ca = C .. "ca.pem", verify_tls = true }))
  eq(r.status, 200)
  eq(util.json_decode(r.body), { status = "healthy" })
  local req = dcv_request(GOOD_HASH)
  req.domain_or_ip_target = "nozone.test" -- every perspective reports a lookup error
  local res, d = coord(req)
  eq(res.status, 200)
  eq(d.is_valid, false)
  r = assert(
    http.request(
      COORD .. "/metrics",
      { ca = C .. "ca.pem", verify_tls = true, headers = { Authorization = "Bearer " .. TOKEN } }
    )
  )
  eq(r.status, 200)
  T.contains(r.body, 'mpic_validations_total{check_type="dcv",method="acme-dns-01",verdict="invalid"}')
  T.contains(r.body, "# TYPE mpic_validations_total counter")
  T.contains(r.body, 'mpic_validations_total{check_type="dcv",method="acme-dns-01",verdict="valid"}')
  -- (a perspective cancelled once the verdict was certain has no duration: any one will do)
  ok(
    r.body:find('mpic_perspective_check_duration_seconds_bucket{perspective="%l+",le="%+Inf"} %d+'),
    "a latency histogram per perspective"
  )
  T.contains(r.body, "mpic_perspective_errors_total{error_type=")
  T.contains(r.body, 'mpic_agent_up{perspective="pdx"} 1')
  T.contains(r.body, "mpic_validations_in_flight")
end)

-- Same decisions as local perspectives -------------------------------------------

case("serve_with_agents_decides_like_local_perspectives", function()
  assert(mpic.load_config(WORK .. "/local.yaml"))
  require("mpic.orchestrator").reset()
  local reqs = {
    dcv_request(GOOD_HASH),
    dcv_request(EVIL_HASH),
    { check_type = "caa", domain_or_ip_target = "svc.test", orchestration_parameters = { perspective_count = 6 } },
    { check_type = "caa", domain_or_ip_target = "deny.svc.test", orchestration_parameters = { perspective_count = 6 } },
  }
  local verdicts = {}
  for i, req in ipairs(reqs) do
    local _, remote_resp = coord(req)
    local local_resp, st = mpic.validate(req)
    eq(st, 200)
    eq(remote_resp.is_valid, local_resp.is_valid, "request " .. i)
    -- perspective by perspective, where both sides finished (the verdict is
    -- returned as soon as it is certain and stragglers are cancelled)
    local function cancelled(cr)
      return type(cr.errors) == "table" and tostring(cr.errors[1].error_message):find("cancelled", 1, true)
    end
    local lp, compared = {}, 0
    for _, p in ipairs(local_resp.perspectives) do
      if not cancelled(p.check_response) then lp[p.perspective_code] = p.check_response.check_passed end
    end
    for _, p in ipairs(remote_resp.perspectives) do
      if lp[p.perspective_code] ~= nil and not cancelled(p.check_response) then
        eq(p.check_response.check_passed, lp[p.perspective_code], "request " .. i .. " " .. p.perspective_code)
        compared = compared + 1
      end
    end
    ok(compared >= 2, "request " .. i .. ": compared " .. compared .. " perspectives")
    verdicts[i] = remote_resp.is_valid
  end
  -- the owner's record passes 5/6; the attacker's passes only at syd; deny.svc.test's
  -- CAA forbids everywhere except at syd, who sees the attacker's zone
  eq(verdicts, { true, false, true, false })
end, { timeout_ms = 60000 })

-- Faulty remotes inside one validation ------------------------------------------------

case("agent_killed_mid_validation_is_a_non_pass_without_hang", function()
  assert(mpic.load_config(WORK .. "/faulty.yaml"))
  require("mpic.orchestrator").reset()
  local pid = assert(os.getenv("MPIC_SVC_KILL_PID"))
  local req = {
    check_type = "dcv",
    domain_or_ip_target = "slow.svc.test",
    orchestration_parameters = { perspective_count = 6 },
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = "tok",
      key_authorization = "tok.thumb",
    },
  }
  local t0 = mpic.now()
  local task = mpic.spawn(mpic.validate, req)
  mpic.sleep(400)
  os.execute("kill -9 " .. pid)
  local resp, st = mpic.wait(task, 15000)
  local ms = mpic.now() - t0
  eq(st, 200)
  eq(resp.is_valid, false)
  ok(ms < 6000, "answered in " .. ms .. " ms")
  local by = {}
  for _, p in ipairs(resp.perspectives) do
    by[p.perspective_code] = p
  end
  local mex = by.mex.check_response
  eq(mex.check_passed, false)
  eq(mex.check_completed, false)
  eq(mex.errors[1].error_type, "mpic_error:coordinator:remote_check")
  ok(by.mex.elapsed_ms < 2000, "the killed agent's check ended at once (" .. by.mex.elapsed_ms .. " ms)")
  -- the liar and the hung agent never pass (failed, or cancelled once the outcome was certain)
  eq(by.jnb.check_response.check_passed, false)
  eq(by.jnb.check_response.errors[1].error_type, "mpic_error:coordinator:remote_check")
  eq(by.hang.check_response.check_passed, false)
end, { timeout_ms = 30000 })

case("agent_health_checks_mark_dead_and_hung_agents_unhealthy", function()
  -- runs after the kill test: mex is gone, hang never answers, the others are up
  assert(mpic.load_config(WORK .. "/faulty.yaml"))
  mpic.config.health.timeout_ms = 500
  require("mpic.service.health").round() -- the canary probes: each agent's /healthz over mutual TLS
  local health, why = {}, {}
  for _, p in ipairs(mpic.perspectives()) do
    health[p.id] = p.healthy
    why[p.id] = p.health_error
  end
  eq(health, { mex = false, hang = false, jnb = true, pdx = true, fra = true, sgp = true })
  T.contains(why.mex, "connect")
  -- the liar answers /healthz (the identity check applies to check answers)
end, { timeout_ms = 20000 })

case("agent_restarted_after_a_crash_is_healthy_and_used_again", function()
  -- runs after the kill test: start mex again (stopped by test_service.sh's cleanup)
  local cmd = assert(os.getenv("MPIC_SVC_RESTART_MEX"))
  os.execute(cmd .. " >" .. WORK .. "/agent-mex-restarted.log 2>&1 & echo $! >" .. WORK .. "/agent-mex-restarted.pid")
  local url = "https://127.0.30.19:15419"
  local up = false
  for _ = 1, 50 do
    local r = http.request(url .. "/healthz", mtls({ timeout_ms = 1000 }))
    if r and r.status == 200 then
      up = true
      break
    end
    mpic.sleep(100)
  end
  ok(up, "the restarted agent answers")
  assert(mpic.load_config(WORK .. "/faulty.yaml"))
  for _ = 1, 2 do
    perspectives_mod.observe("mex", false, 1, "down before the restart")
  end
  require("mpic.service.health").round()
  local health = {}
  for _, p in ipairs(mpic.perspectives()) do
    health[p.id] = p.healthy
  end
  eq(health.mex, true)
  local r = assert(post(url .. "/dcv", {
    domain_or_ip_target = "svc.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }, mtls()))
  eq(r.status, 200)
  local d = util.json_decode(r.body)
  eq(d.perspective_code, "mex")
  eq(d.check_passed, true)
end, { timeout_ms = 20000 })

-- SIGHUP ---------------------------------------------------------------------------

case("sighup_with_a_broken_policy_keeps_serving", function()
  local pid = assert(os.getenv("MPIC_SVC_COORDINATOR_PID"))
  local policy = WORK .. "/policy.lua"
  local f = assert(io.open(policy))
  local good = f:read("a")
  f:close()
  f = assert(io.open(policy, "w"))
  f:write("return { this is not lua")
  f:close()
  os.execute("kill -HUP " .. pid)
  mpic.sleep(300)
  local res, d = coord(dcv_request(GOOD_HASH))
  eq(res.status, 200)
  eq(d.is_valid, true)
  local m = assert(
    http.request(
      COORD .. "/metrics",
      { ca = C .. "ca.pem", verify_tls = true, headers = { Authorization = "Bearer " .. TOKEN } }
    )
  )
  T.contains(m.body, 'mpic_config_reloads_total{result="refused"} 1')
  -- a good reload is taken
  f = assert(io.open(policy, "w"))
  f:write(good)
  f:close()
  os.execute("kill -HUP " .. pid)
  mpic.sleep(300)
  m = assert(
    http.request(
      COORD .. "/metrics",
      { ca = C .. "ca.pem", verify_tls = true, headers = { Authorization = "Bearer " .. TOKEN } }
    )
  )
  T.contains(m.body, 'mpic_config_reloads_total{result="ok"} 1')
  res, d = coord(dcv_request(GOOD_HASH))
  eq(res.status, 200)
  eq(d.is_valid, true)
end, { timeout_ms = 30000 })

-- The server binding on its own (in this process) -----------------------------------

local server = require "mpic.core.server"

local function serve_in_process(port, opts, handler)
  opts.address, opts.port = "127.0.30.20", port
  local srv = assert(server.listen(opts))
  local loop = mpic.spawn(require("mpic.service.serve").run_loop, srv, handler)
  return srv, loop
end

case("server_concurrency_limit_answers_503", function()
  local srv, loop = serve_in_process(15420, { max_inflight = 1 }, function()
    mpic.sleep(400)
    return 200, {}, "slow"
  end)
  local url = "http://127.0.30.20:15420/x"
  local first = mpic.spawn(http.request, url, { timeout_ms = 3000 })
  mpic.sleep(100)
  local second = assert(http.request(url, { timeout_ms = 3000 }))
  eq(second.status, 503)
  eq((mpic.wait(first)).status, 200)
  srv:stop_accepting()
  mpic.wait(loop, 3000)
  srv:close()
end)

case("server_answer_after_the_client_left_does_not_crash", function()
  local answered = {}
  local srv, loop = serve_in_process(15421, {}, function(req)
    mpic.sleep(500)
    answered[#answered + 1] = req:dead()
    return 200, {}, "late"
  end)
  local r, kind = http.request("http://127.0.30.20:15421/x", { timeout_ms = 150 })
  eq(r, nil)
  eq(kind, "timeout")
  mpic.sleep(600)
  eq(#answered, 1) -- the handler ran to the end and its answer went nowhere
  -- the server still works
  local again = assert(http.request("http://127.0.30.20:15421/y", { timeout_ms = 3000 }))
  eq(again.status, 200)
  eq(again.body, "late")
  srv:stop_accepting()
  mpic.wait(loop, 3000)
  srv:close()
end)

case("server_handler_error_is_a_500_and_request_fields", function()
  local seen
  local srv, loop = serve_in_process(15422, {}, function(req)
    seen = req
    if req.path == "/boom" then error("handler bug") end
    return 201, { ["X-Test"] = "yes" }, req.method .. " " .. req.body
  end)
  local r = assert(http.request("http://127.0.30.20:15422/boom", { timeout_ms = 3000 }))
  eq(r.status, 500)
  r = assert(
    http.request(
      "http://127.0.30.20:15422/echo?a=1&b=2",
      { method = "POST", body = "hello", headers = { ["X-Custom"] = "v" }, timeout_ms = 3000 }
    )
  )
  eq(r.status, 201)
  eq(r.body, "POST hello")
  eq(seen.path, "/echo")
  eq(seen.query, "a=1&b=2")
  eq(seen.headers["x-custom"], "v")
  ok(seen.peer:match("^127%."), "peer address " .. tostring(seen.peer))
  eq(seen.tls, false)
  local hv
  for _, h in ipairs(r.headers) do
    if h[1] == "x-test" then hv = h[2] end
  end
  eq(hv, "yes")
  srv:stop_accepting()
  mpic.wait(loop, 3000)
  srv:close()
end)
