-- One lying agent cannot poison a validation: agent_client.parse holds an
-- answer to the check_response schema (known error types, bounded sizes and
-- nesting), metrics labels come from a closed set, and a response that
-- cannot be encoded is a 500 with an audit line saying so, never a 200.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local client = require "mpic.service.agent_client"
local metrics = require "mpic.service.metrics"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local P = { id = "fra", rir = require("mpic.config").rir("RIPE"), agent = { url = "https://fra.example:8443" } }
local AL = client.ANSWER_LIMITS

local function answer(extra)
  local doc = {
    check_type = "dcv",
    check_passed = true,
    check_completed = true,
    timestamp_ns = 1,
    errors = util.null,
    perspective_code = "fra",
    rir = "RIPE",
    trace_identifier = util.null,
    details = {
      validation_method = "acme-http-01",
      response_url = "http://a.example/x",
      response_history = { { status_code = 302, url = "http://b.example/y" } },
      response_status_code = 200,
      response_page = "b2s=",
      resolved_ip = "192.0.2.1",
    },
  }
  for k, v in pairs(extra or {}) do
    doc[k] = v
  end
  return doc
end

local function parse(doc, status)
  local body = type(doc) == "string" and doc or assert(util.json_encode(doc))
  return client.parse(P, "dcv", { status = status or 200, body = body })
end

