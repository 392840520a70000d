-- bench.lua TOTAL CONCURRENCY: validations per second through the
-- coordinator (mpic serve) and its agents, run by
-- `tests/lab/test_service.sh MPIC --bench TOTAL CONCURRENCY`. Each worker
-- POSTs acme-dns-01 validations of svc.test (6 remote perspectives) over TLS;
-- then the same validations run in this process with the six perspectives
-- local (the baseline of the ratio). MPIC_SVC_BENCH_JSON=FILE writes the
-- figures as JSON (tests/bench/run.sh).
local mpic = require "mpic"
local http = require "mpic.core.http"
local util = require "mpic.core.util"

local total, conc = tonumber(arg[1]) or 2000, tonumber(arg[2]) or 50
local C = assert(os.getenv("MPIC_SVC_CERTS")) .. "/"
local url = os.getenv("MPIC_SVC_COORDINATOR") .. "/mpic"
local body = assert(util.json_encode({ check_type = "dcv", domain_or_ip_target = "svc.test",
  orchestration_parameters = { perspective_count = 6 },
  dcv_check_parameters = { validation_method = "acme-dns-01",
                           key_authorization_hash = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8" } }))
local opts = { method = "POST", body = body, ca = C .. "ca.pem", verify_tls = true, timeout_ms = 30000, keepalive = true,
               headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = os.getenv("MPIC_SVC_TOKEN") } }
local next_i, valid, invalid, failed, lat = 0, 0, 0, 0, {}
local function worker()
  while next_i < total do
    next_i = next_i + 1
    local t0 = mpic.now()
    local r, kind, detail = http.request(url, opts)
    lat[#lat + 1] = mpic.now() - t0
    if not r or r.status ~= 200 then
      failed = failed + 1
      if failed <= 3 then io.stderr:write("failed: ", tostring(r and r.status or kind), " ", tostring(detail), "\n") end
    elseif util.json_decode(r.body).is_valid then valid = valid + 1
    else invalid = invalid + 1 end
  end
end
local t0 = mpic.now()
local tasks = {}
for i = 1, conc do tasks[i] = mpic.spawn(worker) end
mpic.wait_all(tasks)
local secs = (mpic.now() - t0) / 1000
table.sort(lat)
print(string.format("%d validations (%d valid, %d invalid, %d failed) in %.2f s: %.0f validations/s, "
  .. "%d agent checks/s; latency p50 %d ms, p99 %d ms (concurrency %d)", total, valid, invalid, failed, secs,
  total / secs, math.floor(total * 6 / secs), lat[math.max(1, #lat // 2)], lat[math.max(1, math.floor(#lat * 0.99))], conc))
-- the same validations in this process, the six perspectives local
-- (local.yaml: the same resolvers the agents use), at the same concurrency
local function run_local()
  assert(mpic.load_config(os.getenv("MPIC_SVC_WORK") .. "/local.yaml"))
  local req = util.json_decode(body)
  local orchestrator = require "mpic.orchestrator"
  orchestrator.reset()
  local n, bad = 0, 0
  local function lworker()
    while n < total do
      n = n + 1
      local resp, st = orchestrator.validate(req)
      if st ~= 200 or not resp.is_valid then bad = bad + 1 end
    end
  end
  local l0 = mpic.now()
  local lt = {}
  for i = 1, conc do lt[i] = mpic.spawn(lworker) end
  mpic.wait_all(lt)
  return total / ((mpic.now() - l0) / 1000), bad
end
local local_rate, local_bad = run_local()
print(string.format("local: %.0f validations/s in this process (%d not valid); coordinator -> agents / local = %.2f",
  local_rate, local_bad, (total / secs) / local_rate))

-- how the coordinator reached its agents: kept-alive connections or new ones
local m = http.request(os.getenv("MPIC_SVC_COORDINATOR") .. "/metrics", { ca = C .. "ca.pem", verify_tls = true,
  timeout_ms = 5000, headers = { ["X-Api-Key"] = os.getenv("MPIC_SVC_TOKEN") } })
local conns = { reused = 0, new = 0 }
for kind, n in ((m and m.body) or ""):gmatch('mpic_agent_requests_total{[^}]*connection="(%a+)"[^}]*} (%d+)') do
  conns[kind] = (conns[kind] or 0) + tonumber(n)
end
print(string.format("agent requests: %d on kept-alive connections, %d on new ones", conns.reused, conns.new))
local out = os.getenv("MPIC_SVC_BENCH_JSON")
if out then
  local f = assert(io.open(out, "w"))
  f:write(util.json_encode({ total = total, concurrency = conc, remote_vps = total / secs, local_vps = local_rate,
    ratio = (total / secs) / local_rate, failed = failed, local_not_valid = local_bad,
    p50_ms = lat[math.max(1, #lat // 2)], p99_ms = lat[math.max(1, math.floor(#lat * 0.99))],
    connections_reused = conns.reused, connections_new = conns.new }), "\n")
  f:close()
end
return failed == 0 and 0 or 1
