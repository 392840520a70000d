-- What a request may carry and what an agent may answer, through the real
-- service (tests/lab/test_service.sh): unknown parameters and over-long
-- strings are a 400 at the coordinator and at an agent; a lying agent
-- (served here, in this process, with the liar's certificate on
-- 127.0.30.17:15420) fails its own check and nothing more; a CAA request's
-- validation_method decides a record with validationmethods (RFC 8657).
local T = require "mpic.testing"
local mpic = require "mpic"
local http = require "mpic.core.http"
local util = require "mpic.core.util"
local server = require "mpic.core.server"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local WORK = assert(os.getenv("MPIC_SVC_WORK"), "run through tests/lab/test_service.sh")
local C = os.getenv("MPIC_SVC_CERTS") .. "/"
local COORD = os.getenv("MPIC_SVC_COORDINATOR")
local TOKEN = os.getenv("MPIC_SVC_TOKEN")
local GOOD_HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"
local PDX = "https://127.0.30.11:15411"
local LIAR_ADDR, LIAR_PORT = "127.0.30.17", 15420

local function post(url, body, opts)
  opts.allow_reserved = true -- loopback lab
  opts.method, opts.body = "POST", type(body) == "string" and body or assert(util.json_encode(body))
  opts.headers = opts.headers or { ["Content-Type"] = "application/json" }
  return http.request(url, opts)
end

local function coord(body, expect)
  -- expect: send "Expect: 100-continue", so that a body the server refuses on
  -- its headers (413) is not still being sent when the connection closes
  local res, kind, detail = post(COORD .. "/mpic", body, {
    ca = C .. "ca.pem",
    verify_tls = true,
    timeout_ms = 15000,
    headers = {
      ["Content-Type"] = "application/json",
      Authorization = "Bearer " .. TOKEN,
      Expect = expect and "100-continue" or nil,
    },
  })
  assert(res, tostring(kind) .. ": " .. tostring(detail))
  return res, util.json_decode(res.body)
end

local function mtls()
  return {
    ca = C .. "ca.pem",
    cert = C .. "coordinator.pem",
    key = C .. "coordinator.key",
    verify_tls = true,
    timeout_ms = 8000,
  }
end

local function issues_text(d)
  local out = {}
  for i, is in ipairs(d.validation_issues or {}) do
    out[i] = is.message
  end
  return table.concat(out, " | ")
end

local function caa_request(method)
  return {
    check_type = "caa",
    domain_or_ip_target = "methods.svc.test",
    orchestration_parameters = { perspective_count = 6 },
    caa_check_parameters = method and { validation_method = method } or nil,
  }
end

case("coordinator_caa_validation_method_decides_validationmethods", function()
  local res, d = coord(caa_request("acme-dns-01"))
  eq(res.status, 200, res.body)
  eq(d.is_valid, true, res.body)
  eq(d.caa_check_parameters, { validation_method = "acme-dns-01" })
  res, d = coord(caa_request("acme-http-01"))
  eq(res.status, 200)
  eq(d.is_valid, false)
  for _, p in ipairs(d.perspectives) do
    local cr = p.check_response
    if cr.check_completed then
      eq(cr.check_passed, false)
      contains(cr.details.reason, "not permitted by validationmethods")
    end
  end
  -- a request that names no method is refused by such a record
  res, d = coord(caa_request(nil))
  eq(res.status, 200)
  eq(d.is_valid, false)
end)

case("agent_caa_validation_method_reaches_its_checker", function()
  local r = assert(
    post(
      PDX .. "/caa",
      { domain_or_ip_target = "methods.svc.test", caa_check_parameters = { validation_method = "acme-dns-01" } },
      mtls()
    )
  )
  eq(r.status, 200, r.body)
  eq(util.json_decode(r.body).check_passed, true)
  r = assert(
    post(
      PDX .. "/caa",
      { domain_or_ip_target = "methods.svc.test", caa_check_parameters = { validation_method = "acme-http-01" } },
      mtls()
    )
  )
  eq(util.json_decode(r.body).check_passed, false)
end)

