-- Signed evidence (mpic.evidence, mpic.core.sign), the chained audit log
-- (core/audit.c) and `mpic audit verify|replay` (mpic.cmd.audit), in process
-- with scripted perspectives.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local sign = require "mpic.core.sign"
local evidence = require "mpic.evidence"
local audit_cmd = require "mpic.cmd.audit"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local DATE = "2026-12-16"

local function tmpdir()
  local d = os.tmpname()
  os.remove(d)
  assert(os.execute("mkdir -p " .. d))
  return d
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function lines_of(path)
  local out = {}
  for l in read(path):gmatch("([^\n]*)\n") do
    out[#out + 1] = l
  end
  return out
end

local function write_lines(path, lines) write(path, table.concat(lines, "\n") .. (#lines > 0 and "\n" or "")) end

-- Run `mpic audit SUB args...`; returns status, output.
local function audit(...)
  local out = {}
  local saved = audit_cmd.write
  audit_cmd.write = function(...)
    for _, s in ipairs({ ... }) do
      out[#out + 1] = s
    end
  end
  local okc, status = pcall(audit_cmd.main, { "audit", ... })
  audit_cmd.write = saved
  if not okc then error(status, 0) end
  return status, table.concat(out)
end

-- canonical encoding ---------------------------------------------------------

case("canonical_is_stable_across_key_order_and_whitespace", function()
  local a = util.json_decode('{"b": 1, "a": {"y": [1, 2, {"q": null, "p": true}], "x": "s"}}')
  local b = util.json_decode('{ "a" : { "x":"s",\n "y":[ 1,2,{"p":true,"q":null} ] },\n\t"b":1 }')
  local ca, cb = sign.canonical(a), sign.canonical(b)
  eq(ca, '{"a":{"x":"s","y":[1,2,{"p":true,"q":null}]},"b":1}')
  eq(cb, ca)
end)

case("canonical_strings_numbers_and_limits", function()
  eq(sign.canonical({ s = 'q"b\\s\n\1\127é/' }), '{"s":"q\\"b\\\\s\\u000a\\u0001\127é/"}')
  -- invalid UTF-8: each byte U+FFFD, as util.json_encode does
  eq(sign.canonical("a\255b"), '"a\239\191\189b"')
  eq(
    sign.canonical(sign.canonical(util.json_decode(util.json_encode({ "a\255" })))),
    sign.canonical(sign.canonical({ "a\255" }))
  )
  eq(sign.canonical(5.0), "5")
  eq(sign.canonical(-12), "-12")
  local r, why = sign.canonical({ x = 1.5 })
  eq(r, nil)
  contains(why, "not an integer")
  -- keys sorted by bytes, not by locale; empty JSON array stays an array
  eq(sign.canonical(util.json_decode('{"b":[],"B":{},"a":1}')), '{"B":{},"a":1,"b":[]}')
  local deep = {}
  local cur = deep
  for _ = 1, 40 do
    cur.n = {}
    cur = cur.n
  end
  r, why = sign.canonical(deep)
  eq(r, nil)
  contains(why, "deeper than 32")
  r, why = sign.canonical({ [1.5] = 1 })
  eq(r, nil)
  ok(why)
end)

case("sign_and_verify_statement", function()
  local priv, pub = sign.generate()
  local key = { key = assert(sign.private(priv)) }
  key.id = key.key:id()
  local keys = assert(evidence.load_public({ pub }))
  ok(keys[key.id], "key id is the SHA-256 of the public key")
  local req = evidence.request_of(
    "dcv",
    util.json_decode(
      '{"domain_or_ip_target":"example.com","dcv_check_parameters":{"validation_method":"acme-http-01",'
        .. '"key_authorization":"tok.abc"},"trace_identifier":null}'
    )
  )
  local details = {
    response_history = {},
    response_url = "http://example.com/x",
    response_status_code = 200,
    resolved_ip = "192.0.2.1",
    response_page = util.base64("body"),
    irrelevant = "x",
  }
  local st = evidence.statement(
    req,
    { id = "fra", rir = "RIPE" },
    { passed = true, completed = true, details = details },
    1700000000000000000
  )
  eq(st.observed.body_sha256, util.hex(util.sha256("body")))
  eq(st.observed.irrelevant, nil)
  eq(st.request.method, "acme-http-01")
  local sig = evidence.sign(key, st)
  eq(evidence.verify(keys, st, sig), true)
  -- the same statement after a JSON round trip still verifies
  eq(evidence.verify(keys, util.json_decode(util.json_encode(st)), sig), true)
  st.result.passed = false
  local v, why = evidence.verify(keys, st, sig)
  eq(v, nil)
  contains(why, "does not verify")
  local _, other = sign.generate()
  v, why = evidence.verify(assert(evidence.load_public({ other })), st, sig)
  eq(v, nil)
  contains(why, "unknown key")
end)

-- an agent's answer, held to its signature --------------------------------

local function agent_setup()
  local priv, pub = sign.generate()
  local dir = tmpdir()
  write(dir .. "/agent.pub", pub)
  local key = { key = assert(sign.private(priv)) }
  key.id = key.key:id()
  local p = { id = "fra", rir = "RIPE", agent = { url = "https://a.example", public_keys = { dir .. "/agent.pub" } } }
  local sent =
    util.json_decode('{"domain_or_ip_target":"example.com","caa_check_parameters":null,"trace_identifier":"t1"}')
  return p, key, sent
end

local function answer(p, key, sent, edit)
  local doc = {
    check_type = "caa",
    check_passed = true,
    check_completed = true,
    timestamp_ns = util.time_ns(),
    errors = util.null,
    details = { records_seen = { '0 issue "ca.example"' }, resolver = "192.0.2.53:53" },
    perspective_code = p.id,
    rir = p.rir,
    trace_identifier = "t1",
  }
  local st = evidence.statement(
    evidence.request_of("caa", sent),
    p,
    { passed = true, completed = true, details = doc.details },
    doc.timestamp_ns
  )
  doc.signature = evidence.sign(key, st)
  if edit then edit(doc) end
  return { status = 200, body = util.json_encode(doc) }
end

case("agent_answer_signature_holds_or_fails_with_its_own_error_type", function()
  local agent_client = require "mpic.service.agent_client"
  local p, key, sent = agent_setup()
  local r = agent_client.parse(p, "caa", answer(p, key, sent), sent)
  eq(r.passed, true, r.errors[1] and r.errors[1].error_message)
  ok(r.statement and r.signature, "the verified statement is kept for the audit line")
  local function fails(res, want)
    local x = agent_client.parse(p, "caa", res, sent)
    eq(x.passed, false)
    eq(x.errors[1].error_type, "mpic_error:coordinator:signature")
    contains(x.errors[1].error_message, want)
  end
  fails(answer(p, key, sent, function(d) d.signature = nil end), "no signature")
  fails(answer(p, key, sent, function(d) d.details.resolver = "203.0.113.1:53" end), "does not verify")
  fails(
    answer(p, key, sent, function(d)
      d.check_passed = true
      d.details.records_seen = {}
    end),
    "does not verify"
  )
  local other = { key = assert(sign.private((sign.generate()))) }
  other.id = other.key:id()
  fails(answer(p, other, sent), "unknown key")
  -- an answer signed for another request does not pass for this one
  local sent2 =
    util.json_decode('{"domain_or_ip_target":"other.example","caa_check_parameters":null,"trace_identifier":"t1"}')
  fails(answer(p, key, sent2), "does not verify")
  fails(answer(p, key, sent, function(d) d.timestamp_ns = d.timestamp_ns - 3600 * 1000000000 end), "away from")
  -- a malformed signature object breaks the answer schema
  local x = agent_client.parse(p, "caa", answer(p, key, sent, function(d) d.signature.extra = 1 end), sent)
  eq(x.errors[1].error_type, "mpic_error:coordinator:remote_check")
  -- without a configured key, a signature is neither needed nor checked
  p.agent.public_keys = nil
  eq(
    agent_client.parse(
      { id = "fra", rir = "RIPE", agent = { url = "x" } },
      "caa",
      answer(p, key, sent, function(d) d.signature = nil end),
      sent
    ).passed,
    true
  )
end)

-- the chained, checkpointed log and verify/replay ----------------------------

local function signed_log(n)
  local dir = tmpdir()
  local priv = sign.generate()
  write(dir .. "/coord.key", priv)
  local cfgt = {
    defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 3000 },
    audit = {
      path = dir .. "/audit.jsonl",
      fsync = false,
      signing_key = dir .. "/coord.key",
      checkpoint_interval_s = 3600,
    },
  }
  local cfg = T.config(cfgt)
  for i = 1, n do
    local r = T.scenario {
      config = cfg,
      policy = "policies/br.lua",
      date = DATE,
      outcomes = { ["*"] = i % 3 == 0 and "fail" or "pass" },
      request = T.request({ trace_identifier = "t" .. i }),
    }
    eq(r.status, 200)
  end
  require("mpic.orchestrator").close_audit()
  -- a config file for the auditor: the coordinator's key is its public half
  local pub = assert(sign.private(priv)):public():pem()
  write(dir .. "/coord.pub", pub)
  write(dir .. "/auditor.yaml", table.concat({
    "issuer: {caa_domains: [ca.example]}",
    "audit: {path: audit.jsonl, public_keys: [coord.pub]}",
    "perspectives:",
    "  - {id: x, rir: ARIN, location: {lat: 0, lon: 0}, resolvers: ['127.0.0.1:9']}",
  }, "\n") .. "\n")
  return dir, dir .. "/audit.jsonl", dir .. "/auditor.yaml"
end

case("valid_log_verifies_and_replays", function()
  local _, log, conf = signed_log(4)
  local lines = lines_of(log)
  eq(#lines, 5)
  local last = util.json_decode(lines[5])
  ok(last.checkpoint, "the log ends with a checkpoint")
  eq(last.checkpoint.lines, 4)
  local first = util.json_decode(lines[1])
  eq(first.prev, string.rep("0", 64))
  eq(first.seq, 1)
  -- the local results (all of them here) are signed once for the validation
  ok(first.attempts[1].primary.evidence, "the primary's result carries its statement")
  eq(first.attempts[1].primary.signature, nil)
  ok(first.local_signature and first.local_signature.value, "one signature over the local results")
  ok(first.attempts[1].perspectives[1].evidence.request.params_sha256)
  -- the evidence is held once, in attempts; the top-level summary has none
  eq(first.perspectives[1].evidence, nil)
  eq(first.perspectives[1].perspective_code, first.attempts[1].perspectives[1].perspective_code)
  local status, out = audit("verify", log, "--config", conf)
  eq(status, 0, out)
  contains(out, "1 checkpoints")
  status, out = audit("replay", log, "--config", conf)
  eq(status, 0, out)
  contains(out, "4 verdicts agree, 0 disagree")
  -- without keys: the chain is checked and the missing guarantees are said
  status, out = audit("verify", log)
  eq(status, 0, out)
  contains(out, "no public keys given")
end)

case("each_edit_is_caught_and_named", function()
  local dir, log, conf = signed_log(4)
  local lines = lines_of(log)
  local function expect(name, mutated, where, why)
    local path = dir .. "/" .. name
    write(path, mutated)
    local status, out = audit("verify", path, "--config", conf)
    eq(status, 1, name .. ": " .. out)
    contains(out, "FAIL " .. path .. ":" .. where .. ":", name)
    contains(out, why, name)
  end
  local function joined(t) return table.concat(t, "\n") .. "\n" end
  -- one byte flipped inside line 2's verdict: line 3 no longer chains to it
  local flipped = { table.unpack(lines) }
  flipped[2] = flipped[2]:gsub('"is_valid":true', '"is_valid":trud', 1)
  if flipped[2] == lines[2] then flipped[2] = flipped[2]:gsub('"is_valid":false', '"is_valid":falsf', 1) end
  expect("flip", joined(flipped), 2, "not a JSON object")
  local edited = { table.unpack(lines) }
  edited[2] = edited[2]:gsub('"reason":"', '"reason":"X', 1)
  expect("edit", joined(edited), 3, "the line before was edited")
  -- an edit inside a perspective's signed evidence is named on its own line
  local resigned = { table.unpack(lines) }
  resigned[2] = resigned[2]:gsub('"trace_identifier":"t2"', '"trace_identifier":"t9"')
  expect("edit_evidence", joined(resigned), 2, "does not verify")
  local deleted = { lines[1], lines[3], lines[4], lines[5] }
  expect("delete", joined(deleted), 2, "1 line(s) removed")
  local swapped = { lines[1], lines[3], lines[2], lines[4], lines[5] }
  expect("swap", joined(swapped), 2, "removed")
  local data = read(log)
  expect("truncate_inside", data:sub(1, #data - 40), 5, "truncated inside a line")
  expect("truncate_lines", joined({ lines[1], lines[2], lines[3] }), 3, "ends without a signed checkpoint")
  -- a perspective's signature made with another key
  local forged = { table.unpack(lines) }
  local doc = util.json_decode(forged[1])
  local other = { key = assert(sign.private((sign.generate()))) }
  other.id = other.key:id()
  doc.attempts[1].perspectives[1].signature = evidence.sign(other, doc.attempts[1].perspectives[1].evidence)
  local body = util.json_encode(doc)
  forged[1] = body
  expect("other_key", joined(forged), 1, "unknown key")
end)

-- The local results are signed once per validation (local_signature over
-- {v, statements}): each local entry's evidence is still checked on its own.
case("local_results_signed_once_per_validation", function()
  local dir, log, conf = signed_log(2)
  local lines = lines_of(log)
  local doc = util.json_decode(lines[1])
  local sts = {}
  for _, a in ipairs(doc.attempts) do
    sts[#sts + 1] = a.primary.evidence
    for _, e in ipairs(a.perspectives) do
      sts[#sts + 1] = e.evidence
    end
  end
  eq(#sts, 6)
  -- the signed bytes: the canonical JSON of {statements, v}, verifiable alone
  local pub = assert(sign.public(read(dir .. "/coord.pub")))
  local text = sign.canonical({ v = 1, statements = sts })
  eq(text:sub(1, 15), '{"statements":[')
  ok(pub:verify(text, util.base64_decode(doc.local_signature.value)), "the line's local_signature verifies")
  eq(doc.local_signature.key_id, pub:id())
  local function expect(name, mutate, why)
    local d = util.json_decode(lines[1])
    mutate(d)
    local copy = { table.unpack(lines) }
    copy[1] = util.json_encode(d)
    local path = dir .. "/" .. name
    write_lines(path, copy)
    local status, out = audit("verify", path, "--config", conf)
    eq(status, 1, name .. ": " .. out)
    contains(out, "FAIL " .. path .. ":1: ", name)
    contains(out, why, name)
  end
  -- one local result's evidence edited
  expect(
    "batch_edit",
    function(d) d.attempts[1].perspectives[2].evidence.observed.resolver = "203.0.113.9:53" end,
    "local results (local_signature): the signature does not verify"
  )
  -- two local results swapped
  expect("batch_swap", function(d)
    local ps = d.attempts[1].perspectives
    ps[1], ps[2] = ps[2], ps[1]
  end, "local results (local_signature): the signature does not verify")
  -- the signature removed
  expect("batch_unsigned", function(d) d.local_signature = nil end, "no local_signature")
  -- signed by another key
  expect("batch_other_key", function(d)
    local other = { key = assert(sign.private((sign.generate()))) }
    other.id = other.key:id()
    d.local_signature = evidence.sign_batch(other, sts)
  end, "unknown key")
  -- a result whose verdict disagrees with its (signed) evidence
  expect(
    "batch_passed",
    function(d) d.attempts[1].perspectives[1].check_passed = false end,
    "the line records check_passed=false"
  )
end)

-- An attacker edits a verdict and re-computes the chain, without the
-- coordinator's key: verify fails at the checkpoint, replay names the line.
case("edited_verdict_with_recomputed_chain", function()
  local dir, log, conf = signed_log(3)
  local lines = lines_of(log)
  local doc = util.json_decode(lines[3]) -- the third validation failed (i % 3 == 0)
  eq(doc.is_valid, false)
  doc.is_valid = true
  doc.attempts[1].verdict = "valid"
  -- rebuild the line keeping prev/seq first, then re-chain everything after it
  local prev = doc.prev
  doc.prev, doc.seq = nil, nil
  local body = util.json_encode(doc):gsub("^{", "")
  lines[3] = string.format('{"prev":"%s","seq":3,%s', prev, body)
  for i = 4, #lines do
    local h = util.hex(util.sha256(lines[i - 1]))
    lines[i] = lines[i]:gsub('^{"prev":"%x+"', '{"prev":"' .. h .. '"', 1)
  end
  local path = dir .. "/rechained.jsonl"
  write_lines(path, lines)
  local status, out = audit("verify", path, "--config", conf)
  eq(status, 1, out)
  contains(out, path .. ":4:")
  contains(out, "checkpoint")
  status, out = audit("replay", path, "--config", conf)
  eq(status, 1, out)
  contains(out, "DISAGREE " .. path .. ":3: attempt 1 recorded valid, the evidence gives invalid")
end)

-- Code outside any task (nothing to suspend) appends through the same chain,
-- blocking: before the writer's thread started and through its queue after.
case("blocking_appends_keep_the_chain", function()
  local dir = tmpdir()
  local path = dir .. "/b.jsonl"
  local w = assert(util.audit.open(path, true))
  assert(w:append_blocking('{"n":1}')) -- written by the caller itself, synced
  assert(w:append('{"n":2}')) -- starts the writer's thread
  assert(w:append_blocking('{"n":3}')) -- through its queue
  local key = assert(sign.private((sign.generate())))
  w:set_key(key)
  assert(w:checkpoint_blocking())
  local ls = lines_of(path)
  eq(#ls, 4)
  for i = 1, 4 do
    eq(util.json_decode(ls[i]).seq, i)
  end
  eq(util.json_decode(ls[4]).checkpoint.lines, 3)
  write(dir .. "/k.pub", key:public():pem())
  local status, out = audit("verify", path, "--key", dir .. "/k.pub")
  eq(status, 0, out)
  T.raises(function() w:append_blocking("{}") end, "JSON object")
end)

-- Every audit line goes through mpic.audit_log: a DNSSEC proof record is
-- chained, and one written last still gets the closing checkpoint.
case("proof_records_are_chained_and_checkpointed", function()
  local dir = tmpdir()
  local priv = sign.generate()
  write(dir .. "/coord.key", priv)
  write(dir .. "/coord.pub", assert(sign.private(priv)):public():pem())
  local cfg = T.config({
    defaults = { perspective_count = 5, max_attempts = 1, timeout_ms = 3000 },
    audit = {
      path = dir .. "/audit.jsonl",
      fsync = true,
      signing_key = dir .. "/coord.key",
      public_keys = { dir .. "/coord.pub" },
      checkpoint_interval_s = 3600,
    },
  })
  local dnssec_check = require "mpic.dnssec_check"
  assert(dnssec_check.audit(cfg, "start", true, "the proof holds", 3))
  eq(T.scenario { config = cfg, policy = "policies/br.lua", date = DATE, outcomes = { ["*"] = "pass" } }.status, 200)
  assert(dnssec_check.audit(cfg, "periodic", false, "SERVFAIL expected", 4))
  assert(require("mpic.audit_log").close())
  local ls = lines_of(dir .. "/audit.jsonl")
  eq(#ls, 4)
  local docs = {}
  for i, l in ipairs(ls) do
    docs[i] = util.json_decode(l)
  end
  eq(docs[1].event, "primary_dnssec_proof")
  eq(docs[1].seq, 1)
  eq(docs[3].event, "primary_dnssec_proof")
  eq(docs[3].phase, "periodic")
  eq(docs[4].checkpoint.lines, 3)
  local status, out = audit("verify", dir .. "/audit.jsonl", "--key", dir .. "/coord.pub")
  eq(status, 0, out)
  -- nothing written since: no second checkpoint
  assert(require("mpic.audit_log").close())
  eq(#lines_of(dir .. "/audit.jsonl"), 4)
  -- a checkpoint after every line (interval 0): a proof record is one of them,
  -- so a log whose last line is a proof record still ends with a checkpoint
  cfg.audit.path, cfg.audit.checkpoint_interval_s = dir .. "/every.jsonl", 0
  eq(T.scenario { config = cfg, policy = "policies/br.lua", date = DATE, outcomes = { ["*"] = "pass" } }.status, 200)
  assert(dnssec_check.audit(cfg, "periodic", true, "the proof holds", 2))
  assert(require("mpic.audit_log").close())
  ls = lines_of(dir .. "/every.jsonl")
  eq(#ls, 4)
  eq(util.json_decode(ls[3]).event, "primary_dnssec_proof")
  eq(util.json_decode(ls[4]).checkpoint.lines, 3)
  status, out = audit("verify", dir .. "/every.jsonl", "--key", dir .. "/coord.pub")
  eq(status, 0, out)
end)

case("chain_continues_across_restart_and_rotation", function()
  local dir = tmpdir()
  local path = dir .. "/a.jsonl"
  local w = assert(util.audit.open(path, false))
  assert(w:append('{"n":1}'))
  local head, seq = w:head()
  eq(seq, 1)
  eq(head, util.hex(util.sha256(lines_of(path)[1])))
  -- rotation: the new file starts from the last hash of the old one
  assert(os.rename(path, path .. ".1"))
  assert(w:append('{"n":2}'))
  local l = util.json_decode(lines_of(path)[1])
  eq(l.prev, head)
  eq(l.seq, 2)
  local status, out = audit("verify", path .. ".1", path, "--open")
  eq(status, 0, out)
  -- a line that is not an object with members is refused
  T.raises(function() w:append("{}") end, "JSON object")
  -- a log ending in a partial line is not appended to
  local bad = dir .. "/partial.jsonl"
  write(bad, '{"prev":"x"')
  local w2, kind, detail = util.audit.open(bad, false)
  eq(w2, nil)
  eq(kind, "internal")
  contains(detail, "partial line")
end)
