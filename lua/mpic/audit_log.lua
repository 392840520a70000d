-- mpic.audit_log: the one way to write an audit line (docs/EVIDENCE.md).
--
-- Every line, whoever writes it (a validation, a DNSSEC proof, any record
-- added later), goes through the chained writer of core/audit.c: one writer
-- per path for the process, the coordinator's checkpoint key set on it
-- (audit.signing_key). With a key, the writer seals every batch: a signed
-- checkpoint right after its last line, written with it, before any of its
-- lines is handed back (under load at most one seal per audit.seal_ms, the
-- lines queued meanwhile sharing it); this signature is what proves the
-- local perspectives' results, and a sealed log always ends with a
-- checkpoint (audit.checkpoint_interval_s is accepted and no longer needed:
-- no line waits longer than seal_ms for its checkpoint).
--   append(cfg, line [, signer]) -> true | nil, why
--     line: a table (JSON-encoded here) or the JSON text of an object.
--     Inside a task the task waits for its line (group commit with the
--     others); outside any task the caller blocks until it is written.
--     signer: the loaded audit.signing_key ({key, id}; loaded from cfg when
--     absent).
local util = require "mpic.core.util"
local mpic_core = require "mpic.core"

local M = {}
local type, tostring = type, tostring

-- by path: {w = writer, key_id = the key set on it}
local logs = {}
-- the checkpoint key of a configuration, loaded once: {key, id} or false
local signers = setmetatable({}, { __mode = "k" })

local function signer_of(cfg, signer)
  if signer then return signer end
  local s = signers[cfg]
  if s == nil then
    s = false
    if cfg.audit.signing_key then
      local err
      s, err = require("mpic.evidence").load_private(cfg.audit.signing_key)
      if not s then return nil, err end
    end
    signers[cfg] = s
  end
  return s
end

--- The log state of cfg's audit path (its writer opened once, the
--- checkpoint key set): log, signer | nil, why.
function M.open(cfg, signer)
  local path = cfg.audit.path
  local log = logs[path]
  if not log then
    local w, _, detail = util.audit.open(path, cfg.audit.fsync)
    if not w then return nil, detail end
    log = { w = w }
    logs[path] = log
  end
  local s, err = signer_of(cfg, signer)
  if s == nil then return nil, err end
  if s and log.key_id ~= s.id then
    log.w:set_key(s.key, cfg.audit.seal_ms or 10)
    log.key_id = s.id
  end
  return log, s
end

--- Append one audit line (see the header).
function M.append(cfg, line, signer)
  local text = line
  if type(line) == "table" then
    local err
    text, err = util.json_encode(line)
    if not text then return nil, "audit encode: " .. tostring(err) end
  end
  local log, lerr = M.open(cfg, signer)
  if not log then return nil, lerr end
  local ok, _, aerr
  if mpic_core.current() then
    ok, _, aerr = log.w:append(text)
  else
    ok, _, aerr = log.w:append_blocking(text)
  end
  if not ok then return nil, aerr end
  return true
end

--- The writer of cfg's audit path (opened once; its checkpoint key set).
function M.writer(cfg, signer)
  local log, err = M.open(cfg, signer)
  if not log then return nil, err end
  return log.w
end

return M
