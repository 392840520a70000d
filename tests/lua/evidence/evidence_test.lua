-- Signed evidence (mpic.evidence, mpic.core.sign), the chained audit log
-- (core/audit.c) and `mpic audit verify|replay` (mpic.cmd.audit), in process
-- with scripted perspectives.
local T = require "mpic.testing"
local util = require "mpic.core.util"
local sign = require "mpic.core.sign"
local evidence = require "mpic.evidence"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

local DATE = "2026-12-16"

local tmpdir = T.tmpdir

local write = T.write_file

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

local audit = require "audit_run"

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

-- Every field of the documented list is evidence, copied as it is; nothing
-- else is; a JSON null is left out.
case("observed_copies_exactly_the_listed_fields", function()
  local details = { irrelevant = "x", response_page = util.base64("b") }
  for i, k in ipairs(evidence.OBSERVED_FIELDS) do
    details[k] = "v" .. i
  end
  local o = evidence.observed(details)
  local n = 0
  for k, v in pairs(o) do
    n = n + 1
    if k ~= "body_sha256" then eq(details[k], v, k) end
  end
  eq(n, #evidence.OBSERVED_FIELDS + 1)
  eq(o.body_sha256, util.hex(util.sha256("b")))
  eq(o.irrelevant, nil)
  -- a local result's observation leaves out what its audit entry holds
  local lo = evidence.local_observation({ details = details }, 5)
  eq(lo.v, 1)
  eq(lo.time_ns, 5)
  eq(lo.observed.resolver, nil)
  eq(lo.observed.ad_flag, nil)
  eq(lo.observed.validation_method, nil)
  eq(lo.observed.records_seen, details.records_seen)
  local withnull = evidence.observed({ resolver = util.null, response_code = "NOERROR" })
  eq(withnull, { response_code = "NOERROR" })
  eq(evidence.observed(nil), {})
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
  -- one validation at a time: each line is sealed by its own checkpoint,
  -- written with it before the validation's answer
  eq(#lines, 8)
  for i = 2, 8, 2 do
    local seal = util.json_decode(lines[i])
    ok(seal.checkpoint, "line " .. i .. " is the seal of line " .. (i - 1))
    eq(seal.checkpoint.lines, i - 1)
    eq(seal.checkpoint.head, util.hex(util.sha256(lines[i - 1])))
  end
  local first = util.json_decode(lines[1])
  eq(first.prev, string.rep("0", 64))
  eq(first.seq, 1)
  -- the local results (all of them here) carry what their checks saw, proven
  -- with the whole line by the seal; their result is the entry's own
  local ev1 = first.attempts[1].perspectives[1].evidence
  ok(first.attempts[1].primary.evidence, "the primary's result carries its evidence")
  eq(first.attempts[1].primary.signature, nil)
  eq(first.local_signature, nil)
  eq(ev1.v, 1)
  eq(math.type(ev1.time_ns), "integer")
  eq(type(ev1.observed), "table")
  eq(ev1.request, nil) -- the line's target and check type, not repeated per entry
  eq(ev1.result, nil) -- the entry's check_passed, check_completed and errors
  -- the evidence is held once, in attempts; the top-level summary has none
  eq(first.perspectives[1].evidence, nil)
  eq(first.perspectives[1].perspective_code, first.attempts[1].perspectives[1].perspective_code)
  local status, out = audit("verify", log, "--config", conf)
  eq(status, 0, out)
  contains(out, "4 checkpoints, 24 signed results")
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
  -- lines: 1 validation t1, 2 its seal, 3 t2, 4 its seal, ... 8 the seal of t4
  -- one byte flipped inside line 3's verdict
  local flipped = { table.unpack(lines) }
  flipped[3] = flipped[3]:gsub('"is_valid":true', '"is_valid":trud', 1)
  if flipped[3] == lines[3] then flipped[3] = flipped[3]:gsub('"is_valid":false', '"is_valid":falsf', 1) end
  expect("flip", joined(flipped), 3, "not a JSON object")
  local edited = { table.unpack(lines) }
  edited[3] = edited[3]:gsub('"reason":"', '"reason":"X', 1)
  expect("edit", joined(edited), 4, "the line before was edited")
  -- an edit inside the local results' evidence: the seal's chain breaks
  local resigned = { table.unpack(lines) }
  resigned[3] = resigned[3]:gsub('"trace_identifier":"t2"', '"trace_identifier":"t9"')
  expect("edit_evidence", joined(resigned), 4, "the line before was edited")
  local deleted = { lines[1], lines[2], lines[4], lines[5], lines[6], lines[7], lines[8] }
  expect("delete", joined(deleted), 3, "1 line(s) removed")
  local swapped = { lines[1], lines[2], lines[5], lines[4], lines[3], lines[6], lines[7], lines[8] }
  expect("swap", joined(swapped), 3, "removed")
  local data = read(log)
  expect("truncate_inside", data:sub(1, #data - 40), 8, "truncated inside a line")
  -- cut after a validation line: its seal is gone (whatever --open says)
  expect("truncate_lines", joined({ lines[1], lines[2], lines[3] }), 3, "no signed checkpoint seals")
  -- a validation line added after the last seal, chained right, without the key
  local added = util.json_decode(lines[7])
  added.prev, added.seq, added.trace_identifier = util.hex(util.sha256(lines[8])), 9, "forged"
  local forged_tail = { table.unpack(lines) }
  forged_tail[9] = string.format(
    '{"prev":"%s","seq":9,%s',
    added.prev,
    util
      .json_encode((function()
        added.prev, added.seq = nil, nil
        return added
      end)())
      :sub(2)
  )
  local path = dir .. "/forged_tail"
  write(path, joined(forged_tail))
  local status, out = audit("verify", path, "--config", conf, "--open")
  eq(status, 1, out)
  contains(out, "FAIL " .. path .. ":9: local results that no signed checkpoint seals")
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

-- The local results are proven by the seal: each local entry's evidence is
-- still checked against what the line records, on its own line.
case("local_results_sealed_and_checked", function()
  local dir, log, conf = signed_log(2)
  local lines = lines_of(log)
  local doc = util.json_decode(lines[1])
  local n = 0
  for _, a in ipairs(doc.attempts) do
    ok(a.primary.evidence and a.primary.signature == nil, "the local primary's statement, unsigned")
    for _, e in ipairs(a.perspectives) do
      ok(e.evidence and e.signature == nil, "a local perspective's statement, unsigned")
      n = n + 1
    end
  end
  eq(n, 5)
  local function expect(name, mutate, where, why)
    local d = util.json_decode(lines[1])
    mutate(d)
    local copy = { table.unpack(lines) }
    copy[1] = util.json_encode(d)
    local path = dir .. "/" .. name
    write_lines(path, copy)
    local status, out = audit("verify", path, "--config", conf)
    eq(status, 1, name .. ": " .. out)
    contains(out, "FAIL " .. path .. ":" .. where .. ": ", name)
    contains(out, why, name)
  end
  -- a local result's verdict edited: the seal after it no longer holds
  expect(
    "sealed_passed",
    function(d) d.attempts[1].perspectives[1].check_passed = false end,
    2,
    "the line before was edited"
  )
  -- one local result's evidence edited: the seal after it no longer holds
  expect(
    "sealed_edit",
    function(d) d.attempts[1].perspectives[2].evidence.observed.resolver = "203.0.113.9:53" end,
    2,
    "the line before was edited"
  )
  -- without the coordinator's public key, nothing proves the local results
  write(dir .. "/agents-only.yaml", read(conf):gsub("public_keys: %[coord.pub%]", "public_keys: []"))
  local status, out = audit("verify", log, "--config", dir .. "/agents-only.yaml", "--key", dir .. "/coord.pub")
  eq(status, 0, out) -- --key: valid for everything, so the seals verify
end)

-- Lines of logs written before seals carry local_signature (one signature
-- over the line's local statements, mpic.evidence.batch); they still verify.
case("local_signature_lines_still_verify", function()
  local dir, log, conf = signed_log(1)
  local doc = util.json_decode(lines_of(log)[1])
  doc.prev, doc.seq = nil, nil
  -- such lines held a whole statement per local result, as agents sign them
  local req = evidence.request_of("dcv", T.request({ trace_identifier = "t1" }))
  local sts = {}
  local function full(e)
    e.evidence = evidence.statement(
      req,
      { id = e.perspective_code, rir = e.rir },
      { passed = e.check_passed, completed = e.check_completed, errors = e.errors },
      e.evidence.time_ns
    )
    sts[#sts + 1] = e.evidence
  end
  for _, a in ipairs(doc.attempts) do
    a.primary.rir = "ARIN"
    full(a.primary)
    for _, e in ipairs(a.perspectives) do
      full(e)
    end
  end
  local coord = evidence.load_private(dir .. "/coord.key")
  local function old_log(name, signer)
    doc.local_signature = evidence.sign_batch(signer, sts)
    local path = dir .. "/" .. name
    local w = assert(util.audit.open(path, false))
    w:set_key(coord.key) -- no seal_ms: checkpoints only when asked, as before seals
    assert(w:append_blocking(util.json_encode(doc)))
    assert(w:checkpoint_blocking())
    eq(#lines_of(path), 2)
    return path
  end
  local path = old_log("old.jsonl", coord)
  local status, out = audit("verify", path, "--config", conf)
  eq(status, 0, out)
  contains(out, "6 signed results")
  local other = { key = assert(sign.private((sign.generate()))) }
  other.id = other.key:id()
  path = old_log("old-other.jsonl", other)
  status, out = audit("verify", path, "--config", conf)
  eq(status, 1, out)
  contains(out, "FAIL " .. path .. ":1: ")
  contains(out, "unknown key")
end)

-- Lines appended at once share one seal; each append returns only once a
-- seal covering its line is in the file.
case("concurrent_appends_share_a_seal", function()
  local core = require "mpic.core"
  local dir = tmpdir()
  local path = dir .. "/s.jsonl"
  local key = assert(sign.private((sign.generate())))
  write(dir .. "/k.pub", key:public():pem())
  local w = assert(util.audit.open(path, false))
  w:set_key(key, 200)
  assert(w:append('{"n":0}')) -- the first seal; the next ones wait up to 200 ms
  local tasks = {}
  for i = 1, 20 do
    tasks[i] = core.spawn(function()
      assert(w:append(string.format('{"n":%d}', i)))
      -- the line is in the file and a checkpoint follows it
      local ls, mine, sealed = lines_of(path), nil, false
      for k, l in ipairs(ls) do
        local d = util.json_decode(l)
        if d.n == i then mine = k end
        if mine and d.checkpoint and d.checkpoint.lines >= mine then sealed = true end
      end
      return mine ~= nil and sealed
    end)
  end
  for i = 1, 20 do
    local v = core.wait(tasks[i], 5000)
    eq(v, true, "append " .. i .. " returned after its seal")
  end
  local ls = lines_of(path)
  local seals = 0
  for _, l in ipairs(ls) do
    if util.json_decode(l).checkpoint then seals = seals + 1 end
  end
  eq(#ls - seals, 21)
  ok(seals >= 2 and seals <= 4, "21 lines under 2 to 4 seals, got " .. seals)
  ok(util.json_decode(ls[#ls]).checkpoint, "the log ends with a seal")
  local status, out = audit("verify", path, "--key", dir .. "/k.pub")
  eq(status, 0, out)
  T.raises(function() w:set_key(key, 70000) end, "seal_ms")
end)

-- An attacker edits a verdict and re-computes the chain, without the
-- coordinator's key: verify fails at the checkpoint, replay names the line.
case("edited_verdict_with_recomputed_chain", function()
  local dir, log, conf = signed_log(3)
  local lines = lines_of(log)
  local doc = util.json_decode(lines[5]) -- the third validation failed (i % 3 == 0)
  eq(doc.is_valid, false)
  doc.is_valid = true
  doc.attempts[1].verdict = "valid"
  -- rebuild the line keeping prev/seq first, then re-chain everything after it
  local prev = doc.prev
  doc.prev, doc.seq = nil, nil
  local body = util.json_encode(doc):gsub("^{", "")
  lines[5] = string.format('{"prev":"%s","seq":5,%s', prev, body)
  for i = 6, #lines do
    local h = util.hex(util.sha256(lines[i - 1]))
    lines[i] = lines[i]:gsub('^{"prev":"%x+"', '{"prev":"' .. h .. '"', 1)
  end
  local path = dir .. "/rechained.jsonl"
  write_lines(path, lines)
  local status, out = audit("verify", path, "--config", conf)
  eq(status, 1, out)
  contains(out, path .. ":6:")
  contains(out, "checkpoint")
  status, out = audit("replay", path, "--config", conf)
  eq(status, 1, out)
  contains(out, "DISAGREE " .. path .. ":5: attempt 1 recorded valid, the evidence gives invalid")
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
-- chained and sealed like a validation, so a log whose last line is a proof
-- record still ends with a checkpoint.
case("proof_records_are_chained_and_sealed", function()
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
    },
  })
  local dnssec_check = require "mpic.dnssec_check"
  assert(dnssec_check.audit(cfg, "start", true, "the proof holds", 3))
  eq(T.scenario { config = cfg, policy = "policies/br.lua", date = DATE, outcomes = { ["*"] = "pass" } }.status, 200)
  assert(dnssec_check.audit(cfg, "periodic", false, "SERVFAIL expected", 4))
  local ls = lines_of(dir .. "/audit.jsonl")
  eq(#ls, 6)
  local docs = {}
  for i, l in ipairs(ls) do
    docs[i] = util.json_decode(l)
  end
  eq(docs[1].event, "primary_dnssec_proof")
  eq(docs[1].seq, 1)
  eq(docs[2].checkpoint.lines, 1)
  eq(docs[3].trace_identifier ~= nil, true)
  eq(docs[4].checkpoint.lines, 3)
  eq(docs[5].event, "primary_dnssec_proof")
  eq(docs[5].phase, "periodic")
  eq(docs[6].checkpoint.lines, 5)
  local status, out = audit("verify", dir .. "/audit.jsonl", "--key", dir .. "/coord.pub")
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
