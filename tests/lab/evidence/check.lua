-- The checks of tests/lab/test_evidence.sh on the coordinator's audit log
-- and answers (the coordinator has stopped): usage: mpic run check.lua MPIC WORK
-- Every tampering is done on a copy of the log; the real one is left as written.
local util = require "mpic.core.util"
local sign = require "mpic.core.sign"
local evidence = require "mpic.evidence"

local MPIC, WORK = arg[1], arg[2]
assert(MPIC and WORK, "usage: mpic run check.lua MPIC WORK")
local LOG, CONF = WORK .. "/audit.jsonl", WORK .. "/coordinator.yaml"
local SIG_ERROR = "mpic_error:coordinator:signature"
local passed = 0

local function check(cond, fmt, ...)
  if not cond then error("FAIL: " .. string.format(fmt, ...), 0) end
  passed = passed + 1
end

local function read(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("a")
  f:close()
  return s
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function lines_of(text)
  local out = {}
  for l in text:gmatch("([^\n]*)\n") do
    out[#out + 1] = l
  end
  return out
end

local function joined(t) return table.concat(t, "\n") .. "\n" end

local function q(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- run `mpic audit ARGS...`: exit status, output (stdout and stderr)
local function audit(...)
  local parts = { q(MPIC), "audit" }
  for _, a in ipairs({ ... }) do
    parts[#parts + 1] = q(a)
  end
  local p = assert(io.popen(table.concat(parts, " ") .. ' 2>&1; echo "__status=$?"'))
  local out = p:read("a")
  p:close()
  local status = tonumber(out:match("__status=(%d+)%s*$"))
  return status, out:gsub("__status=%d+%s*$", "")
end

local function has(out, s) return out:find(s, 1, true) ~= nil end

-- verify a tampered copy: exit 1, the first failure named at FILE:LINE with why
local function caught(name, text, line, why)
  local path = WORK .. "/tampered-" .. name .. ".jsonl"
  write(path, text)
  local status, out = audit("verify", path, "--config", CONF)
  check(status == 1, "%s: verify exits 1, got %s: %s", name, tostring(status), out)
  check(has(out, "FAIL " .. path .. ":" .. line .. ":"), "%s: the failure names line %d: %s", name, line, out)
  check(has(out, why), "%s: the failure says %q: %s", name, why, out)
  print(string.format("ok   %-22s caught at line %d: %s", name, line, (out:match("FAIL [^\n]*") or ""):sub(#path + 6)))
end

local function perspective_of(list, id)
  for _, e in ipairs(list or {}) do
    if e.perspective_code == id then return e end
  end
end

-- the answers: the rogue agent (jnb) failed with the signature error type,
-- the verdicts came from the others --------------------------------------
local want = { ["ev-1"] = true, ["ev-2"] = true, ["ev-3"] = false, ["ev-4"] = true, ["ev-5"] = true }
for trace, valid in pairs(want) do
  local a = util.json_decode(read(WORK .. "/answer-" .. trace .. ".json"))
  check(
    type(a) == "table" and a.is_valid == valid,
    "%s: is_valid %s, got %s",
    trace,
    tostring(valid),
    read(WORK .. "/answer-" .. trace .. ".json"):sub(1, 600)
  )
  local j = perspective_of(a.perspectives, "jnb")
  check(j and j.check_response.check_passed == false, "%s: jnb did not pass", trace)
  local errs = j.check_response.errors
  check(
    type(errs) == "table" and errs[1] and errs[1].error_type == SIG_ERROR,
    "%s: jnb's error type is %s: %s",
    trace,
    SIG_ERROR,
    util.json_encode(errs)
  )
  check(
    has(errs[1].error_message, "unknown key"),
    "%s: jnb's error says the key is unknown: %s",
    trace,
    tostring(errs[1].error_message)
  )
end
print("ok   answers: verdicts as expected; jnb (unknown key) failed with " .. SIG_ERROR .. " and was outvoted")

-- the log as written ------------------------------------------------------
local text = read(LOG)
local lines = lines_of(text)
-- one validation at a time: validation ev-k is line 2k-1, and line 2k is
-- the seal written with it (a signed checkpoint) before its answer left
check(#lines == 10, "5 validation lines, each followed by its seal, got %d lines", #lines)
local docs = {}
for i, l in ipairs(lines) do
  docs[i] = util.json_decode(l)
end
local coord = assert(sign.public(read(WORK .. "/keys/coordinator.pub")))
for k = 1, 5 do
  local i = 2 * k - 1
  local d = docs[i]
  check(d.seq == i and d.checkpoint == nil and d.trace_identifier == "ev-" .. k, "line %d is validation ev-%d", i, k)
  local cp = docs[i + 1].checkpoint
  check(
    type(cp) == "table" and cp.lines == i and cp.head == util.hex(util.sha256(lines[i])) and cp.key_id == coord:id(),
    "line %d is the seal of line %d, signed by the coordinator's key: %s",
    i + 1,
    i,
    lines[i + 1]
  )
  check(
    coord:verify(sign.canonical(cp), util.base64_decode(docs[i + 1].signature)),
    "the seal's signature verifies with the coordinator's public key alone"
  )
  local att = d.attempts[1]
  -- the primary is local: its statement is proven by the seal after the line
  check(
    att.primary.perspective_code == "loc" and type(att.primary.evidence) == "table" and att.primary.signature == nil,
    "line %d: the local primary carries its statement",
    i
  )
  check(d.local_signature == nil, "line %d: no signature of its own for the local results", i)
  for _, e in ipairs(att.perspectives) do
    if e.perspective_code == "jnb" then
      check(
        e.check_passed == false and e.signature == nil and e.errors[1].error_type == SIG_ERROR,
        "line %d: jnb recorded as failed with the signature error, unsigned",
        i
      )
    elseif not e.cancelled then
      check(
        type(e.signature) == "table" and type(e.evidence) == "table",
        "line %d: %s's answer carries its own signature and evidence",
        i,
        e.perspective_code
      )
    end
  end
end
print("ok   the log: 5 chained validation lines, each sealed by a signed checkpoint")

local status, out = audit("verify", LOG, "--config", CONF)
check(status == 0 and has(out, "ok: 10 lines, 5 checkpoints"), "verify of the log as written: %s", out)
print("ok   verify: " .. (out:match("ok: [^\n]*") or ""))
status, out = audit("replay", LOG, "--config", CONF)
check(status == 0 and has(out, "replay: 5 verdicts agree, 0 disagree"), "replay of the log as written: %s", out)
print("ok   replay: " .. (out:match("replay: [^\n]*") or ""))

-- every edit is caught and named (on copies) ------------------------------
do -- one byte flipped in ev-2's time stamp (line 3): its seal (line 4) no longer chains to it
  local t = { table.unpack(lines) }
  local s, e = t[3]:find('"ts":"%d%d%d%d%-')
  check(s, "line 3 has a ts")
  local pos = e - 1 -- the last digit of the year
  local c = t[3]:sub(pos, pos)
  t[3] = t[3]:sub(1, pos - 1) .. string.char(c:byte() ~ 1) .. t[3]:sub(pos + 1)
  caught("flip_byte", joined(t), 4, "the line before was edited")
end
do -- one byte flipped in the line's own target (not a statement's): the signed requests are another's
  local t = { table.unpack(lines) }
  local from, flipped = 1, nil
  while not flipped do
    local s = t[3]:find('"target":"ev.test"', from, true)
    check(s, "line 3 has the target outside the evidence")
    local pos = s + #'"target":"'
    local cand = t[3]:sub(1, pos - 1) .. string.char(t[3]:byte(pos) ~ 2) .. t[3]:sub(pos + 1)
    if util.json_decode(cand).target ~= "ev.test" then flipped = cand end
    from = pos
  end
  t[3] = flipped
  caught("flip_target", joined(t), 3, "is not the line's")
end
local function pick(...)
  local t = {}
  for _, i in ipairs({ ... }) do
    t[#t + 1] = lines[i]
  end
  return joined(t)
end
caught("delete_line", pick(1, 2, 4, 5, 6, 7, 8, 9, 10), 3, "1 line(s) removed")
caught("swap_lines", pick(1, 2, 5, 4, 3, 6, 7, 8, 9, 10), 3, "removed")
caught("truncate_inside", text:sub(1, #text - #lines[10] - 30), 9, "truncated inside a line")
-- cut after ev-3: its seal is gone
caught("truncate_lines", pick(1, 2, 3, 4, 5), 5, "no signed checkpoint seals")
do -- an agent's answer re-signed with another key (the rogue one)
  local rogue = evidence.load_private(WORK .. "/keys/rogue.pem")
  local d = util.json_decode(lines[1])
  local e = perspective_of(d.attempts[1].perspectives, "pdx")
  e.signature = evidence.sign(rogue, e.evidence)
  local t = { table.unpack(lines) }
  t[1] = util.json_encode(d)
  caught("other_agent_key", joined(t), 1, "perspective pdx: signed by an unknown key")
end
do -- an agent's signed result edited (passed turned into failed)
  local d = util.json_decode(lines[3])
  local e = perspective_of(d.attempts[1].perspectives, "fra")
  e.evidence.result.passed = false
  e.check_passed = false
  local t = { table.unpack(lines) }
  t[3] = util.json_encode(d)
  caught("edit_agent_result", joined(t), 3, "perspective fra: the signature does not verify")
end
do -- the local primary's result in ev-4 (line 7) edited: its seal breaks
  local d = util.json_decode(lines[7])
  d.attempts[1].primary.evidence.observed.records = {}
  local t = { table.unpack(lines) }
  t[7] = util.json_encode(d)
  caught("edit_local_result", joined(t), 8, "the line before was edited")
end

-- replay: an edited verdict whose chain is re-computed without the
-- coordinator's key: verify fails at the checkpoint, replay names the line
do
  local t = { table.unpack(lines) }
  local d = util.json_decode(t[5])
  check(d.is_valid == false and d.attempts[1].verdict == "invalid", "line 5 (ev-3) is the invalid validation")
  d.is_valid, d.attempts[1].verdict, d.reason = true, "valid", "quorum met"
  local prev, seq = d.prev, d.seq
  d.prev, d.seq = nil, nil
  t[5] = string.format('{"prev":"%s","seq":%d,%s', prev, seq, util.json_encode(d):sub(2))
  for i = 6, #t do
    local h = util.hex(util.sha256(t[i - 1]))
    t[i] = t[i]:gsub('^{"prev":"%x+"', '{"prev":"' .. h .. '"', 1)
  end
  -- ev-3's seal made to name the new head, its old signature kept
  local c = util.json_decode(t[6])
  c.checkpoint.head = c.prev
  local cprev, cseq = c.prev, c.seq
  c.prev, c.seq = nil, nil
  t[6] = string.format('{"prev":"%s","seq":%d,%s', cprev, cseq, util.json_encode(c):sub(2))
  local path = WORK .. "/tampered-verdict.jsonl"
  write(path, joined(t))
  status, out = audit("verify", path, "--config", CONF)
  check(
    status == 1 and has(out, "FAIL " .. path .. ":6: the checkpoint's signature does not verify"),
    "the re-chained log fails at its checkpoint: %s",
    out
  )
  status, out = audit("replay", path, "--config", CONF)
  check(
    status == 1 and has(out, "DISAGREE " .. path .. ":5: attempt 1 recorded valid, the evidence gives invalid"),
    "replay names the edited verdict: %s",
    out
  )
  check(has(out, "replay: 4 verdicts agree, 1 disagree"), "replay agrees with the 4 other verdicts: %s", out)
  print(
    "ok   edited verdict, chain re-computed: verify fails at the checkpoint, replay: "
      .. (out:match("DISAGREE [^\n]*") or ""):sub(#path + 10)
  )
end

print(string.format("evidence lab: %d checks passed", passed))
