-- bench.lua TOTAL CONCURRENCY: validations per second through the
-- coordinator (mpic serve) and its agents, run by
-- `tests/lab/test_service.sh MPIC --bench TOTAL CONCURRENCY`. Each worker
-- POSTs acme-dns-01 validations of svc.test (6 remote perspectives) over TLS;
-- then the same validations run in this process with the six perspectives
-- local (the baseline of the ratio). MPIC_SVC_BENCH_JSON=FILE writes the
-- figures as JSON (tests/bench/run.sh).
-- CPU accounting: utime + stime (/proc/PID/stat) of the coordinator, the
-- agents it uses, knot (both views), and this process (the client, then the
-- local process), read before and after each phase, per validation.
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

local total, conc = tonumber(arg[1]) or 2000, tonumber(arg[2]) or 50
local C = assert(os.getenv("MPIC_SVC_CERTS")) .. "/"
local url = os.getenv("MPIC_SVC_COORDINATOR") .. "/mpic"
local body = assert(util.json_encode({
  check_type = "dcv",
  domain_or_ip_target = "svc.test",
  orchestration_parameters = { perspective_count = 6 },
  dcv_check_parameters = {
    validation_method = "acme-dns-01",
    key_authorization_hash = "ZTRx1Ckl1-tM05o5zaizTTA0yUy5AGereMgSNWC6Ll8",
  },
}))
local opts = {
  method = "POST",
  body = body,
  ca = C .. "ca.pem",
  verify_tls = true,
  timeout_ms = 30000,
  keepalive = true,
  headers = { ["Content-Type"] = "application/json", ["X-Api-Key"] = os.getenv("MPIC_SVC_TOKEN") },
}

-- CPU accounting: the processes of the lab by their PID files in MPIC_SVC_WORK
local work = assert(os.getenv("MPIC_SVC_WORK"))
local ps = dofile((arg[0]:match("^(.*)/") or ".") .. "/proc_stat.lua")
local shell_lines, read_pid, cpu_ms = ps.shell_lines, ps.read_pid, ps.cpu_ms
-- role -> list of PIDs: the coordinator uses every agent but mex and liar
local roles = { coordinator = {}, agents = {}, knot = {}, client = { "self" } }
roles.coordinator[1] = read_pid(work .. "/coordinator.pid")
for _, path in
  ipairs(shell_lines("ls " .. work .. "/agent-*.pid " .. work .. "/knotd.pid " .. work .. "/*/knotd.pid 2>/dev/null"))
do
  local id = path:match("/agent%-([%w-]+)%.pid$")
  local pid = read_pid(path)
  if id and id ~= "liar" and not id:find("^mex") and pid then
    roles.agents[#roles.agents + 1] = pid
  elseif path:match("knotd%.pid$") and pid then
    roles.knot[#roles.knot + 1] = pid
  end
end
local function cpu_snapshot()
  local snap = {}
  for role, pids in pairs(roles) do
    snap[role] = {}
    for i, pid in ipairs(pids) do
      snap[role][i] = cpu_ms(pid)
    end
  end
  return snap
end
-- ms of CPU per validation by role between two snapshots (nil: not counted)
local function cpu_per_validation(a, b, n)
  local out, sum = {}, 0
  for role, pids in pairs(roles) do
    local ms, counted = 0, 0
    for i = 1, #pids do
      if a[role][i] and b[role][i] then
        ms, counted = ms + b[role][i] - a[role][i], counted + 1
      end
    end
    if counted > 0 then
      out[role] = ms / n
      sum = sum + ms
    end
  end
  out.total = sum / n
  return out
end

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
    elseif util.json_decode(r.body).is_valid then
      valid = valid + 1
    else
      invalid = invalid + 1
    end
  end
end
local cpu0 = cpu_snapshot()
local t0 = mpic.now()
local tasks = {}
for i = 1, conc do
  tasks[i] = mpic.spawn(worker)
end
mpic.wait_all(tasks)
local secs = (mpic.now() - t0) / 1000
local cpu1 = cpu_snapshot()
table.sort(lat)
print(
  string.format(
    "%d validations (%d valid, %d invalid, %d failed) in %.2f s: %.0f validations/s, "
      .. "%d agent checks/s; latency p50 %d ms, p99 %d ms (concurrency %d)",
    total,
    valid,
    invalid,
    failed,
    secs,
    total / secs,
    math.floor(total * 6 / secs),
    lat[math.max(1, #lat // 2)],
    lat[math.max(1, math.floor(#lat * 0.99))],
    conc
  )
)
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
  for i = 1, conc do
    lt[i] = mpic.spawn(lworker)
  end
  mpic.wait_all(lt)
  return total / ((mpic.now() - l0) / 1000), bad
end
local local_rate, local_bad = run_local()
local cpu2 = cpu_snapshot()
local remote_cpu, local_cpu = cpu_per_validation(cpu0, cpu1, total), cpu_per_validation(cpu1, cpu2, total)
-- in the local phase this process is the local process, and the rest idles
local_cpu["local"], local_cpu.client = local_cpu.client, nil
local function fmt_cpu(c)
  local parts = {}
  for _, role in ipairs({ "coordinator", "agents", "client", "local", "knot", "total" }) do
    if c[role] then parts[#parts + 1] = string.format("%s %.3f", role, c[role]) end
  end
  return table.concat(parts, ", ")
end
print(
  string.format(
    "local: %.0f validations/s in this process (%d not valid); coordinator -> agents / local = %.2f",
    local_rate,
    local_bad,
    (total / secs) / local_rate
  )
)

-- how the coordinator reached its agents: kept-alive connections or new ones
local m = http.request(os.getenv("MPIC_SVC_COORDINATOR") .. "/metrics", {
  ca = C .. "ca.pem",
  verify_tls = true,
  timeout_ms = 5000,
  headers = { ["X-Api-Key"] = os.getenv("MPIC_SVC_TOKEN") },
})
local conns = { reused = 0, new = 0 }
for kind, n in ((m and m.body) or ""):gmatch('mpic_agent_requests_total{[^}]*connection="(%a+)"[^}]*} (%d+)') do
  conns[kind] = (conns[kind] or 0) + tonumber(n)
end
print(string.format("agent requests: %d on kept-alive connections, %d on new ones", conns.reused, conns.new))
print(
  string.format(
    "CPU ms per validation (%d agents, %d knot): coordinator -> agents: %s; local: %s",
    #roles.agents,
    #roles.knot,
    fmt_cpu(remote_cpu),
    fmt_cpu(local_cpu)
  )
)
local out = os.getenv("MPIC_SVC_BENCH_JSON")
if out then
  local f = assert(io.open(out, "w"))
  f:write(
    util.json_encode({
      total = total,
      concurrency = conc,
      remote_vps = total / secs,
      local_vps = local_rate,
      ratio = (total / secs) / local_rate,
      failed = failed,
      local_not_valid = local_bad,
      p50_ms = lat[math.max(1, #lat // 2)],
      p99_ms = lat[math.max(1, math.floor(#lat * 0.99))],
      connections_reused = conns.reused,
      connections_new = conns.new,
      cpu_remote_ms_per_validation = remote_cpu,
      cpu_local_ms_per_validation = local_cpu,
      cpu_agents_counted = #roles.agents,
      cpu_knot_counted = #roles.knot,
      cpu_clk_tck = ps.CLK_TCK,
      remote_seconds = secs,
      local_seconds = total / local_rate,
    }),
    "\n"
  )
  f:close()
end
return failed == 0 and 0 or 1
