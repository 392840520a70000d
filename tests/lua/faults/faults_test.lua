-- Fault tests (tests/lab/test_faults.sh): web servers that never answer,
-- drip one byte a second, or send headers forever; names whose addresses
-- point inside (loopback, private, link-local metadata, IPv6 loopback,
-- v4-mapped, NAT64, IPv4-compatible and site-local forms), under a public
-- name, since outside labs a .test name is refused before any query. Every
-- validation fails closed, and nothing outlives the validation deadline
-- (timeout_ms 3000 in these configs).
local T = require "mpic.testing"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok

local LAB = os.getenv("MPIC_LAB_FAULTS_LAB")
local STRICT = os.getenv("MPIC_LAB_FAULTS_STRICT")
local DEADLINE_MS = 3000

local function http01(config, name)
  assert(config, "run through tests/lab/test_faults.sh")
  assert(mpic.load_config(config))
  require("mpic.orchestrator").reset()
  local t0 = mpic.now()
  local resp, status = require("mpic.orchestrator").validate({
    check_type = "dcv",
    domain_or_ip_target = name,
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = "tok",
      key_authorization = "tok.thumbprint",
    },
  }, { date = "2026-12-16" })
  eq(status, 200, T.repr(resp))
  return resp, mpic.now() - t0
end

local function primary_error(resp)
  local e = resp.primary_perspective.check_response.errors
  return type(e) == "table" and e[1] and e[1].error_message or ""
end

for _, c in ipairs({
  { "faults_web_endless_headers_fail_closed_in_time", "headers.faults.test" },
  { "faults_web_slowloris_fails_closed_in_time", "drip.faults.test" },
  { "faults_web_that_never_answers_fails_closed_in_time", "silent.faults.test" },
}) do
  case(c[1], function()
    local resp, ms = http01(LAB, c[2])
    eq(resp.is_valid, false)
    eq(resp.primary_perspective.check_response.check_passed, false)
    ok(ms < DEADLINE_MS + 1500, "ended by the deadline: " .. ms .. " ms")
  end, { timeout_ms = 15000 })
end

case("faults_endless_headers_are_cut_off_not_buffered", function()
  assert(mpic.load_config(LAB))
  local r, kind, detail = mpic.http.get("http://headers.faults.test/x", { perspective = "fra", timeout_ms = 2000 })
  eq(r, nil)
  ok(kind == "too_large" or kind == "protocol", tostring(kind) .. ": " .. tostring(detail))
end)

for _, name in ipairs({
  "loopback",
  "private",
  "metadata",
  "v6loop",
  "v6mapped",
  "v6nat64",
  "v6compat",
  "v6sitelocal",
  "mixed",
}) do
  case("faults_ssrf_" .. name .. "_address_refused", function()
    local resp = http01(STRICT, name .. ".faults.example.com")
    eq(resp.is_valid, false)
    -- every perspective refuses the address; the primary's own check may have
    -- been cancelled once the remotes' refusals decided (slow sanitizer builds)
    local texts = { primary_error(resp) }
    for _, p in ipairs(resp.perspectives) do
      for _, e in ipairs(p.check_response.errors or {}) do
        texts[#texts + 1] = tostring(e.error_message)
      end
    end
    T.contains(table.concat(texts, " | "), "no valid A records")
    local r, kind, detail = mpic.http.fetch("http://" .. name .. ".faults.example.com/", { perspective = "sgp" })
    eq(r, nil)
    eq(kind, "dns")
    T.contains(detail, "reserved")
  end)
end

case("faults_strict_refuses_a_test_name_before_any_query", function()
  assert(mpic.load_config(STRICT))
  require("mpic.orchestrator").reset()
  local resp, status = require("mpic.orchestrator").validate({
    check_type = "dcv",
    domain_or_ip_target = "loopback.faults.test",
    dcv_check_parameters = {
      validation_method = "acme-http-01",
      token = "tok",
      key_authorization = "tok.thumbprint",
    },
  }, { date = "2026-12-16" })
  eq(status, 400, T.repr(resp))
  T.contains(T.repr(resp), "special-use name: [RFC6761]: test")
  local r, kind, detail = mpic.http.fetch("http://loopback.faults.test/", { perspective = "sgp" })
  eq(r, nil)
  eq(kind, "invalid_target")
  T.contains(detail, "special-use name")
end)
