-- mpic.explain: which rule decided, per attempt, from an audit line or a
-- response; and the `mpic explain` command on an audit file.
local T = require "mpic.testing"
local explain = require "mpic.explain"
local case, eq, contains = T.case, T.eq, T.contains

case("rule_names_each_decision", function()
  eq(explain.rule("primary perspective primary failed"), "primary")
  eq(explain.rule("quorum cannot be met: 2 of 5 remotes did not corroborate, 4 required"), "quorum")
  eq(explain.rule("corroborating remotes can span at most 1 RIR(s), 2 required"), "rir-diversity")
  eq(explain.rule("invalid-perspective-count: 3 remote perspectives, the BR require at least 5 on 2026-12-16"),
    "perspective-count")
  eq(explain.rule("undecided at the deadline: waiting: 3/5 corroborated"), "deadline")
  eq(explain.rule('policy "br" (policies/br.lua): decide: instruction limit (5000000) exceeded'), "policy-error")
  eq(explain.rule("quorum met: 4/5 corroborated (4 required) in 3 RIRs (APNIC, ARIN, RIPE)"), "quorum-met")
  eq(explain.rule("my rule: at least one LACNIC pass"), "policy")
  eq(explain.rule(nil), "unknown")
  -- a quorum failure caused by unfinished checks at the deadline
  eq(explain.rule("quorum cannot be met: 2 of 5 remotes did not corroborate, 4 required",
    { { err = "validation deadline exceeded" } }), "deadline")
end)

local function scenario(outcomes, attempts)
  return T.scenario{ config = T.config{ defaults = { perspective_count = 5, max_attempts = attempts or 1 } },
    date = "2026-12-16", outcomes = outcomes, shadow = { "policies/strict.lua" },
    request = T.request{ trace_identifier = "trace-" .. tostring(attempts) .. tostring(outcomes.primary) } }
end

case("explain_audit_line_per_attempt", function()
  local attempt = 0
  local r = scenario({ primary = function() attempt = attempt + 1 return "pass" end,
                       ["*"] = function() return attempt == 1 and { error = "servfail" } or "pass" end }, 2)
  eq(r.is_valid, true)
  local text = explain.audit_line(r.audit)
  contains(text, "attempt 1 of 2: NOT VALID")
  contains(text, "attempt 2 of 2: VALID")
  contains(text, "decided by: quorum --")
  contains(text, "decided by: quorum-met")
  contains(text, "quorum 5/5 corroborated (4 required)")
  contains(text, "servfail")
  contains(text, "policies/strict.lua")
  contains(text, "(agrees)")
end)

case("explain_primary_failure", function()
  local r = scenario({ primary = { fail = "no record" }, ["*"] = "pass" })
  local text = explain.audit_line(r.audit)
  contains(text, "decided by: primary")
  contains(text, "primary primary    fail")
end)

case("explain_response_matches_the_final_attempt", function()
  local r = scenario({ primary = "pass", ["*"] = "pass" })
  local text = explain.response(r.response)
  contains(text, "VALID dcv acme-dns-01 for example.com")
  contains(text, "decided by: quorum-met")
  eq(explain.response({ error = "request-validation-failed" }), "not a validation response: request-validation-failed\n")
end)

case("pick_takes_the_last_line_or_the_trace", function()
  local text = '{"trace_identifier":"a","is_valid":true}\n{"trace_identifier":"b","is_valid":false}\n\n'
  eq(explain.pick(text).trace_identifier, "b")
  eq(explain.pick(text, "a").is_valid, true)
  local none, err = explain.pick(text, "zzz")
  eq(none, nil)
  contains(err, "zzz")
  local bad, berr = explain.pick('{"a":1}\nnot json\n')
  eq(bad, nil)
  contains(berr, "not JSON")
end)

-- The mpic binary running this test (for command-line checks).
local function self_exe()
  local f = assert(io.open("/proc/self/stat"))
  local pid = f:read("l"):match("^(%d+)")
  f:close()
  local p = assert(io.popen("readlink /proc/" .. pid .. "/exe"))
  local exe = p:read("l")
  p:close()
  return exe
end

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>&1; echo \"exit=$?\""))
  local out = p:read("a")
  p:close()
  return out
end

case("explain_command_reads_the_file_the_trace_and_stdin", function()
  local audit = os.tmpname()
  os.remove(audit)
  local cfg = T.config{ defaults = { perspective_count = 5, max_attempts = 1 }, audit = { path = audit, fsync = false } }
  T.scenario{ config = cfg, date = "2026-12-16", outcomes = { ["*"] = "pass" },
    request = T.request{ trace_identifier = "first" } }
  T.scenario{ config = cfg, date = "2026-12-16", outcomes = { ["*"] = "pass", primary = "fail" },
    request = T.request{ trace_identifier = "second" } }
  local exe = self_exe()
  local last = sh(exe .. " explain " .. audit)
  contains(last, "NOT VALID dcv acme-dns-01 for example.com (trace second)")
  contains(last, "decided by: primary")
  contains(last, "exit=0")
  local first = sh(exe .. " explain " .. audit .. " --trace first")
  contains(first, "(trace first)")
  contains(first, "decided by: quorum-met")
  local stdin = sh(exe .. " explain - < " .. audit)
  contains(stdin, "(trace second)")
  local missing = sh(exe .. " explain " .. audit .. " --trace nope")
  contains(missing, "no audit line with trace_identifier \"nope\"")
  contains(missing, "exit=2")
  os.remove(audit)
end)
