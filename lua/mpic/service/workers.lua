-- mpic.service.workers: `mpic serve --workers N` and `mpic agent --workers N`, one
-- service as N worker processes (each its own event loop and Lua state), so
-- that a service uses every core. `mpic run` and `--workers 1` stay one
-- process, exactly as before.
--
-- The master binds N listening sockets on the one address and port, each
-- with SO_REUSEPORT (the kernel spreads new connections over them), and
-- keeps them; worker k (0..N-1) is this binary again (fork+exec), started
-- with the hidden options --worker-index k --listen-fd FD --run-dir DIR and
-- accepting on its own socket. Since the master holds every socket, a
-- connection queued on the socket of a worker that died waits for its
-- successor instead of being reset, and bind errors and port 0 are settled
-- once, before any worker starts. The master loads nothing else: each worker
-- loads the configuration, proves DNSSEC at the primary and probes health
-- itself (they agree within one health interval).
--
-- Supervision: a worker that exits or is killed is started again after a
-- back-off (RESTART_MIN_MS, doubling while it keeps dying within STABLE_MS
-- of its start, at most RESTART_MAX_MS), counted in
-- mpic_worker_restarts_total. A worker whose first start is refused (exit
-- status 2: a bad configuration, TLS files, a failed DNSSEC proof) stops the
-- service with status 2. SIGHUP is passed to every worker (each reloads);
-- SIGTERM and SIGINT are passed to every worker, which stop accepting and
-- drain; the master closes its sockets, waits for every worker (at most
-- drain_ms + KILL_AFTER_MS, then SIGKILL) and exits 0 (1 when a worker did
-- not exit 0). Each worker gets SIGTERM when the master dies.
--
-- Per worker: the connection caps (--max-connections, --max-connections-
-- per-ip), --max-inflight and the header deadline hold for each worker, so
-- the service as a whole admits up to N times each. The audit log: worker 0
-- writes the configured path, worker k > 0 writes PATH.wk, each its own
-- chain (one writer per file, core/audit.c); `mpic audit verify PATH
-- PATH.w1 ...` checks them all. /metrics: every worker writes its registry
-- to DIR/wk.metrics (mpic.service.metrics.share), the one answering a scrape adds
-- the others' counters and histograms to its own.
local mpic = require "mpic"
local core = require "mpic.core.workers"
local server = require "mpic.core.server"

local M = {}
M.MAX = 64
M.RESTART_MIN_MS, M.RESTART_MAX_MS, M.STABLE_MS = 100, 5000, 10000
M.KILL_AFTER_MS = 5000

local tonumber, tostring, ipairs, pairs, math_floor = tonumber, tostring, ipairs, pairs, math.floor

--- The --workers value -> n | nil, message; absent: the CPUs this process
--- may run on (at most MAX).
function M.count(v)
  if v == nil then return math.min(core.cpus(), M.MAX) end
  local n = tonumber(v)
  if not n or n ~= math_floor(n) or n < 1 or n > M.MAX then
    return nil, "--workers must be a whole number from 1 to " .. M.MAX .. ", not " .. tostring(v)
  end
  return math.tointeger(n)
end

--- The options serve and agent take for workers (mpic.args.parse spec).
function M.options(spec)
  spec.workers, spec["worker-index"], spec["listen-fd"], spec["run-dir"] = "value", "value", "value", "value"
  return spec
end

--- A worker's place from its hidden options: {index, fd, dir} | nil (the
--- master or a single process) | nil, message (bad options).
function M.worker_of(opts)
  local k, fd, dir = opts["worker-index"], opts["listen-fd"], opts["run-dir"]
  if k == nil and fd == nil and dir == nil then return nil end
  k, fd = tonumber(k), tonumber(fd)
  if
    not k
    or k ~= math_floor(k)
    or k < 0
    or k >= M.MAX
    or not fd
    or fd ~= math_floor(fd)
    or fd < 3
    or type(dir) ~= "string"
    or dir == ""
  then
    return nil, "--worker-index, --listen-fd and --run-dir are set by the master of --workers, together"
  end
  return { index = math.tointeger(k), fd = math.tointeger(fd), dir = dir }
end

--- The audit log path suffix of worker k (none for worker 0).
function M.audit_suffix(k)
  if k and k > 0 then return ".w" .. k end
  return nil
end

