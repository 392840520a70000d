local T = require "mpic.testing"
local mpic = require "mpic"
local case, eq, ok = T.case, T.eq, T.ok

case("task_spawned_tasks_run_in_spawn_order", function()
  local order = {}
  local ts = {}
  for i = 1, 5 do
    ts[i] = mpic.spawn(function() order[#order + 1] = i end)
  end
  mpic.wait_all(ts)
  eq(order, { 1, 2, 3, 4, 5 })
end)

case("task_yield_lets_other_ready_tasks_run", function()
  local log = {}
  local a = mpic.spawn(function()
    log[#log + 1] = "a1"
    coroutine.yield()
    log[#log + 1] = "a2"
  end)
  local b = mpic.spawn(function()
    log[#log + 1] = "b1"
    coroutine.yield()
    log[#log + 1] = "b2"
  end)
  mpic.wait_all({ a, b })
  eq(log, { "a1", "b1", "a2", "b2" })
end)

case("task_sleepers_wake_in_deadline_order", function()
  local order = {}
  local ts = {}
  for i, ms in ipairs({ 30, 10, 20 }) do
    ts[i] = mpic.spawn(function()
      mpic.sleep(ms)
      order[#order + 1] = ms
    end)
  end
  mpic.wait_all(ts)
  eq(order, { 10, 20, 30 })
end)

case("task_wait_returns_all_results", function()
  local t = mpic.spawn(function(a, b) return a + b, "x", nil, 4 end, 1, 2)
  local r = table.pack(mpic.wait(t))
  eq(r, { n = 4, 3, "x", nil, 4 })
  eq(t:status(), "done")
end)

case("task_error_is_reported_to_waiter_with_traceback", function()
  local t = mpic.spawn(function()
    local x = nil
    return x.field
  end)
  local r, kind, msg = mpic.wait(t)
  eq(r, nil)
  eq(kind, "task_error")
  T.contains(msg, "attempt to index")
  eq(t:status(), "error")
  T.contains(t:traceback(), "stack traceback")
end)

case("task_wait_timeout_leaves_task_running", function()
  local t = mpic.spawn(function()
    mpic.sleep(50)
    return "late"
  end)
  local r, kind = mpic.wait(t, 5)
  eq({ r, kind }, { nil, "timeout" })
  eq(t:status(), "waiting")
  eq(mpic.wait(t), "late")
end)

case("task_with_timeout_cancels_on_deadline", function()
  local finished = false
  local t0 = mpic.now()
  local r, kind = mpic.with_timeout(20, function()
    mpic.sleep(5000)
    finished = true
  end)
  eq({ r, kind }, { nil, "timeout" })
  ok(mpic.now() - t0 < 1000, "deadline respected")
  mpic.sleep(10)
  eq(finished, false)
end)

case("task_cancel_cancels_descendants", function()
  local grandchild
  local child = mpic.spawn(function()
    grandchild = mpic.spawn(function() mpic.sleep(100000) end)
    mpic.wait(grandchild)
  end)
  mpic.sleep(1)
  mpic.cancel(child)
  eq(child:status(), "cancelled")
  eq(grandchild:status(), "cancelled")
  local r, kind = mpic.wait(child)
  eq({ r, kind }, { nil, "cancelled" })
end)

case("task_ending_cancels_unfinished_children", function()
  local child
  local parent = mpic.spawn(function()
    child = mpic.spawn(function() mpic.sleep(100000) end)
    return "parent done"
  end)
  eq(mpic.wait(parent), "parent done")
  eq(child:status(), "cancelled")
end)

case("task_cancel_of_running_task_takes_effect_at_next_yield", function()
  local reached = false
  local t
  t = mpic.spawn(function()
    mpic.cancel(t) -- cancels itself
    mpic.sleep(1) -- the next yield ends it
    reached = true
  end)
  local r, kind = mpic.wait(t)
  eq({ r, kind }, { nil, "cancelled" })
  eq(reached, false)
end)

case("task_wait_first_returns_in_completion_order", function()
  local ts = {}
  for i, ms in ipairs({ 40, 5, 20, 60 }) do
    ts[i] = mpic.spawn(function()
      mpic.sleep(ms)
      return i
    end)
  end
  local done = mpic.wait_first(ts, 2)
  eq(#done, 2)
  eq({ done[1]:result() }, { 2 })
  eq({ done[2]:result() }, { 3 })
  for _, t in ipairs(ts) do
    mpic.cancel(t)
  end
end)

case("task_wait_first_counts_already_finished_tasks", function()
  local a = mpic.spawn(function() return 1 end)
  mpic.wait(a)
  local b = mpic.spawn(function() mpic.sleep(100000) end)
  local done = mpic.wait_first({ b, a }, 1)
  eq(#done, 1)
  ok(done[1] == a)
  mpic.cancel(b)
end)

case("task_wait_first_timeout_returns_partial_list", function()
  local a = mpic.spawn(function()
    mpic.sleep(1)
    return 1
  end)
  local b = mpic.spawn(function() mpic.sleep(100000) end)
  local done, why = mpic.wait_first({ a, b }, 2, 30)
  eq(#done, 1)
  eq(why, "timeout")
  mpic.cancel(b)
end)

case("task_primitive_inside_nested_coroutine_raises", function()
  local co = coroutine.wrap(function() mpic.sleep(1) end)
  T.raises(co, "must be called from a task's own coroutine")
end)

case("task_misuse_raises", function()
  T.raises(function() mpic.sleep(-1) end, "sleep must be")
  T.raises(function() mpic.spawn(42) end, "function expected")
  T.raises(function() mpic.wait({}) end, "mpic.task expected")
  T.raises(function() mpic.wait_first({ 1 }, 1) end, "not a task")
end)

case("task_cancelled_sleepers_release_their_timers", function()
  local before = mpic.stats().live_tasks
  local ts = {}
  for i = 1, 2000 do
    ts[i] = mpic.spawn(function() mpic.sleep(100000) end)
  end
  mpic.sleep(1)
  eq(mpic.stats().live_tasks, before + 2000)
  for _, t in ipairs(ts) do
    mpic.cancel(t)
  end
  eq(mpic.stats().live_tasks, before)
end)

case("task_ten_thousand_concurrent_sleepers_finish_together", function()
  local ts = {}
  local t0 = mpic.now()
  for i = 1, 10000 do
    ts[i] = mpic.spawn(function()
      mpic.sleep(10)
      return i
    end)
  end
  mpic.wait_all(ts)
  local sum = 0
  for _, t in ipairs(ts) do
    sum = sum + t:result()
  end
  eq(sum, 10000 * 10001 // 2)
  ok(mpic.now() - t0 < 5000, "bounded")
end)

case("task_to_be_closed_variable_closed_on_cancel", function()
  local closed = false
  local t = mpic.spawn(function()
    local _ <close> = setmetatable({}, { __close = function() closed = true end })
    mpic.sleep(100000)
  end)
  mpic.sleep(1)
  mpic.cancel(t)
  mpic.sleep(1) -- coroutines are reset outside any task, before the next turn
  eq(closed, true)
end)
