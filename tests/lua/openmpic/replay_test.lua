-- Open MPIC integration replay: the request bodies in requests/*.json are
-- written as Open MPIC's integration tests send them to its API, for its
-- public integration domain integration-testing.open-mpic.org, which
-- tests/lab/openmpic.sh serves on loopback from the project's fixture. Each
-- body is sent unchanged to the orchestrator and must give the verdict
-- Open MPIC's suite expects (REFERENCE 4.4 Integration row, 4.6, 3.10).
local T = require "mpic.testing"
local mpic = require "mpic"
local orchestrator = require "mpic.orchestrator"
local case, eq, ok = T.case, T.eq, T.ok
local io_open, os_getenv, ipairs, tostring, error = io.open, os.getenv, ipairs, tostring, error

local DATE = "2026-12-16"
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "."

-- name of requests/<name>.json, expected is_valid
local EXPECT = {
  { "dns-01", true },
  { "dns-01-multi", true },
  { "dns-01-cname", true },
  { "dns-01-cname-multi", true },
  { "dns-01-leading-whitespace", false },
  { "dns-01-trailing-whitespace", false },
  { "dns-01-nxdomain", false },
  { "dns-change-txt", true },
  { "dns-change-cname", true },
  { "dns-change-caa", true },
  { "dns-email-txt", true },
  { "dns-email-txt-cname", true },
  { "dns-email-txt-whitespace", false },
  { "dns-email-txt-null-char", false },
  { "dns-email-txt-junk", false },
  { "dns-phone-txt", true },
  { "dns-phone-txt-wrong", false },
  { "dns-phone-cname-txt", true },
  { "dns-phone-txt-whitespace", false },
  { "contact-email-caa", true },
  { "contact-email-caa-critical", true },
  { "contact-email-caa-sub", true },
  { "contact-email-caa-nxsub", true },
  { "contact-email-caa-cname", true },
  { "contact-email-caa-multi", true },
  { "contact-email-caa-wrong", false },
  { "contact-email-caa-whitespace", false },
  { "contact-email-caa-null", false },
  { "contact-email-no-record-set", false },
  { "contact-phone-caa", true },
  { "contact-phone-caa-multi", true },
  { "contact-phone-caa-critical", true },
  { "contact-phone-caa-wrong", false },
  { "contact-phone-caa-whitespace", false },
  { "http-01", true },
  { "http-01-redirect", true },
  { "http-01-wrong-key-authorization", false },
  { "http-01-not-found", false },
  { "http-01-bad-port-redirect", false },
  { "website-change", true },
  { "website-change-redirect", true },
  { "website-change-bad-port-redirect", false },
  { "website-change-long-redirect", true },
  { "website-change-wrong-value", false },
  { "caa-no-records", true },
  { "caa-smime-standard", true },
  { "caa-smime-standard-other-ca", false },
  { "caa-smime-no-issuemail", true },
  { "caa-smime-with-issue", true },
  { "caa-smime-with-issue-issue-only", false },
}

local loaded = false
local function setup()
  if loaded then return end
  local path = os_getenv("MPIC_OPENMPIC_CONFIG")
  if not path then error("MPIC_OPENMPIC_CONFIG is not set: run through tests/lab/test_openmpic.sh", 2) end
  local cfg, err = mpic.load_config(path)
  if not cfg then error(tostring(err), 2) end
  orchestrator.reset()
  loaded = true
end

local function request(name)
  local f = assert(io_open(here .. "/requests/" .. name .. ".json", "rb"))
  local text = f:read("a")
  f:close()
  return assert(mpic.json.decode(text))
end

local function replay(name)
  setup()
  local resp, status = orchestrator.validate(request(name), { date = DATE })
  eq(status, 200, name .. ": " .. mpic.json.encode(resp))
  return resp
end

local function first_problem(resp)
  for _, p in ipairs(resp.perspectives) do
    local cr = p.check_response
    if not cr.check_passed then
      local e = type(cr.errors) == "table" and cr.errors[1]
      return p.perspective_code .. ": " .. tostring(e and e.error_message or (cr.details and cr.details.reason))
    end
  end
  return "all passed"
end

for _, e in ipairs(EXPECT) do
  local name, valid = e[1], e[2]
  case("openmpic_" .. name .. (valid and "_is_valid" or "_is_not_valid"), function()
    local resp = replay(name)
    eq(
      resp.is_valid,
      valid,
      name .. " (" .. tostring(resp.mpic_decision and resp.mpic_decision.reason) .. "; " .. first_problem(resp) .. ")"
    )
    eq(resp.actual_orchestration_parameters.perspective_count, 6)
  end)
end

case("openmpic_every_request_file_has_an_expectation", function()
  local known = {}
  for _, e in ipairs(EXPECT) do
    known[e[1]] = true
  end
  local p = assert(io.popen('ls "' .. here .. '/requests"'))
  local n = 0
  for line in p:lines() do
    local name = line:match("^(.*)%.json$")
    if name then
      n = n + 1
      ok(known[name], "no expected verdict for requests/" .. line)
    end
  end
  p:close()
  eq(n, #EXPECT)
end)

case("openmpic_dns01_cname_chain_reported", function()
  local resp = replay("dns-01-cname-multi")
  local d = resp.perspectives[1].check_response.details
  eq(d.cname_chain, {
    "dns-01-cname-target-1.integration-testing.open-mpic.org.",
    "dns-01-cname-target-2.integration-testing.open-mpic.org.",
    "dns-01-cname-target-3.integration-testing.open-mpic.org.",
    "dns-01-cname-landing.integration-testing.open-mpic.org.",
  })
end)

case("openmpic_http01_redirect_history", function()
  local resp = replay("http-01-redirect")
  local d = resp.perspectives[1].check_response.details
  eq(#d.response_history, 1)
  eq(d.response_history[1].status_code, 302)
  eq(d.response_history[1].url, "http://integration-testing.open-mpic.org/redirect-target")
end)

case("openmpic_http01_bad_port_redirect_is_invalid_redirect", function()
  local resp = replay("http-01-bad-port-redirect")
  local cr = resp.perspectives[1].check_response
  eq(cr.check_completed, true)
  eq(cr.errors[1].error_type, "mpic_error:redirect:invalid")
end)

case("openmpic_http01_not_found_is_http_error", function()
  local resp = replay("http-01-not-found")
  local cr = resp.perspectives[1].check_response
  eq(cr.check_completed, true)
  eq(cr.errors[1].error_type, "mpic_error:http")
  T.contains(cr.errors[1].error_message, "404")
end)