--- The audit files of a service with n workers writing path.
function M.audit_paths(path, n)
  local out = { path }
  for k = 1, (n or 1) - 1 do
    out[#out + 1] = path .. M.audit_suffix(k)
  end
  return out
end

local function rmtree(dir)
  local util = require "mpic.core.util"
  for _, name in ipairs(util.listdir(dir) or {}) do
    os.remove(dir .. "/" .. name)
  end
  os.remove(dir)
end

--[[ The master: spec = {command = "serve"|"agent", args = the command's
arguments (args[1] the command), n, address, port, drain_ms, log =
function(fmt, ...)}. Returns the exit status. ]]
function M.supervise(spec)
  local log, n = spec.log, spec.n
  local fds, port, detail = core.bind(spec.address, spec.port, n)
  if not fds then
    io.stderr:write("mpic ", spec.command, ": ", tostring(port), ": ", tostring(detail), "\n")
    return 2
  end
  local base = os.getenv("RUNTIME_DIRECTORY") or os.getenv("TMPDIR") or "/tmp"
  base = base:match("^[^:]+") -- systemd may list several
  local dir, _, derr = core.mkdtemp(base .. "/mpic-" .. spec.command .. ".XXXXXX")
  if not dir then
    for _, fd in ipairs(fds) do
      core.close(fd)
    end
    io.stderr:write("mpic ", spec.command, ": runtime directory: ", tostring(derr), "\n")
    return 1
  end
  local metrics = require "mpic.service.metrics"
  metrics.share(dir, "master", true)
  local sig = server.signals({ "TERM", "HUP", "INT", "CHLD" })
  local root = package.loaded["mpic.paths"].root
  local slots, by_pid = {}, {}
  local stopping, fatal, status = false, nil, 0

  local function live()
    local c = 0
    for _, s in ipairs(slots) do
      if s.pid then c = c + 1 end
    end
    return c
  end
  local schedule
  local function start(k)
    local s = slots[k]
    if stopping or s.pid then return end
    local argv = { "mpic", "--lua-path", root }
    for _, a in ipairs(spec.args) do
      argv[#argv + 1] = a
    end
    for _, a in ipairs({ "--worker-index", tostring(k - 1), "--listen-fd", tostring(fds[k]), "--run-dir", dir }) do
      argv[#argv + 1] = a
    end
    local pid, _, err = core.spawn(argv, fds[k])
    s.instance, s.started = s.instance + 1, mpic.now()
    if not pid then
      log("worker %d: cannot start: %s", k - 1, tostring(err))
      return schedule(k)
    end
    s.pid = pid
    by_pid[pid] = k
  end
  schedule = function(k)
    local s = slots[k]
    local ran = mpic.now() - (s.started or 0)
    s.delay = ran >= M.STABLE_MS and M.RESTART_MIN_MS
      or math.min(M.RESTART_MAX_MS, (s.delay or M.RESTART_MIN_MS / 2) * 2)
    local delay = math.tointeger(s.delay) or math_floor(s.delay)
    mpic.spawn(function()
      mpic.sleep(delay)
      start(k)
    end)
    return delay
  end
  local function stop_all(name)
    stopping = true
    for _, s in ipairs(slots) do
      if s.pid then pcall(core.kill, s.pid, name) end
    end
    -- the master's copies: the port closes once every worker has closed its own
    for k, fd in pairs(fds) do
      core.close(fd)
      fds[k] = nil
    end
    mpic.spawn(function()
      mpic.sleep((spec.drain_ms or 30000) + M.KILL_AFTER_MS)
      for k, s in ipairs(slots) do
        if s.pid then
          log("worker %d (pid %d) did not drain in time: SIGKILL", k - 1, s.pid)
          pcall(core.kill, s.pid, "KILL")
        end
      end
    end)
  end
  local function exited(e)
    local k = by_pid[e.pid]
    if not k then return end
    by_pid[e.pid] = nil
    local s = slots[k]
    s.pid = nil
    local how = e.code and ("exited with status " .. e.code) or ("was killed by SIG" .. tostring(e.signal))
    if stopping then
      if e.code ~= 0 then
        status = 1
        log("worker %d (pid %d) %s", k - 1, e.pid, how)
      end
      return
    end
    if s.instance == 1 and e.code == 2 then
      log("worker %d (pid %d): its start was refused (status 2); stopping the service", k - 1, e.pid)
      fatal = 2
      return stop_all("TERM")
    end
    metrics.worker_restart(k - 1)
    metrics.flush()
    local delay = schedule(k)
    log(
      "worker %d (pid %d) %s after %d ms; restarting it in %d ms",
      k - 1,
      e.pid,
      how,
      math_floor(mpic.now() - s.started),
      delay
    )
  end

  for k = 1, n do
    slots[k] = { instance = 0 }
  end
  for k = 1, n do
    start(k)
  end
  local pids = {}
  for k, s in ipairs(slots) do
    pids[k] = tostring(s.pid)
  end
  log(
    "mpic %s: %d workers (pids %s) on %s:%d, runtime directory %s",
    spec.command,
    n,
    table.concat(pids, " "),
    spec.address,
    port,
    dir
  )
  while not (stopping and live() == 0) do
    local name = sig:next()
    if not name then break end
    if name == "CHLD" then
      for _, e in ipairs(core.reap()) do
        exited(e)
      end
    elseif name == "HUP" then
      if not stopping then
        log("SIGHUP: passed to %d workers", live())
        for _, s in ipairs(slots) do
          if s.pid then pcall(core.kill, s.pid, "HUP") end
        end
      end
    elseif not stopping then
      log("SIG%s: stopping %d workers", name, live())
      stop_all(name)
    end
  end
  sig:close()
  metrics.share(nil)
  rmtree(dir)
  log("mpic %s: every worker stopped", spec.command)
  return fatal or status
end

return M
