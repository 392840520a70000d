-- proc_stat.lua: the CPU time of the lab's processes, for the service lab's
-- benchmarks (bench.lua, agent_bench.lua load it with dofile).
local M = {}

--- The lines a shell command prints.
function M.shell_lines(cmd)
  local f, out = io.popen(cmd), {}
  if f then
    for l in f:lines() do
      out[#out + 1] = l
    end
    f:close()
  end
  return out
end

local CLK_TCK = tonumber(M.shell_lines("getconf CLK_TCK")[1]) or 100
M.CLK_TCK = CLK_TCK

--- The PID in a PID file, or nil.
function M.read_pid(path)
  local f = io.open(path, "r")
  if not f then return nil end
  local pid = tonumber(f:read("l"))
  f:close()
  return pid
end

--- utime + stime of a process in ms (nil once it is gone).
function M.cpu_ms(pid)
  local f = io.open("/proc/" .. pid .. "/stat", "r")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  local rest, fields = s:match("%)%s*(.*)$") or "", {}
  for x in rest:gmatch("%S+") do
    fields[#fields + 1] = x
  end
  -- after the command name: field 3 (state) first, utime is field 14, stime 15
  local ut, st = tonumber(fields[12]), tonumber(fields[13])
  return ut and st and (ut + st) * 1000 / CLK_TCK or nil
end

return M
