-- mpic.cmd.audit: `mpic audit verify` and `mpic audit replay` (docs/EVIDENCE.md).
--
-- verify FILE... [--config F] [--key PEM ...] [--open]
--   Checks, line by line and across the files in the order given: the chain
--   (seq one more than the line before, prev the SHA-256 of the line
--   before), every checkpoint's signature and that it names the line before
--   it, every perspective result's signature over its evidence and that the
--   evidence says what the line records, that every line's local results
--   are sealed by a signed checkpoint after it (always, even with --open: the
--   writer writes the seal with the lines), and that the last file ends with
--   a checkpoint (unless --open: a log still being written). A file whose
--   first line starts a chain (seq 1) is another writer's (the workers of
--   `serve --workers N` write PATH, PATH.w1, ...: give them all); the chain
--   before it must then end with a checkpoint too. Exits 0 when all
--   hold, 1 naming the first line that fails, 2 on usage errors. Keys: the
--   coordinator's (audit.public_keys and the public half of
--   audit.signing_key) for checkpoints and local perspectives, each agent's
--   (agent.public_keys) for its perspective, all from --config; --key adds
--   keys valid for everything.
-- replay FILE... [--config F] [--trace ID] [--policy-store DIR] [--key PEM ...]
--   Judges every validation line again: each perspective's result from its
--   signature-checked evidence (a result whose signature does not hold
--   counts as failed), through the policy whose SHA-256 the line records
--   (from the policy store, audit.policy_store), with the BR floor; reports
--   every line whose recorded verdict that does not give. Exits 1 when one
--   disagrees or the chain does not verify.
local util = require "mpic.core.util"
local evidence = require "mpic.evidence"
local sign = require "mpic.core.sign"

local M = {}
local io_stderr, io_open, type, ipairs, pairs, tostring, string_format =
  io.stderr, io.open, type, ipairs, pairs, tostring, string.format

local ZERO = string.rep("0", 64)

--- Where the report goes (tests replace it).
function M.write(...) io.stdout:write(...) end
local USAGE = "usage: mpic audit verify FILE... [--config F] [--key PEM ...] [--open]\n"
  .. "       mpic audit replay FILE... [--config F] [--trace ID] [--policy-store DIR] [--key PEM ...]"

local function is_null(v) return v == nil or v == util.null end

