-- agent_bench.lua TOTAL CONCURRENCY: checks per second and CPU per check of
-- one agent (pdx), posted to it directly with the coordinator's client
-- certificate, run by `tests/lab/test_service.sh MPIC --agent-bench TOTAL
-- CONCURRENCY` (and its --profile mode with MPIC_SVC_PROFILE_AGENT=1).
local mpic = require "mpic"
local util = require "mpic.core.util"
local http = require "mpic.core.http"

local total, conc = tonumber(arg[1]) or 2000, tonumber(arg[2]) or 8
local C = assert(os.getenv("MPIC_SVC_CERTS")) .. "/"
local work = assert(os.getenv("MPIC_SVC_WORK"))
local url = "https://127.0.30.11:15411/dcv"
local opts = {
  method = "POST",
  body = assert(util.json_encode({
    domain_or_ip_target = "svc.test",
    trace_identifier = util.null,
    dcv_check_parameters = {
      validation_method = "acme-dns-01",
      key_authorization_hash = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8",
    },
  })),
  headers = { ["Content-Type"] = "application/json" },
  ca = C .. "ca.pem",
  cert = C .. "coordinator.pem",
  key = C .. "coordinator.key",
  verify_tls = true,
  keepalive = true,
  allow_reserved = true,
  timeout_ms = 60000,
}

local ps = dofile((arg[0]:match("^(.*)/") or ".") .. "/proc_stat.lua")
local function agent_cpu_ms()
  local pid = ps.read_pid(work .. "/agent-pdx.pid")
  return pid and ps.cpu_ms(pid)
end

local next_i, passed, other = 0, 0, 0
local function worker()
  while next_i < total do
    next_i = next_i + 1
    local r, kind, detail = http.request(url, opts)
    local doc = r and util.json_decode(r.body)
    if r and r.status == 200 and type(doc) == "table" and doc.check_passed == true then
      passed = passed + 1
    else
      other = other + 1
      if other <= 3 then
        io.stderr:write("not passed: ", tostring(r and r.status or kind), " ", tostring(detail), "\n")
      end
    end
  end
end
local cpu0, t0 = agent_cpu_ms(), mpic.now()
local tasks = {}
for i = 1, conc do
  tasks[i] = mpic.spawn(worker)
end
mpic.wait_all(tasks)
local ms, cpu1 = mpic.now() - t0, agent_cpu_ms()
print(
  string.format(
    "%d checks (%d passed) in %.2f s: %.0f checks/s; agent CPU %.3f ms per check (concurrency %d)",
    total,
    passed,
    ms / 1000,
    total * 1000 / math.max(ms, 1),
    cpu0 and cpu1 and (cpu1 - cpu0) / total or -1,
    conc
  )
)
os.exit(other == 0 and 0 or 1)
