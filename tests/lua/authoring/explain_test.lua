-- mpic.cmd.explain: which rule decided, per attempt, from an audit line or a
-- response; and the `mpic explain` command on an audit file.
local T = require "mpic.testing"
local explain = require "mpic.cmd.explain"
local case, eq, contains = T.case, T.eq, T.contains

case("rule_names_each_decision_from_the_recorded_rule", function()
  eq(explain.rule("primary"), "primary")
  eq(explain.rule("quorum"), "quorum")
  eq(explain.rule("deadline"), "deadline")
  eq(explain.rule("policy"), "policy")
  eq(explain.rule(nil), "unknown")
  eq(explain.rule("not-a-rule"), "unknown")
  -- a reason's words are not read: rewording a message does not change the rule
  eq(explain.rule("quorum met: 4/5 corroborated (4 required) in 3 RIRs (APNIC, ARIN, RIPE)"), "unknown")
end)

case("quorum_evaluate_names_its_rule", function()
  local quorum = require "mpic.quorum"
  local rules = require "mpic.rules"
  local function remotes(list)
    local out = {}
    for i, x in ipairs(list) do
      out[i] = {
        id = "r" .. i,
        rir = x[1],
        passed = x[2] == "pass",
        completed = x[2] ~= "error",
        done = x[2] ~= "pending",
      }
    end
    return out
  end
  local five = { { "ARIN", "pass" }, { "RIPE", "pass" }, { "APNIC", "pass" }, { "ARIN", "pass" }, { "RIPE", "pass" } }
  local cases = {
    { { remotes = remotes(five), date = "2026-12-16" }, "valid", "quorum-met" },
    { { remotes = remotes(five), date = "2026-12-16", primary = { id = "p", passed = false } }, "invalid", "primary" },
    {
      {
        remotes = remotes({
          { "ARIN", "fail" },
          { "RIPE", "fail" },
          { "APNIC", "pass" },
          { "ARIN", "pass" },
          { "RIPE", "pass" },
        }),
        date = "2026-12-16",
      },
      "invalid",
      "quorum",
    },
    {
      {
        remotes = remotes({
          { "ARIN", "pass" },
          { "ARIN", "pass" },
          { "ARIN", "pass" },
          { "ARIN", "pass" },
          { "ARIN", "fail" },
        }),
        date = "2026-12-16",
      },
      "invalid",
      "rir-diversity",
    },
    {
      {
        remotes = remotes({
          { "ARIN", "pass" },
          { "RIPE", "pending" },
          { "APNIC", "pass" },
          { "ARIN", "pass" },
          { "RIPE", "pending" },
        }),
        date = "2026-12-16",
      },
      "undecided",
      "waiting",
    },
    {
      { remotes = remotes({ { "ARIN", "pass" }, { "RIPE", "pass" } }), date = "2026-12-16" },
      "invalid",
      "perspective-count",
    },
    { { remotes = remotes(five), date = "2026-12-16", quorum = 2 }, "invalid", "requested-quorum" },
    { { remotes = {}, date = "2026-12-16" }, "invalid", "no-perspectives" },
    { { remotes = "x" }, "invalid", "malformed-state" },
  }
  for i, c in ipairs(cases) do
    local v, _, info = quorum.evaluate(c[1])
    eq(v, c[2], "case " .. i)
    eq(info.rule, c[3], "case " .. i)
    eq(rules.known[info.rule], true, "in the vocabulary: " .. info.rule)
  end
end)

local function scenario(outcomes, attempts)
  return T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = attempts or 1 } },
    date = "2026-12-16",
    outcomes = outcomes,
    shadow = { "policies/strict.lua" },
    request = T.request { trace_identifier = "trace-" .. tostring(attempts) .. tostring(outcomes.primary) },
  }
end

case("explain_audit_line_per_attempt", function()
  local attempt = 0
  local r = scenario({
    primary = function()
      attempt = attempt + 1
      return "pass"
    end,
    ["*"] = function() return attempt == 1 and { error = "servfail" } or "pass" end,
  }, 2)
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
  eq(
    explain.response({ error = "request-validation-failed" }),
    "not a validation response: request-validation-failed\n"
  )
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
local self_exe = T.self_exe

local function sh(cmd)
  local p = assert(io.popen(cmd .. ' 2>&1; echo "exit=$?"'))
  local out = p:read("a")
  p:close()
  return out
end

case("explain_command_reads_the_file_the_trace_and_stdin", function()
  local audit = os.tmpname()
  os.remove(audit)
  local cfg =
    T.config { defaults = { perspective_count = 5, max_attempts = 1 }, audit = { path = audit, fsync = false } }
  T.scenario {
    config = cfg,
    date = "2026-12-16",
    outcomes = { ["*"] = "pass" },
    request = T.request { trace_identifier = "first" },
  }
  T.scenario {
    config = cfg,
    date = "2026-12-16",
    outcomes = { ["*"] = "pass", primary = "fail" },
    request = T.request { trace_identifier = "second" },
  }
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
  contains(missing, 'no audit line with trace_identifier "nope"')
  contains(missing, "exit=2")
  os.remove(audit)
end)

case("explain_reads_the_rule_not_the_reason", function()
  local r = scenario({ primary = { fail = "no record" }, ["*"] = "pass" })
  eq(r.audit.rule, "primary")
  eq(r.audit.attempts[1].rule, "primary")
  eq(r.response.mpic_decision.rule, "primary")
  -- reword every reason: the explanation still names the rule
  r.audit.reason = "something else entirely"
  for _, a in ipairs(r.audit.attempts) do
    a.reason = "reworded"
  end
  contains(explain.audit_line(r.audit), "decided by: primary -- the primary perspective failed")
  r.response.mpic_decision.reason = "reworded"
  contains(explain.response(r.response), "decided by: primary")
  eq(explain.response_rule(r.response), "primary")
end)

case("deadline_rule_recorded_when_unfinished_checks_decide", function()
  -- two remotes still running at the validation deadline: counted as
  -- failures they make the quorum unreachable; the rule is the deadline
  local r = T.scenario {
    config = T.config { defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 300 } },
    date = "2026-12-16",
    outcomes = {
      primary = "pass",
      ["*"] = "pass",
      pdx = { timeout_ms = 2000 },
      fra = { timeout_ms = 2000 },
      sto = { timeout_ms = 2000 },
      sgp = { timeout_ms = 2000 },
    },
  }
  eq(r.is_valid, false)
  eq(r.audit.rule, "deadline")
  eq(r.audit.attempts[1].rule, "deadline")
  contains(explain.audit_line(r.audit), "decided by: deadline")
end)
