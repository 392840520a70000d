-- bench.lua TOTAL CONCURRENCY: validations per second through the
-- coordinator (mpic serve) and its agents, run by
-- `tests/lab/test_service.sh MPIC --bench TOTAL CONCURRENCY`. Each worker
-- POSTs acme-dns-01 validations of svc.test (6 remote perspectives) over TLS.
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
return failed == 0 and 0 or 1
