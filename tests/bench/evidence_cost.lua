-- CPU per validation with and without signed evidence: N in-process
-- validations with scripted perspectives (every check passes at once), the
-- audit log without fsync; prints CPU ms per validation (os.clock) for each.
-- usage: mpic run tests/bench/evidence_cost.lua [N]
local T = require "mpic.testing"
local sign = require "mpic.core.sign"
local N = tonumber(arg and arg[1]) or 2000

local function run(signed)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  local audit = { path = dir .. "/audit.jsonl", fsync = false, checkpoint_interval_s = 3600 }
  if signed then
    local f = assert(io.open(dir .. "/k.pem", "w"))
    f:write((sign.generate()))
    f:close()
    audit.signing_key = dir .. "/k.pem"
  end
  local cfg = T.config{ defaults = { perspective_count = 6, max_attempts = 1, timeout_ms = 3000 }, audit = audit }
  local perspectives, orchestrator = require "mpic.perspectives", require "mpic.orchestrator"
  perspectives.configure(cfg)
  orchestrator.reset()
  local opts = { date = "2026-12-16", run_check = function()
    return { passed = true, completed = true, errors = nil, details = { validation_method = "acme-dns-01",
      records_seen = { "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8" }, response_code = "NOERROR",
      ad_flag = false, resolver = "192.0.2.53:53", found_at = "_acme-challenge.example.com" } }
  end }
  local req = T.request()
  local t0 = os.clock()
  for _ = 1, N do
    local r, status = orchestrator.validate(req, opts)
    assert(status == 200 and r.is_valid, "validation failed")
  end
  return (os.clock() - t0) * 1000 / N
end

run(false) -- warm up
local plain, signed = run(false), run(true)
print(string.format("validations: %d (primary + 6 remotes, all local and scripted)", N))
print(string.format("unsigned: %.3f ms CPU per validation", plain))
print(string.format("signed:   %.3f ms CPU per validation (+%.1f%%)", signed, (signed - plain) / plain * 100))
