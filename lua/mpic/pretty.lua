-- mpic.pretty: readable rendering of Lua values for the REPL: tables as an
-- indented key/value tree with aligned keys, byte strings quoted and escaped.
local M = {}
local type, pairs, tostring, string_format, table_sort, table_concat =
  type, pairs, tostring, string.format, table.sort, table.concat

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == "number" or ta == "string") then return a < b end
  return ta < tb
end

local function scalar(v)
  if type(v) == "string" then return string_format("%q", v):gsub("\\\n", "\\n") end
  return tostring(v)
end

local function render(v, indent, out, seen, depth)
  if type(v) ~= "table" then out[#out + 1] = scalar(v) return end
  if seen[v] then out[#out + 1] = "<cycle>" return end
  if depth > 8 then out[#out + 1] = "{...}" return end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  if #keys == 0 then out[#out + 1] = "{}" return end
  table_sort(keys, key_order)
  seen[v] = true
  local width = 0
  for _, k in ipairs(keys) do
    local s = type(k) == "string" and k or ("[" .. tostring(k) .. "]")
    if #s > width then width = #s end
  end
  for _, k in ipairs(keys) do
    local s = type(k) == "string" and k or ("[" .. tostring(k) .. "]")
    out[#out + 1] = "\n" .. indent .. s .. string.rep(" ", width - #s) .. " = "
    render(v[k], indent .. "  ", out, seen, depth + 1)
  end
  seen[v] = nil
end

function M.format(v)
  local out = {}
  render(v, "", out, {}, 0)
  local s = table_concat(out)
  return (s:gsub("^\n", ""))
end

--- Print the values of a task outcome table {n=..., ...}.
function M.print_values(r)
  for i = 1, r.n or #r do print(M.format(r[i])) end
end

return M
