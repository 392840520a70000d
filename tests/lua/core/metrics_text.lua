-- Reading a Prometheus text rendering of mpic.service.metrics (the tests of
-- this folder).
local M = {}

--- The value of one series (name and labels as rendered), or nil when absent.
function M.value(text, series)
  for line in text:gmatch("[^\n]+") do
    local k, v = line:match("^(.-) (%S+)$")
    if k == series then return tonumber(v) end
  end
  return nil
end

--- How many lines start with prefix.
function M.count_lines(text, prefix)
  local n = 0
  for line in text:gmatch("[^\n]+") do
    if line:sub(1, #prefix) == prefix then n = n + 1 end
  end
  return n
end

return M
