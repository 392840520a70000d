-- SIGTERM drains: runs last (it stops the coordinator started by
-- tests/lab/test_service.sh; the script then checks the exit status).
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
local case, eq, ok = T.case, T.eq, T.ok

local C = assert(os.getenv("MPIC_SVC_CERTS"), "run through tests/lab/test_service.sh") .. "/"
local COORD = os.getenv("MPIC_SVC_COORDINATOR")

case("sigterm_finishes_validations_in_flight_then_refuses", function()
  local body = assert(util.json_encode({
    check_type = "dcv",
    domain_or_ip_target = "slow.svc.test",
    orchestration_parameters = { perspective_count = 6 },
    dcv_check_parameters = { validation_method = "acme-http-01", token = "tok", key_authorization = "tok.thumb" },
  }))
  local opts = {
    method = "POST",
    body = body,
    ca = C .. "ca.pem",
    verify_tls = true,
    timeout_ms = 20000,
    headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = os.getenv("MPIC_SVC_TOKEN") },
  }
  local t0 = mpic.now()
  local inflight = mpic.spawn(http.request, COORD .. "/mpic", opts)
  mpic.sleep(500)
  os.execute("kill -TERM " .. assert(os.getenv("MPIC_SVC_COORDINATOR_PID")))
  local res, kind, detail = mpic.wait(inflight, 20000)
  ok(res, "the validation in flight was answered: " .. tostring(kind) .. " " .. tostring(detail))
  eq(res.status, 200)
  eq(util.json_decode(res.body).is_valid, false)
  ok(mpic.now() - t0 > 1000, "it really was in flight")
  local again, k2 = http.request(COORD .. "/healthz", { ca = C .. "ca.pem", verify_tls = true, timeout_ms = 2000 })
  eq(again, nil)
  eq(k2, "connect")
end, { timeout_ms = 30000 })
