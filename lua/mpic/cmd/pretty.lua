-- mpic.cmd.pretty: readable rendering of Lua values for the REPL: tables as an
-- indented key/value tree with aligned keys, byte strings quoted and escaped;
-- validation responses (tables with `perspectives` and `is_valid`) as the
-- per-perspective table of `mpic validate` (mpic.cmd.report).
local M = {}
local type, pairs, tostring, string_format, table_sort, table_concat =
  type, pairs, tostring, string.format, table.sort, table.concat

local function key_order(a, b)
  local ta, tb = type(a), type(b)
  if ta == tb and (ta == "number" or ta == "string") then return a < b end
  return ta < tb
end

local null
local function scalar(v)
  if null == nil then null = require("mpic.core.util").null end
  if null and v == null then return "null" end
  if type(v) == "string" then return string_format("%q", v):gsub("\\\n", "\\n") end
  return tostring(v)
end

local function render(v, indent, out, seen, depth)
  if type(v) ~= "table" then
    out[#out + 1] = scalar(v)
    return
  end
  if seen[v] then
    out[#out + 1] = "<cycle>"
    return
  end
  if depth > 8 then
    out[#out + 1] = "{...}"
    return
  end
  local keys = {}
  for k in pairs(v) do
    keys[#keys + 1] = k
  end
  if #keys == 0 then
    out[#out + 1] = "{}"
    return
  end
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

--- True for an Open MPIC validation response.
function M.is_response(v)
  return type(v) == "table" and type(v.perspectives) == "table" and type(v.is_valid) == "boolean"
end

--- Render one REPL value: a validation response as the report table (the
--- tree stays available through mpic.cmd.pretty.format), anything else as a tree.
function M.render(v)
  if M.is_response(v) then
    local report = require "mpic.cmd.report"
    local okt, text = pcall(report.table, v, { color = report.is_tty() })
    if okt then return (text:gsub("\n$", "")) end
  end
  return M.format(v)
end

--- Print the values of a task outcome table {n=..., ...}.
function M.print_values(r)
  for i = 1, r.n or #r do
    local v = r[i]
    -- the HTTP status that follows a response adds nothing
    if not (i == 2 and v == 200 and M.is_response(r[1])) then print(M.render(v)) end
    if M.is_response(v) then require("mpic.cmd.repl").last_response = v end
  end
end

--- Print the outcome of a REPL line as mpic_rt_run_main leaves it:
--- {ok=true, n=..., ...} or {ok=false, err=..., traceback=...}.
function M.print_outcome(r)
  if not r.ok then
    -- a mistake in the typed line (at stdin:N, or refused by mpic's API
    -- without a position) is its message alone; an error raised at a line
    -- of a Lua file shows where, with the traceback
    local msg = r.err
    if type(msg) ~= "string" or msg:match("^[^%s:]+%.lua:%d+:") then msg = r.traceback or r.err end
    io.stderr:write(tostring(msg or "error"), "\n")
    return
  end
  if (r.n or 0) > 0 then M.print_values(r) end
end

return M
