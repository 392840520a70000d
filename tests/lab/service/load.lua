-- load.lua TOTAL CONCURRENCY: TOTAL validations through the coordinator,
-- CONCURRENCY of them in flight at once, in two waves (run by
-- `tests/lab/test_service.sh MPIC --load TOTAL CONCURRENCY`). Checks that
-- every request gets an answer, that every answered verdict has exactly one
-- audit line with the same verdict, and that the coordinator's memory after
-- the second wave is back where the first wave left it (no growth per wave).
local mpic = require "mpic"
-- the lab is on loopback: each request lifts the reserved-address guard, as labs do
local http = setmetatable({}, { __index = require "mpic.core.http" })
function http.request(url, opts)
  opts = opts or {}
  if opts.allow_reserved == nil then opts.allow_reserved = true end
  return require("mpic.core.http").request(url, opts)
end
http.get = http.request
local util = require "mpic.core.util"

local total, conc = tonumber(arg[1]) or 10000, tonumber(arg[2]) or 10000
local C = assert(os.getenv("MPIC_SVC_CERTS")) .. "/"
local url = os.getenv("MPIC_SVC_COORDINATOR") .. "/mpic"
local work = assert(os.getenv("MPIC_SVC_WORK"))
local cpid = assert(os.getenv("MPIC_SVC_COORDINATOR_PID"))
local token = os.getenv("MPIC_SVC_TOKEN")

local function rss_kb(pid)
  local f = io.open("/proc/" .. pid .. "/status")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return tonumber(s:match("VmRSS:%s*(%d+)"))
end

local function request(trace)
  return assert(util.json_encode({
    check_type = "dcv",
    domain_or_ip_target = "svc.test",
    trace_identifier = trace,
    orchestration_parameters = { perspective_count = 6 },
    dcv_check_parameters = {
      validation_method = "acme-dns-01",
      key_authorization_hash = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8",
    },
  }))
end

local answers = {} -- trace -> {status, is_valid}
local function wave(tag)
  local next_i, peak, done = 0, 0, false
  local sampler = mpic.spawn(function()
    while not done do
      local r = rss_kb(cpid) or 0
      if r > peak then peak = r end
      mpic.sleep(100)
    end
  end)
  local function worker()
    while next_i < total do
      next_i = next_i + 1
      local trace = tag .. "-" .. next_i
      local r, kind, detail = http.request(url, {
        method = "POST",
        body = request(trace),
        ca = C .. "ca.pem",
        verify_tls = true,
        timeout_ms = 120000,
        connect_timeout_ms = 30000,
        headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = token },
      })
      if r then
        local doc = util.json_decode(r.body)
        answers[trace] = {
          status = r.status,
          is_valid = type(doc) == "table" and doc.is_valid,
          error = type(doc) == "table" and doc.error or nil,
        }
      else
        answers[trace] = { status = 0, error = tostring(kind) .. ": " .. tostring(detail) }
      end
    end
  end
  local t0 = mpic.now()
  local tasks = {}
  for i = 1, conc do
    tasks[i] = mpic.spawn(worker)
  end
  mpic.wait_all(tasks)
  done = true
  mpic.wait(sampler)
  return (mpic.now() - t0) / 1000, peak
end

local base = rss_kb(cpid)
local secs1, peak1 = wave("w1")
mpic.sleep(2000)
local after1 = rss_kb(cpid)
local secs2, peak2 = wave("w2")
mpic.sleep(2000)
local after2 = rss_kb(cpid)

-- every answer
local counts, failures = { ok = 0, other = 0, none = 0 }, {}
for trace, a in pairs(answers) do
  if a.status == 200 then
    counts.ok = counts.ok + 1
  elseif a.status == 0 then
    counts.none = counts.none + 1
    failures[#failures + 1] = trace .. " " .. a.error
  else
    counts.other = counts.other + 1
    failures[#failures + 1] = trace .. " HTTP " .. a.status .. (a.error and (": " .. tostring(a.error)) or "")
  end
end
-- every audit line
local audited, lines, torn = {}, 0, 0
for line in io.lines(work .. "/coordinator-audit.jsonl") do
  lines = lines + 1
  local doc = util.json_decode(line)
  if type(doc) ~= "table" then
    torn = torn + 1
  elseif type(doc.trace_identifier) == "string" then
    local t = doc.trace_identifier
    audited[t] = audited[t] and "dup" or doc.is_valid
  end
end
local missing, mismatch, dup = 0, 0, 0
for trace, a in pairs(answers) do
  if a.status == 200 then
    local v = audited[trace]
    if v == nil then
      missing = missing + 1
    elseif v == "dup" then
      dup = dup + 1
    elseif v ~= a.is_valid then
      mismatch = mismatch + 1
    end
  end
end
print(
  string.format(
    "wave 1: %d validations, %d in flight, %.1f s (%.0f/s); wave 2: %.1f s (%.0f/s)",
    total,
    conc,
    secs1,
    total / secs1,
    secs2,
    total / secs2
  )
)
print(string.format("answers: %d HTTP 200, %d other status, %d without answer", counts.ok, counts.other, counts.none))
for i = 1, math.min(5, #failures) do
  print("  " .. failures[i])
end
print(
  string.format(
    "audit: %d lines, %d unparseable; answered verdicts missing %d, duplicated %d, differing %d",
    lines,
    torn,
    missing,
    dup,
    mismatch
  )
)
print(
  string.format(
    "coordinator RSS: %d MB before, peak %d MB, %d MB after wave 1, peak %d MB, %d MB after wave 2",
    base // 1024,
    peak1 // 1024,
    after1 // 1024,
    peak2 // 1024,
    after2 // 1024
  )
)
-- AddressSanitizer keeps freed memory in quarantine, so RSS says nothing
-- about leaks there (its leak checker does): the memory check applies to
-- normal builds only
local asan = os.getenv("ASAN_OPTIONS") ~= nil
local steady = after2 <= after1 * 1.10 + 16 * 1024
if asan then print("memory check not applied under AddressSanitizer (quarantine holds freed memory)") end
local ok = counts.ok == 2 * total and torn == 0 and missing == 0 and dup == 0 and mismatch == 0 and (steady or asan)
print(ok and "ok   load_every_request_answered_and_audited_memory_steady" or "FAIL load")
return ok and 0 or 1