local function refused(r, why)
  eq(r.passed, false)
  eq(r.completed, false)
  eq(#r.errors, 1)
  eq(r.errors[1].error_type, "mpic_error:coordinator:remote_check")
  contains(r.errors[1].error_message, "The remote check failed to complete: ")
  if why then contains(r.errors[1].error_message, why) end
  eq(r.details, {})
  ok(#r.errors[1].error_message < 500, "the message is short: " .. #r.errors[1].error_message)
  ok(util.json_encode(r), "the result encodes")
end

-- details nesting n levels deep (details itself is level 1), as JSON text
local function deep_details_body(n)
  local inner = ('{"a":'):rep(n - 1) .. "1" .. ("}"):rep(n - 1)
  return '{"check_type":"dcv","check_passed":true,"check_completed":true,"perspective_code":"fra",'
    .. '"rir":"RIPE","errors":null,"details":'
    .. inner
    .. "}"
end

case("a_good_answer_passes_whole", function()
  local r = parse(answer())
  eq(r.passed, true)
  eq(r.completed, true)
  eq(r.errors, {})
  eq(r.details.response_history[1].status_code, 302)
  r =
    parse(answer({ check_passed = false, errors = { { error_type = "mpic_error:http", error_message = "404" } } }), 500)
  eq(r.passed, false)
  eq(r.completed, true)
  eq(r.errors, { { error_type = "mpic_error:http", error_message = "404" } })
  r = parse(answer({ errors = { { error_type = "mpic_error:dcv_checker:tls_alpn:certificate:digest_mismatch" } } }))
  eq(r.errors[1].error_message, util.null)
end)

case("details_nested_62_levels_fail_that_check_only", function()
  local r = parse(deep_details_body(62))
  refused(r, "details nests deeper than " .. AL.details.depth .. " levels")
  -- at the limit it passes
  r = parse(deep_details_body(AL.details.depth))
  eq(r.passed, true)
  refused(parse(deep_details_body(AL.details.depth + 1)), "nests deeper")
end)

case("unknown_error_types_are_refused", function()
  refused(
    parse(answer({ check_passed = false, errors = { { error_type = "mpic_error:made_up:42", error_message = "x" } } })),
    "unknown error_type mpic_error:made_up:42"
  )
  refused(
    parse(answer({ check_passed = false, errors = { { error_type = ("z"):rep(100000) } } })),
    "unknown error_type"
  )
  -- an agent does not speak for the coordinator
  refused(
    parse(answer({
      check_passed = false,
      errors = { { error_type = "mpic_error:coordinator:remote_check", error_message = "x" } },
    })),
    "unknown error_type"
  )
end)

case("sizes_of_errors_and_details_are_bounded", function()
  local many = {}
  for i = 1, AL.errors + 1 do
    many[i] = { error_type = "mpic_error:http", error_message = "e" .. i }
  end
  refused(parse(answer({ check_passed = false, errors = many })), "errors has more than " .. AL.errors .. " entries")
  refused(
    parse(answer({
      check_passed = false,
      errors = { { error_type = "mpic_error:http", error_message = ("m"):rep(AL.error_message + 1) } },
    })),
    "an error_message is " .. (AL.error_message + 1) .. " bytes long"
  )
  local seen = {}
  for i = 1, AL.details.nodes do
    seen[i] = "r"
  end
  refused(
    parse(answer({ details = { records_seen = seen } })),
    "details has more than " .. AL.details.nodes .. " values"
  )
  refused(parse(answer({ details = { reason = ("r"):rep(AL.details.string + 1) } })), "details holds a string of")
  refused(parse(answer({ details = { [("k"):rep(AL.details.key + 1)] = 1 } })), "details has a key of")
end)

case("anything_outside_the_schema_is_refused", function()
  refused(parse(answer({ surprise = 1 })), "unknown field surprise")
  refused(parse(answer({ details = setmetatable({ 1, 2 }, util.array_mt) })), "details is not an object")
  refused(parse(answer({ errors = { x = 1 } })), "errors is not a list")
  refused(parse(answer({ errors = { "mpic_error:http" } })), "an errors entry is not an object")
  refused(parse(answer({ errors = { { error_type = "mpic_error:http", extra = 1 } } })), "unknown field extra")
  refused(parse(answer({ errors = { { error_type = "mpic_error:http", error_message = 5 } } })), "not a string")
  refused(parse(answer({ timestamp_ns = "soon" })), "timestamp_ns is not an integer")
  refused(parse(answer({ trace_identifier = ("t"):rep(AL.trace_identifier + 1) })), "trace_identifier")
  refused(parse("[1,2]"), "is not a JSON object")
  -- echoed fields are clipped
  refused(parse(answer({ perspective_code = ("p"):rep(100000) })), "the answer comes from perspective ppp")
  refused(parse({ error = ("e"):rep(100000) }, 400), "is not a check_response: eee")
end)

case("metrics_error_type_labels_are_a_closed_set", function()
  metrics.reset()
  for i = 1, 2000 do
    metrics.validation({
      is_valid = false,
      perspectives = {
        {
          perspective_code = "fra",
          check_response = {
            errors = { { error_type = "mpic_error:lie:" .. i }, { error_type = "mpic_error:http" } },
          },
        },
      },
    }, 200, { check_type = "dcv" })
  end
  local n, other, http = 0, nil, nil
  for line in metrics.render():gmatch("[^\n]+") do
    if line:match("^mpic_perspective_errors_total{") then
      n = n + 1
      if line:find('error_type="other"', 1, true) then other = line end
      if line:find('error_type="mpic_error:http"', 1, true) then http = line end
    end
  end
  eq(n, 2)
  ok(other and other:match(" 2000$"), tostring(other))
  ok(http and http:match(" 2000$"), tostring(http))
  metrics.reset()
end)

-- the orchestrator: an unencodable response (a local check's details here)
local function deep_table(n)
  local t = { leaf = 1 }
  for _ = 2, n do
    t = { a = t }
  end
  return t
end

case("unencodable_response_is_a_500_and_the_audit_line_says_so", function()
  local cfg = T.config { defaults = { perspective_count = 5, max_attempts = 1 } }
  local r = T.scenario {
    config = cfg,
    date = "2026-12-16",
    outcomes = { ["*"] = "pass", fra = { passed = true, completed = true, details = deep_table(62) } },
  }
  eq(r.status, 500, util.json_encode(r.issues or {}))
  contains(r.response.error, "response encoding failed")
  ok(util.json_encode(r.response), "the 500 body encodes")
  local last
  for line in io.lines(cfg.audit.path) do
    last = line
  end
  local a = assert(util.json_decode(last), "an audit line")
  eq(a.is_valid, false)
  contains(a.error, "response encoding failed")
end)

case("validate_json_exits_non_zero_when_the_response_cannot_be_encoded", function()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  local f = assert(io.open(dir .. "/c.yaml", "w"))
  f:write(
    "issuer: {caa_domains: [ca.example]}\npolicy: " .. package.loaded["mpic.paths"].root .. "/policies/br.lua\n",
    "audit: {path: " .. dir .. "/audit.jsonl, fsync: false}\nperspectives:\n",
    '  - {id: a, rir: ARIN, location: {lat: 45.52, lon: -122.68}, resolvers: ["127.0.0.1:9"]}\n',
    '  - {id: b, rir: RIPE, location: {lat: 50.11, lon: 8.68}, resolvers: ["127.0.0.1:9"]}\n'
  )
  f:close()
  local orchestrator = require "mpic.orchestrator"
  local real, real_print, called, printed = orchestrator.validate, print, false, {}
  orchestrator.validate = function()
    called = true
    return { is_valid = true, perspectives = { deep_table(70) } }, 200
  end
  print = function(...) printed[#printed + 1] = table.concat({ tostring(...) }, "\t") end -- luacheck: ignore
  local okc, code = pcall(require("mpic.cmd.validate").main, {
    "validate",
    "--config",
    dir .. "/c.yaml",
    "--check",
    "dcv",
    "--method",
    "acme-dns-01",
    "--target",
    "example.com",
    "--param",
    "key_authorization_hash=" .. ("A"):rep(43),
    "--json",
  })
  orchestrator.validate, print = real, real_print -- luacheck: ignore
  os.execute("rm -rf " .. dir)
  ok(okc, tostring(code))
  ok(called, "the validation ran")
  eq(printed, {}, "nothing printed")
  eq(code, 2)
end)