--[[ The keys an auditor has: {coordinator = {[id] = pub}, agents = {[pid] =
{[id] = pub}}, extra = {[id] = pub}, remote = {[pid] = true}, cfg}. ]]
local function load_keys(opts)
  local keys = { coordinator = {}, agents = {}, extra = {}, remote = {} }
  if opts.config then
    local cfg, err = require("mpic").load_config(opts.config)
    if not cfg then return nil, err end
    keys.cfg = cfg
    local list = {}
    for _, k in ipairs(cfg.audit.public_keys or {}) do
      list[#list + 1] = k
    end
    local c, cerr = evidence.load_public(list)
    if not c then return nil, cerr end
    keys.coordinator = c
    if cfg.audit.signing_key then
      local own = evidence.load_private(cfg.audit.signing_key)
      if own then keys.coordinator[own.id] = own.key:public() end
    end
    for _, p in ipairs(cfg.perspectives) do
      if p.agent then
        keys.remote[p.id] = true
        if p.agent.public_keys then
          local a, aerr = evidence.load_public(p.agent.public_keys)
          if not a then return nil, aerr end
          keys.agents[p.id] = a
        end
      end
    end
  end
  local e, eerr = evidence.load_public(opts.key or {})
  if not e then return nil, eerr end
  keys.extra = e
  keys.any = next(keys.coordinator) ~= nil or next(keys.extra) ~= nil or next(keys.agents) ~= nil
  return keys
end

local function merged(a, b)
  local out = {}
  for k, v in pairs(a or {}) do
    out[k] = v
  end
  for k, v in pairs(b or {}) do
    out[k] = v
  end
  return out
end

-- The keys valid for a perspective's signature (nil when none are known).
local function keys_for(keys, pid)
  local set = keys.remote[pid] and keys.agents[pid] or (not keys.remote[pid] and keys.coordinator) or nil
  set = merged(set, keys.extra)
  return next(set) and set or nil
end

local function checkpoint_keys(keys)
  local set = merged(keys.coordinator, keys.extra)
  return next(set) and set or nil
end

-- Each perspective entry of a validation line: entry, attempt index, role.
local function entries(doc)
  local out = {}
  for ai, att in ipairs(type(doc.attempts) == "table" and doc.attempts or {}) do
    if type(att) == "table" then
      if type(att.primary) == "table" then out[#out + 1] = { e = att.primary, attempt = ai, primary = true } end
      for _, e in ipairs(type(att.perspectives) == "table" and att.perspectives or {}) do
        if type(e) == "table" then out[#out + 1] = { e = e, attempt = ai } end
      end
    end
  end
  return out
end

-- Whether an entry's result is one of the line's local results: evidence and
-- no signature of its own. They are proven by the signed checkpoint that
-- seals the line's write batch (the next checkpoint in the chain), or, in
-- lines of logs written before seals, by the line's local_signature.
local function in_batch(e) return is_null(e.signature) and type(e.evidence) == "table" end

-- A line's local_signature over its local results (mpic.evidence.batch):
-- true when it verifies with a coordinator key, or nil, why (cached per line).
local batch_cache = setmetatable({}, { __mode = "k" })
local function check_batch(keys, doc)
  local c = batch_cache[doc]
  if c then return c[1], c[2] end
  local sts, ok, why = {}, nil, nil
  for _, en in ipairs(entries(doc)) do
    if in_batch(en.e) then
      local pid = en.e.perspective_code
      if keys.remote[pid] then
        why = string_format("perspective %s is an agent's: its result needs the agent's own signature", tostring(pid))
        break
      end
      sts[#sts + 1] = en.e.evidence
    end
  end
  if not why then
    local set = checkpoint_keys(keys)
    if is_null(doc.local_signature) then
      why = "local results with evidence but no local_signature"
    elseif not set then
      why = "no coordinator public key for the local results' signature (--config, --key)"
    else
      ok, why = evidence.verify_batch(set, sts, doc.local_signature)
      if not ok then why = "local results (local_signature): " .. tostring(why) end
    end
  end
  batch_cache[doc] = { ok, why }
  return ok, why
end

--[[ Check one entry's signature and that its evidence says what the line
records. Returns "signed" | "unsigned", or nil, why. ]]
local function check_entry(keys, doc, e)
  local pid = e.perspective_code
  local set = keys_for(keys, pid)
  if in_batch(e) then
    if not keys.any then return "unchecked" end
    if is_null(doc.local_signature) then
      if keys.remote[pid] then
        return nil,
          string_format("perspective %s is an agent's: its result needs the agent's own signature", tostring(pid))
      end
      if not checkpoint_keys(keys) then
        return nil, "no coordinator public key for the seal of the local results (--config, --key)"
      end
      -- proven with the whole line once the next checkpoint verifies (walk):
      -- its evidence is what the check saw; its result is the entry's own
      return "sealed"
    else
      local ok, why = check_batch(keys, doc)
      if not ok then return nil, why end
    end
  elseif is_null(e.signature) then
    if e.cancelled then return "unsigned" end
    if set and e.check_passed == true then
      return nil, string_format("perspective %s passed without a signature", tostring(pid))
    end
    return "unsigned"
  end
  if not set and not in_batch(e) then
    if not keys.any then return "unchecked" end -- no keys at all: said in the report
    return nil,
      string_format("perspective %s is signed, but no public key for it is known (--config, --key)", tostring(pid))
  end
  local st = e.evidence
  if type(st) ~= "table" then
    return nil, string_format("perspective %s: a signature without evidence", tostring(pid))
  end
  if not in_batch(e) then
    local ok, why = evidence.verify(set, st, e.signature)
    if not ok then return nil, string_format("perspective %s: %s", tostring(pid), why) end
  end
  local r, rq, pp = st.result or {}, st.request or {}, st.perspective or {}
  if pp.id ~= pid then
    return nil, string_format("perspective %s: the evidence is %s's", tostring(pid), tostring(pp.id))
  end
  local signed_pass = r.passed == true and r.completed == true
  if signed_pass ~= (e.check_passed == true) or (r.completed == true) ~= (e.check_completed == true) then
    return nil,
      string_format(
        "perspective %s: the line records check_passed=%s, the signed result says %s",
        tostring(pid),
        tostring(e.check_passed),
        tostring(r.passed == true and r.completed == true)
      )
  end
  if rq.target ~= doc.target or rq.check_type ~= doc.check_type then
    return nil,
      string_format(
        "perspective %s: the signed request (%s %s) is not the line's (%s %s)",
        tostring(pid),
        tostring(rq.check_type),
        tostring(rq.target),
        tostring(doc.check_type),
        tostring(doc.target)
      )
  end
  return "signed"
end

local function read_lines(path)
  local f, err = io_open(path, "rb")
  if not f then return nil, err end
  local data = f:read("a")
  f:close()
  local lines, pos = {}, 1
  while pos <= #data do
    local nl = data:find("\n", pos, true)
    if not nl then
      lines[#lines + 1] = { text = data:sub(pos), partial = true }
      break
    end
    lines[#lines + 1] = { text = data:sub(pos, nl - 1) }
    pos = nl + 1
  end
  return lines
end

--[[ Walk the files. on_line(doc, where) is called for every validation line
that passed; stops at the first failure unless keep_going. Returns a
summary {lines, checkpoints, signed, unsigned, failures = {where .. why}}. ]]
local function walk(files, keys, opts, on_line, keep_going)
  local sum = { lines = 0, checkpoints = 0, signed = 0, unsigned = 0, unchecked = 0, failures = {}, notes = {} }
  local prev_hash, prev_seq, last_cp_where, last_where, last_is_cp
  -- local results waiting for the checkpoint that seals them: the first
  -- line holding some, and how many
  local unsealed_where, unsealed = nil, 0
  local function fail(where, why)
    sum.failures[#sum.failures + 1] = where .. ": " .. why
    return not keep_going
  end
  local function unsealed_fails()
    if unsealed == 0 then return false end
    local w = unsealed_where
    unsealed_where, unsealed = nil, 0
    return fail(
      w,
      "local results that no signed checkpoint seals: the seal written with the line was removed, "
        .. "or the line was added by someone without the coordinator's key"
    )
  end
  for _, path in ipairs(files) do
    local lines, rerr = read_lines(path)
    if not lines then
      if fail(path, "cannot read: " .. tostring(rerr)) then return sum end
      lines = {}
    end
    if #lines == 0 then sum.notes[#sum.notes + 1] = path .. " is empty" end
    for i, l in ipairs(lines) do
      local where = string_format("%s:%d", path, i)
      local before, before_cp = last_where, last_is_cp
      last_where, last_is_cp = where, false
      sum.lines = sum.lines + 1
      local doc = util.json_decode(l.text)
      if l.partial then
        if fail(where, "the last line has no newline: the file was truncated inside a line") then return sum end
      elseif type(doc) ~= "table" then
        if fail(where, "not a JSON object: the line was edited or truncated") then return sum end
      elseif type(doc.prev) ~= "string" or math.type(doc.seq) ~= "integer" then
        if fail(where, "not chained (no prev/seq): a line inserted by hand, or written by another program") then
          return sum
        end
      else
        -- the chain: seq first (removed, inserted, reordered), then prev (edited)
        if prev_seq == nil then
          if doc.prev == ZERO and doc.seq ~= 1 then
            if fail(where, "a chain start (prev zero) with seq " .. doc.seq) then return sum end
          elseif doc.prev ~= ZERO then
            sum.notes[#sum.notes + 1] =
              string_format("%s starts mid-chain at seq %d: the file before it was not given", where, doc.seq)
          end
        elseif doc.prev == ZERO and doc.seq == 1 then
          sum.notes[#sum.notes + 1] = where .. " starts a new chain (a log begun afresh, or another writer's file)"
          if unsealed_fails() then return sum end
          -- another writer's file (`serve --workers`: PATH.w1, ...): the chain before it ends as a log does
          if i == 1 and before and not before_cp and not opts.open and checkpoint_keys(keys) then
            if
              fail(
                before,
                "the log ends without a signed checkpoint before the next file's chain: lines were "
                  .. "removed from its end, or its writer did not stop cleanly (--open for logs still written)"
              )
            then
              return sum
            end
          end
        elseif doc.seq ~= prev_seq + 1 then
          local why = doc.seq > prev_seq + 1
              and string_format(
                "seq %d follows seq %d: %d line(s) removed before this one",
                doc.seq,
                prev_seq,
                doc.seq - prev_seq - 1
              )
            or string_format("seq %d follows seq %d: lines reordered or inserted", doc.seq, prev_seq)
          if fail(where, why) then return sum end
        elseif doc.prev ~= prev_hash then
          if
            fail(where, "prev is not the SHA-256 of the line before: the line before was edited (or one replaced)")
          then
            return sum
          end
        end
        if doc.checkpoint ~= nil then
          local cp = doc.checkpoint
          local set = checkpoint_keys(keys)
          if type(cp) ~= "table" or type(doc.signature) ~= "string" then
            if fail(where, "a malformed checkpoint") then return sum end
          elseif cp.head ~= doc.prev or cp.lines ~= doc.seq - 1 then
            if fail(where, "the checkpoint does not name the line before it") then return sum end
          elseif not set then
            sum.notes[#sum.notes + 1] = where .. ": checkpoint not checked (no coordinator public key given)"
          else
            local pub = set[cp.key_id]
            local raw = util.base64_decode(doc.signature)
            local text = sign.canonical(cp)
            if not pub then
              if fail(where, "checkpoint signed by an unknown key " .. tostring(cp.key_id):sub(1, 16)) then
                return sum
              end
            elseif not (raw and text and pub:verify(text, raw)) then
              if fail(where, "the checkpoint's signature does not verify") then return sum end
            else
              sum.checkpoints = sum.checkpoints + 1
              sum.signed = sum.signed + unsealed
              unsealed_where, unsealed = nil, 0
              last_cp_where, last_is_cp = where, true
            end
          end
        else
          local bad
          local ens = entries(doc)
          for pass = 1, 2 do -- results with their own signature first, then the locally signed ones
            for _, en in ipairs(ens) do
              if (pass == 2) == in_batch(en.e) then
                local kind, why = check_entry(keys, doc, en.e)
                if not kind then
                  bad = why
                  break
                end
                if kind == "sealed" then
                  unsealed_where, unsealed = unsealed_where or where, unsealed + 1
                else
                  sum[kind] = sum[kind] + 1
                end
              end
            end
            if bad then break end
          end
          if bad and fail(where, bad) then return sum end
          if on_line then on_line(doc, where) end
        end
        prev_seq = doc.seq
      end
      prev_hash = util.hex(util.sha256(l.text))
    end
  end
  if unsealed_fails() then return sum end
  if last_where and not last_is_cp and not opts.open and checkpoint_keys(keys) then
    fail(
      last_where,
      "the log ends without a signed checkpoint"
        .. (last_cp_where and (" (the last is at " .. last_cp_where .. ")") or "")
        .. ": lines were removed from its end, or the coordinator did not stop cleanly (--open for a log still written)"
    )
  end
  return sum
end

local function report(sum, keys)
  for _, n in ipairs(sum.notes) do
    M.write("note: ", n, "\n")
  end
  if not keys.any then
    M.write(
      "note: no public keys given: signatures and checkpoints are not checked; the chain proves ",
      "order and that no line inside it changed, not that the log is whole or that perspectives said so\n"
    )
  end
  if sum.unsigned > 0 then
    M.write(
      string_format("note: %d result(s) carry no signature (failed or cancelled checks, or ", sum.unsigned),
      "perspectives without a configured key)\n"
    )
  end
end

-- The options, files and keys of `mpic audit VERB`, or nil after writing
-- the problem to stderr.
local function command_line(verb, args, spec)
  local cli = require "mpic.cmd.cli"
  local opts, files = cli.parse_opts(args, spec, 3)
  if not opts then
    io_stderr:write("mpic audit ", verb, ": ", files, "\n", USAGE, "\n")
    return nil
  end
  if #files == 0 then
    io_stderr:write(USAGE, "\n")
    return nil
  end
  local keys, kerr = load_keys(opts)
  if not keys then
    io_stderr:write("mpic audit ", verb, ": ", tostring(kerr), "\n")
    return nil
  end
  return opts, files, keys
end

function M.verify(args)
  local opts, files, keys = command_line("verify", args, { config = "value", key = "list", open = "flag" })
  if not opts then return 2 end
  local sum = walk(files, keys, opts)
  report(sum, keys)
  if #sum.failures > 0 then
    M.write("FAIL ", sum.failures[1], "\n")
    return 1
  end
  M.write(
    string_format(
      "ok: %d lines, %d checkpoints, %d signed results, %d unsigned, %d signatures unchecked\n",
      sum.lines,
      sum.checkpoints,
      sum.signed,
      sum.unsigned,
      sum.unchecked
    )
  )
  return 0
end

-- The public record of a perspective as decide() sees it (from the config
-- when given, else what the line says).
local function public_of(keys, id, rir, primary_id)
  local cfg = keys.cfg
  for _, p in ipairs(cfg and cfg.perspectives or {}) do
    if p.id == id then
      return {
        id = id,
        rir = p.rir,
        location = { lat = p.location.lat, lon = p.location.lon },
        provider = p.provider,
        remote = p.agent ~= nil,
        is_primary = id == primary_id,
      }
    end
  end
  return {
    id = id,
    rir = rir,
    location = { lat = 0, lon = 0 },
    remote = keys.remote[id] or false,
    is_primary = id == primary_id,
  }
end

-- A slot of the attempt from an entry: its result from the signed evidence
-- (failed when the signature does not hold; the recorded one when no key is
-- known at all), or none for a check cancelled once the verdict was certain.
-- A sealed local result counts as proven here: the walk fails the whole
-- replay when no signed checkpoint follows its line.
local function slot_of(keys, doc, e)
  local slot = { id = e.perspective_code, rir = e.rir, after_verdict = e.after_verdict == true }
  local passed, completed
  local kind = type(e.evidence) == "table" and (not is_null(e.signature) or keys.any) and check_entry(keys, doc, e)
  if kind == "sealed" then
    passed, completed = e.check_passed == true, e.check_completed == true
  elseif kind == "signed" then
    local r = e.evidence.result or {}
    passed, completed = r.passed == true and r.completed == true, r.completed == true
  elseif keys_for(keys, e.perspective_code) then
    passed, completed = false, false -- no proof: counts as failed
  else
    passed, completed = e.check_passed == true, e.check_completed == true
  end
  slot.result = { passed = passed, completed = completed }
  return slot
end

local function judge(orch, pol, keys, doc, att)
  local primary_id = type(att.primary) == "table" and att.primary.perspective_code or nil
  local slots, pub = {}, {}
  for i, e in ipairs(att.perspectives or {}) do
    slots[i] = slot_of(keys, doc, e)
    pub[e.perspective_code] = public_of(keys, e.perspective_code, e.rir, primary_id)
  end
  local primary_slot
  if primary_id then
    primary_slot = slot_of(keys, doc, att.primary)
    pub[primary_id] = public_of(keys, primary_id, nil, primary_id)
  end
  local cfg_like = { lab = { policy_floor = doc.policy_floor } }
  local function decide(include_late)
    local vs, vp = {}, nil
    for i, s in ipairs(slots) do
      vs[i] = { id = s.id, rir = s.rir, result = (include_late or not s.after_verdict) and s.result or nil }
    end
    if primary_slot then
      vp = {
        id = primary_slot.id,
        rir = primary_slot.rir,
        result = (include_late or not primary_slot.after_verdict) and primary_slot.result or nil,
      }
    end
    local v, why, info = pol:decide_owned(orch.state_for(pub, vs, vp, #vs, doc.quorum_count, doc.date))
    return orch.floor(cfg_like, vs, vp, doc.date, v, why, info)
  end
  local v, why = decide(false)
  if v == "undecided" then
    v, why = decide(true)
  end
  if v == "undecided" then v = "invalid" end
  return v, why
end

function M.replay(args)
  local opts, files, keys = command_line(
    "replay",
    args,
    { config = "value", key = "list", trace = "value", ["policy-store"] = "value", open = "flag" }
  )
  if not opts then return 2 end
  local store = opts["policy-store"] or (keys.cfg and keys.cfg.audit.policy_store) or (files[1] .. ".policies")
  local orch = require "mpic.orchestrator"
  local policy_mod = require "mpic.policy"
  local policies = {}
  local agreed, disagreed, skipped = 0, {}, 0
  local function on_line(doc, where)
    if opts.trace and doc.trace_identifier ~= opts.trace then return end
    if type(doc.attempts) ~= "table" or #doc.attempts == 0 or type(doc.policy_sha256) ~= "string" then
      skipped = skipped + 1
      return
    end
    local pol = policies[doc.policy_sha256]
    if pol == nil then
      local perr
      pol, perr = policy_mod.load(store .. "/" .. doc.policy_sha256:gsub("[^%x]", "") .. ".lua")
      if not pol then pol = { err = perr } end
      policies[doc.policy_sha256] = pol
    end
    if pol.err then
      disagreed[#disagreed + 1] = where
        .. ": policy "
        .. doc.policy_sha256:sub(1, 16)
        .. " is not in the store: "
        .. pol.err
      return
    end
    local final
    for ai, att in ipairs(doc.attempts) do
      local v, why = judge(orch, pol, keys, doc, att)
      if v ~= att.verdict then
        disagreed[#disagreed + 1] = string_format(
          "%s: attempt %d recorded %s, the evidence gives %s (%s)",
          where,
          ai,
          tostring(att.verdict),
          v,
          tostring(why)
        )
        return
      end
      final = v
    end
    local valid = final == "valid" and is_null(doc.error)
    if valid ~= (doc.is_valid == true) then
      disagreed[#disagreed + 1] =
        string_format("%s: recorded is_valid=%s, the evidence gives %s", where, tostring(doc.is_valid), tostring(valid))
      return
    end
    agreed = agreed + 1
  end
  local sum = walk(files, keys, opts, on_line, true)
  report(sum, keys)
  for _, f in ipairs(sum.failures) do
    M.write("FAIL chain: ", f, "\n")
  end
  for _, d in ipairs(disagreed) do
    M.write("DISAGREE ", d, "\n")
  end
  M.write(
    string_format("replay: %d verdicts agree, %d disagree, %d lines without a verdict\n", agreed, #disagreed, skipped)
  )
  return (#disagreed > 0 or #sum.failures > 0) and 1 or 0
end

function M.main(args)
  local sub = args[2]
  if sub == "verify" then return M.verify(args) end
  if sub == "replay" then return M.replay(args) end
  io_stderr:write(USAGE, "\n")
  return 2
end

return M
