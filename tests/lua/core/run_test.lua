-- mpic.core.workers.run: a program run without a shell, its exit code, a
-- bounded wait that kills it, and clear errors.
local T = require "mpic.testing"
local workers = require "mpic.core.workers"
local case, eq, ok, contains = T.case, T.eq, T.ok, T.contains

case("run_returns_the_exit_code", function()
  eq(workers.run({ "true" }, 5000), 0)
  eq(workers.run({ "false" }, 5000), 1)
  eq(workers.run({ "sh", "-c", "exit 3" }, 5000), 3)
end)

case("run_passes_arguments_without_a_shell", function()
  -- one argument holding a quote and a semicolon reaches the program as it is
  local arg = "a'b; exit 7"
  eq(workers.run({ "test", arg, "=", "a'b; exit 7" }, 5000), 0)
  eq(workers.run({ "test", arg, "=", "a'b" }, 5000), 1)
end)

case("run_kills_what_outlives_its_timeout", function()
  local t0 = os.time()
  local code, kind, detail = workers.run({ "sleep", "30" }, 200)
  eq(code, nil)
  eq(kind, "timeout")
  contains(detail, "sleep: still running after 200 ms, killed")
  ok(os.time() - t0 <= 5, "returned within the timeout, not after the program")
end)

case("run_refuses_what_it_cannot_start", function()
  local code, kind, detail = workers.run({ "/nonexistent/program" }, 1000)
  eq(code, nil)
  eq(kind, "internal")
  contains(detail, "/nonexistent/program")
  T.raises(function() workers.run({}, 1000) end, "1 to 256 arguments")
  T.raises(function() workers.run({ "true", 5 }, 1000) end, "argument 2 is not a string")
  T.raises(function() workers.run({ "true" }, 0) end, "1 ms to 1 hour")
end)
