-- kill9.lua: durability of the audit log (run by
-- `tests/lab/test_service.sh MPIC --kill9` with the coordinator's audit fsync
-- on). Keeps validations in flight through the coordinator, kills it with
-- SIGKILL in the middle, then checks that every verdict a client received
-- has its audit line with the same verdict, and that every line of the log
-- parses (no torn line breaks a reader). With MPIC_SVC_WORKERS=N > 1 (the
-- coordinator as N workers) the master and every worker are killed at once
-- and each worker's audit file (PATH, PATH.w1, ...) is read; each must hold
-- lines.
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

local C = assert(os.getenv("MPIC_SVC_CERTS")) .. "/"
local url = os.getenv("MPIC_SVC_COORDINATOR") .. "/mpic"
local work = assert(os.getenv("MPIC_SVC_WORK"))
local cpid = assert(os.getenv("MPIC_SVC_COORDINATOR_PID"))
local token = os.getenv("MPIC_SVC_TOKEN")

local received, sent, lost = {}, 0, 0
local stop = false
local function worker(w)
  local i = 0
  while not stop do
    i = i + 1
    local trace = ("k%d-%d"):format(w, i)
    sent = sent + 1
    local r = http.request(url, {
      method = "POST",
      ca = C .. "ca.pem",
      verify_tls = true,
      timeout_ms = 10000,
      headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = token },
      body = assert(util.json_encode({
        check_type = "dcv",
        domain_or_ip_target = "svc.test",
        trace_identifier = trace,
        orchestration_parameters = { perspective_count = 6 },
        dcv_check_parameters = {
          validation_method = "acme-dns-01",
          key_authorization_hash = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8",
        },
      })),
    })
    local doc = r and r.status == 200 and util.json_decode(r.body)
    if type(doc) == "table" and type(doc.is_valid) == "boolean" then
      received[trace] = doc.is_valid
    else
      lost = lost + 1 -- the coordinator died under this request: no verdict reached the client
      if r == nil then return end
    end
  end
end

local tasks = {}
for w = 1, 64 do
  tasks[w] = mpic.spawn(worker, w)
end
mpic.sleep(3000)
local nworkers = tonumber(os.getenv("MPIC_SVC_WORKERS") or "1") or 1
local victims = cpid
if nworkers > 1 then -- the workers first, in the same command: the master has no time to restart one
  local f = io.open("/proc/" .. cpid .. "/task/" .. cpid .. "/children")
  local kids = f and f:read("a") or ""
  if f then f:close() end
  victims = kids .. " " .. cpid
  print("kill -9 of the master and its workers: " .. victims)
end
os.execute("kill -9 " .. victims)
stop = true
mpic.wait_all(tasks, 15000)

local n_received = 0
for _ in pairs(received) do
  n_received = n_received + 1
end
local audited, lines, torn, empty = {}, 0, 0, 0
for k = 0, nworkers - 1 do
  local n = 0
  for line in io.lines(work .. "/coordinator-audit.jsonl" .. (k > 0 and (".w" .. k) or "")) do
    lines, n = lines + 1, n + 1
    local doc = util.json_decode(line)
    if type(doc) ~= "table" then
      torn = torn + 1
    elseif type(doc.trace_identifier) == "string" then
      audited[doc.trace_identifier] = doc.is_valid
    end
  end
  if n == 0 then empty = empty + 1 end
end
local missing, differ = 0, 0
for trace, v in pairs(received) do
  if audited[trace] == nil then
    missing = missing + 1
  elseif audited[trace] ~= v then
    differ = differ + 1
  end
end
print(
  string.format(
    "kill -9 after 3 s of load: %d requests sent, %d verdicts received, %d cut off by the kill",
    sent,
    n_received,
    lost
  )
)
print(
  string.format(
    "audit log (%d file(s)): %d lines, %d unparseable; received verdicts missing from it %d, differing %d",
    nworkers,
    lines,
    torn,
    missing,
    differ
  )
)
local ok = n_received > 0 and torn == 0 and missing == 0 and differ == 0 and empty == 0
print(ok and "ok   kill9_every_received_verdict_is_audited_no_torn_line" or "FAIL kill9")
return ok and 0 or 1
