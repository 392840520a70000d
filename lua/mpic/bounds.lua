-- mpic.bounds: the size of a decoded JSON value, measured against limits,
-- so that what a client or an agent sends buys a bounded amount of memory
-- and of log space. The walk stops at the first limit it meets: its cost is
-- bounded by the limits, not by the value.
local M = {}
local type, pairs, tostring, getmetatable = type, pairs, tostring, getmetatable
local sfmt = string.format

--[[ check(v, lim [, what]) -> true | nil, message.
lim = { depth = levels (v itself is level 1), nodes = values counted
(every table and every scalar), string = bytes of one string, key = bytes
of one object key, total = bytes of all strings and keys together (optional) }.
what names v in the message ("parameter caa_domains"). ]]
function M.check(v, lim, what)
  what = what or "value"
  local nodes, total = 0, 0
  local function walk(x, depth)
    if depth > lim.depth then return sfmt("%s nests deeper than %d levels", what, lim.depth) end
    nodes = nodes + 1
    if nodes > lim.nodes then return sfmt("%s has more than %d values", what, lim.nodes) end
    local t = type(x)
    if t == "string" then
      if #x > lim.string then return sfmt("%s holds a string of %d bytes, more than %d", what, #x, lim.string) end
      total = total + #x
    elseif t == "table" then
      for k, e in pairs(x) do
        if type(k) == "string" then
          if #k > lim.key then return sfmt("%s has a key of %d bytes, more than %d", what, #k, lim.key) end
          total = total + #k
        end
        local why = walk(e, depth + 1)
        if why then return why end
      end
    end
    if lim.total and total > lim.total then return sfmt("%s holds more than %d bytes of text", what, lim.total) end
    return nil
  end
  local why = walk(v, 1)
  if why then return nil, why end
  return true, nodes, total
end

--- True when t is a table that came from a JSON object (not an array).
function M.is_object(t, array_mt)
  if type(t) ~= "table" then return false end
  if array_mt and getmetatable(t) == array_mt then return false end
  local n = #t
  return n == 0 or t[n] == nil
end

--- s, shortened to at most n bytes for a message or a log line ("…" and the
--- full length appended when cut).
function M.clip(s, n)
  s = tostring(s)
  n = n or 64
  if #s <= n then return s end
  return sfmt("%s... (%d bytes)", s:sub(1, n), #s)
end

return M
