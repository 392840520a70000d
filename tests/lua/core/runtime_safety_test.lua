-- Runtime safety: probes called where a task cannot yield, error objects
-- whose __tostring fails, NUL bytes in URLs, and close-on-exec on probe
-- sockets. Each case names the behaviour that must hold.
local T = require "mpic.testing"
local mpic = require "mpic"
local http = require "mpic.core.http"
local server = require "mpic.core.server"
local case, eq, ok, raises = T.case, T.eq, T.ok, T.raises

case("probe_in_sort_comparator_raises_and_never_wakes_the_task_later", function()
  local okk, err = pcall(table.sort, { 3, 2, 1 }, function(a, b)
    mpic.sleep(5)
    return a < b
  end)
  eq(okk, false)
  -- the 5 ms timer armed above must not resume this task while it waits
  -- on something else (it used to, and the wait then read an unfinished task)
  local child = mpic.spawn(function()
    mpic.sleep(60)
    return "child"
  end)
  eq(mpic.wait(child, 2000), "child")
  mpic.sleep(20)
  eq(child:status(), "done")
  ok(tostring(err):find("cannot wait for I/O inside a function called from C", 1, true), err)
end)

case("probe_in_gsub_callback_raises_and_wait_still_works", function()
  local okk, err = pcall(string.gsub, "ab", ".", function() mpic.sleep(1) end)
  eq(okk, false)
  local t = mpic.spawn(function()
    mpic.sleep(30)
    return 7
  end)
  local got = mpic.wait_first({ t }, 1, 2000)
  eq(#got, 1)
  eq(t:result(), 7)
  ok(tostring(err):find("cannot wait for I/O", 1, true), err)
end)

case("error_object_with_failing_tostring_fails_only_its_task", function()
  local t = mpic.spawn(function()
    error(setmetatable({}, { __tostring = function() error("boom in __tostring") end }))
  end)
  local r, kind, msg = mpic.wait(t, 2000)
  eq(r, nil)
  eq(kind, "task_error")
  eq(msg, "(error object is a table value)")
  eq(t:status(), "error")
  -- this task (and the scheduler) carry on
  local t2 = mpic.spawn(function() return "alive" end)
  eq(mpic.wait(t2, 2000), "alive")
end)

case("error_object_tostring_text_is_the_task_error", function()
  local t = mpic.spawn(function()
    error(setmetatable({}, { __tostring = function() return "custom failure" end }))
  end)
  local _, kind, msg = mpic.wait(t, 2000)
  eq(kind, "task_error")
  eq(msg, "custom failure")
end)

case("http_url_with_nul_byte_raises", function()
  raises(function() http.get("http://127.0.0.1:1/\0.example", { timeout_ms = 500 }) end, "URL contains a NUL byte")
end)

-- socket fds of this process: fd -> true when close-on-exec is set
local function socket_fds()
  local pid = assert(io.open("/proc/self/stat")):read("n")
  local p = assert(io.popen("ls -l /proc/" .. pid .. "/fd 2>/dev/null"))
  local out = {}
  for line in p:lines() do
    local fd = line:match("(%d+) %-> socket:")
    if fd then
      local f = io.open("/proc/self/fdinfo/" .. fd)
      if f then
        local flags = f:read("a"):match("flags:%s*(%d+)")
        f:close()
        out[tonumber(fd)] = (tonumber(flags, 8) & 0x80000) ~= 0 -- O_CLOEXEC
      end
    end
  end
  p:close()
  return out
end

case("http_probe_connection_is_close_on_exec", function()
  -- libcurl's own internal sockets (made when its context is created) are
  -- out of our hands: note them first, with a probe to a closed port
  http.get("http://127.0.0.1:1/", { timeout_ms = 500, allow_reserved = true })
  local before = socket_fds()
  local srv = assert(server.listen { address = "127.0.0.1", port = 0 })
  local probe = mpic.spawn(
    function() return http.get("http://127.0.0.1:" .. srv:port() .. "/", { timeout_ms = 3000, allow_reserved = true }) end
  )
  mpic.sleep(150) -- connected; the server never answers
  local during = socket_fds()
  local new = 0
  for fd, cloexec in pairs(during) do
    if before[fd] == nil then
      new = new + 1
      ok(cloexec, "socket fd " .. fd .. " is inherited by child processes")
    end
  end
  ok(new >= 2, "expected the probe's connection and the accepted one, saw " .. new .. " new sockets")
  mpic.cancel(probe)
  srv:close()
end)