case("coordinator_refuses_unknown_parameters_and_long_strings", function()
  local junk = {}
  for i = 1, 20000 do
    junk[i] = "{}"
  end
  local body = '{"check_type":"dcv","domain_or_ip_target":"svc.test","dcv_check_parameters":'
    .. '{"validation_method":"acme-dns-01","key_authorization_hash":"'
    .. GOOD_HASH
    .. '","junk":['
    .. table.concat(junk, ",")
    .. "]}}"
  local res, d = coord(body)
  eq(res.status, 400, res.body)
  contains(issues_text(d), "unknown parameter junk for acme-dns-01")
  ok(#res.body < 1000, "the 400 does not echo the junk")
  local function audit_size()
    local f = assert(io.open(WORK .. "/coordinator-audit.jsonl", "rb"))
    local size = f:seek("end")
    f:close()
    return size
  end
  local before = audit_size()
  res, d = coord({
    check_type = "dcv",
    domain_or_ip_target = "svc.test",
    trace_identifier = ("x"):rep(200 * 1024),
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  })
  eq(res.status, 400)
  contains(issues_text(d), "trace_identifier is 204800 bytes long")
  ok(#res.body < 1000, "the 400 does not echo the trace identifier")
  -- a body beyond the coordinator's cap (256 KiB) is refused before it is decoded
  res = coord({
    check_type = "dcv",
    domain_or_ip_target = "svc.test",
    trace_identifier = ("x"):rep(900 * 1024),
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }, true)
  eq(res.status, 413)
  -- nothing of either reached the audit log
  local grown = audit_size() - before
  ok(grown < 16 * 1024, "audit log grew by " .. grown .. " bytes")
end)

case("agent_refuses_unknown_parameters", function()
  local r = assert(post(PDX .. "/dcv", {
    domain_or_ip_target = "svc.test",
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH, junk = {} },
  }, mtls()))
  eq(r.status, 400)
  contains(r.body, "unknown parameter junk for acme-dns-01")
end)

-- The lying agent ---------------------------------------------------------------

-- answers by the request's trace_identifier: "deep" -> details nested 62
-- levels; "types" -> a fresh made-up error type each time
local function liar_answer(req)
  local doc = util.json_decode(req.body) or {}
  local mode = doc.trace_identifier
  local head = '{"check_type":"dcv","check_passed":%s,"check_completed":true,"perspective_code":"lie",'
    .. '"rir":"AFRINIC","timestamp_ns":1,'
  if mode == "deep" then
    return string.format(head, "true") .. '"errors":null,"details":' .. ('{"a":'):rep(61) .. "1" .. ("}"):rep(61) .. "}"
  end
  local errors = {}
  for i = 1, 50 do
    errors[i] = { error_type = "mpic_error:lie:" .. math.random(1, 1 << 40) .. ":" .. i }
  end
  return string.format(head, "false") .. '"details":{},"errors":' .. util.json_encode(errors) .. "}"
end

local function with_liar(fn)
  local srv = assert(server.listen({
    address = LIAR_ADDR,
    port = LIAR_PORT,
    tls = { cert = C .. "agent-liar.pem", key = C .. "agent-liar.key" },
  }))
  local loop = mpic.spawn(function()
    while true do
      local req = srv:next()
      if not req then return end
      req:respond(200, { ["Content-Type"] = "application/json" }, liar_answer(req))
    end
  end)
  local okf, err = pcall(fn)
  srv:stop_accepting()
  mpic.wait(loop, 3000)
  srv:close()
  if not okf then error(err, 0) end
end

-- six remote perspectives: five honest agents and the liar; the lab policy
-- that waits for every perspective, so that the liar's answer is always read
local function lying_config()
  local root = package.loaded["mpic.paths"].root
  local lines = {}
  for line in io.lines(WORK .. "/faulty.yaml") do
    if line:match("^policy:") then line = "policy: " .. root .. "/tests/lua/scenarios/br_wait_all.lua" end
    lines[#lines + 1] = line
    if line == "perspectives:" then break end
  end
  local function remote(id, rir, lat, lon, url)
    lines[#lines + 1] = string.format(
      '  - {id: %s, rir: %s, location: {lat: %s, lon: %s}, agent: {url: "%s", '
        .. "ca: %sca.pem, cert: %scoordinator.pem, key: %scoordinator.key, timeout_ms: 4000}}",
      id,
      rir,
      lat,
      lon,
      url,
      C,
      C,
      C
    )
  end
  remote("pdx", "ARIN", 45.52, -122.68, "https://127.0.30.11:15411")
  remote("fra", "RIPE", 50.11, 8.68, "https://127.0.30.12:15412")
  remote("sto", "RIPE", 59.33, 18.07, "https://127.0.30.13:15413")
  remote("sgp", "APNIC", 1.35, 103.82, "https://127.0.30.14:15414")
  remote("gru", "LACNIC", -23.55, -46.63, "https://127.0.30.16:15416")
  remote("lie", "AFRINIC", -26.2, 28.04, "https://" .. LIAR_ADDR .. ":" .. LIAR_PORT)
  local path = WORK .. "/lying.yaml"
  local f = assert(io.open(path, "w"))
  f:write(table.concat(lines, "\n"), "\n")
  f:close()
  return path
end

local function dcv(trace)
  return {
    check_type = "dcv",
    domain_or_ip_target = "svc.test",
    trace_identifier = trace,
    orchestration_parameters = { perspective_count = 6 },
    dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = GOOD_HASH },
  }
end

case("a_lying_agent_fails_its_own_check_and_nothing_more", function()
  assert(mpic.load_config(lying_config()))
  require("mpic.orchestrator").reset()
  local metrics = require "mpic.service.metrics"
  metrics.reset()
  with_liar(function()
    local resp, st = mpic.validate(dcv("deep"))
    eq(st, 200, util.json_encode(resp) or "unencodable")
    eq(resp.is_valid, true, "five honest agents out of six")
    local text = require("mpic.service.serve").encode(resp)
    ok(util.json_decode(text).is_valid == true, "the 200 carries the verdict: " .. text:sub(1, 200))
    local lie
    for _, p in ipairs(resp.perspectives) do
      if p.perspective_code == "lie" then lie = p.check_response end
    end
    eq(lie.check_passed, false)
    eq(lie.check_completed, false)
    eq(lie.errors[1].error_type, "mpic_error:coordinator:remote_check")
    contains(lie.errors[1].error_message, "details nests deeper than")
    -- made-up error types: the check fails, and /metrics does not grow
    for _ = 1, 20 do
      resp, st = mpic.validate(dcv("types"))
      eq(st, 200)
      metrics.validation(resp, st, dcv("types"))
    end
    local series = 0
    for line in metrics.render():gmatch("[^\n]+") do
      if line:match("^mpic_perspective_errors_total{") then
        series = series + 1
        ok(line:find('error_type="mpic_error:coordinator:remote_check"', 1, true), line)
      end
    end
    ok(series <= 1, series .. " error series")
  end)
  metrics.reset()
end, { timeout_ms = 60000 })
