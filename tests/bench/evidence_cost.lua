-- CPU per validation with and without signed evidence: N in-process
-- validations (primary + 6 perspectives, all local), the audit log without
-- fsync; prints CPU ms per validation (os.clock, every thread) for each.
-- Scripted (default): every check passes at once, without any I/O, so the
-- cost of the evidence is measured against the bare orchestration.
-- With RESOLVER (ADDR:PORT of an authoritative server for ev.test, as
-- tests/bench/evidence_cost.sh starts): real acme-dns-01 probes through it.
-- IN_FLIGHT validations run at once (default 1: one at a time, so that every
-- audit line gets a seal of its own; under load lines share seals).
-- usage: mpic run tests/bench/evidence_cost.lua [N [RESOLVER|- [plain|signed|both [IN_FLIGHT]]]]
local T = require "mpic.testing"
local sign = require "mpic.core.sign"
local core = require "mpic.core"
local N = tonumber(arg and arg[1]) or 2000
local RESOLVER = arg and arg[2] ~= "-" and arg[2] or nil
local IN_FLIGHT = tonumber(arg and arg[4]) or 1
local HASH = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8"

local function run(signed)
  local dir = os.tmpname()
  os.remove(dir)
  os.execute("mkdir -p " .. dir)
  -- MPIC_BENCH_SEAL_MS: audit.seal_ms (default 10): 0 seals every batch at once
  local audit = { path = dir .. "/audit.jsonl", fsync = false, seal_ms = tonumber(os.getenv("MPIC_BENCH_SEAL_MS")) }
  if signed then
    local f = assert(io.open(dir .. "/k.pem", "w"))
    f:write((sign.generate()))
    f:close()
    audit.signing_key = dir .. "/k.pem"
  end
  local t = { defaults = { perspective_count = 6, max_attempts = 1, timeout_ms = 3000 }, audit = audit }
  local opts, req = { date = "2026-12-16" }
  if RESOLVER then
    t.perspectives, t.network = {}, { allow_reserved_ips = true }
    for i, p in ipairs(T.PERSPECTIVES) do
      local c = {}
      for k, v in pairs(p) do
        c[k] = v
      end
      c.resolvers = { RESOLVER }
      t.perspectives[i] = c
    end
    req = T.request({
      domain_or_ip_target = "ev.test",
      dcv_check_parameters = { validation_method = "acme-dns-01", key_authorization_hash = HASH },
    })
  else
    opts.run_check = function()
      return {
        passed = true,
        completed = true,
        errors = nil,
        details = {
          validation_method = "acme-dns-01",
          records_seen = { HASH },
          response_code = "NOERROR",
          ad_flag = false,
          resolver = "192.0.2.53:53",
          found_at = "_acme-challenge.example.com",
        },
      }
    end
    req = T.request()
  end
  local cfg = T.config(t)
  local perspectives, orchestrator = require "mpic.perspectives", require "mpic.orchestrator"
  perspectives.configure(cfg)
  orchestrator.reset()
  local t0, left = os.clock(), N
  local function worker()
    while left > 0 do
      left = left - 1
      local r, status = orchestrator.validate(req, opts)
      assert(
        status == 200 and r.is_valid,
        "validation failed: " .. tostring(r.mpic_decision and r.mpic_decision.reason)
      )
    end
    return true
  end
  local tasks = {}
  for i = 1, IN_FLIGHT do
    tasks[i] = core.spawn(worker)
  end
  for i = 1, IN_FLIGHT do
    local ok, err = core.wait(tasks[i])
    assert(ok, err)
  end
  return (os.clock() - t0) * 1000 / N
end

-- MODE (plain | signed): only that one, once (for callgrind); otherwise
-- ROUNDS rounds alternating both, and the median of each (a shared machine
-- is noisy)
local MODE, ROUNDS = arg and arg[3] ~= "both" and arg[3] or nil, 5
if MODE then
  print(string.format("%s: %.3f ms CPU per validation", MODE, run(MODE == "signed")))
  return
end
run(false) -- warm up
local plains, signeds = {}, {}
for i = 1, ROUNDS do
  plains[i], signeds[i] = run(false), run(true)
end
table.sort(plains)
table.sort(signeds)
local plain, signed = plains[(ROUNDS + 1) // 2], signeds[(ROUNDS + 1) // 2]
print(
  string.format(
    "validations: %d x %d rounds, %d in flight (primary + 6 perspectives, all local, %s)",
    N,
    ROUNDS,
    IN_FLIGHT,
    RESOLVER and ("real acme-dns-01 probes through " .. RESOLVER) or "scripted"
  )
)
print(string.format("unsigned: %.3f ms CPU per validation (median)", plain))
print(string.format("signed:   %.3f ms CPU per validation (median, +%.1f%%)", signed, (signed - plain) / plain * 100))
