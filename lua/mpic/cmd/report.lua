-- mpic.cmd.report: human-readable rendering of validation responses: the
-- per-perspective table of `mpic validate` and the REPL, problem lists for
-- rejected requests, and the explanation of which rule decided.
local util = require "mpic.core.util"
local perspectives = require "mpic.perspectives"

local M = {}
local string_format, table_concat, ipairs, type, tostring = string.format, table.concat, ipairs, type, tostring

function M.is_tty() return util.isatty(1) end

local function first_error(cr)
  local e = type(cr.errors) == "table" and cr.errors[1]
  if not e then return "" end
  return tostring(e.error_message or e.error_type)
end

local function detail(cr)
  local d = cr.details or {}
  if cr.errors ~= util.null and type(cr.errors) == "table" and #cr.errors > 0 then return first_error(cr) end
  if not cr.check_passed and type(d.reason) == "string" then return d.reason end
  if d.found_at and d.found_at ~= util.null then return "found at " .. tostring(d.found_at) end
  if d.response_url and d.response_url ~= util.null then return tostring(d.response_url) end
  if d.records_seen and type(d.records_seen) == "table" and #d.records_seen > 0 then
    return "seen " .. tostring(d.records_seen[1])
  end
  if d.common_name and d.common_name ~= util.null then return "cn " .. tostring(d.common_name) end
  return ""
end

local function result_word(cr)
  if cr.check_passed then return "pass" end
  if cr.check_completed then return "fail" end
  return "error"
end

local COLORS = { pass = "\27[32m", fail = "\27[31m", error = "\27[33m", valid = "\27[1;32m", invalid = "\27[1;31m" }
local RESET = "\27[0m"

local function clip(s, n)
  s = tostring(s):gsub("[%c]", " ")
  if #s > n then return s:sub(1, n - 3) .. "..." end
  return s
end

--- The per-perspective table and the verdict line.
function M.table(resp, opts)
  opts = opts or {}
  local color = opts.color
  local cfg = perspectives.config()
  local primary_loc
  if cfg and cfg.primary then primary_loc = perspectives.get(cfg.primary).location end
  local rows = {}
  local function add(kind, entry)
    local cr = entry.check_response
    local p = perspectives.get(entry.perspective_code)
    local dist = "-"
    if p and primary_loc and kind ~= "primary" then
      dist =
        string_format("%.0f km", util.distance_km(primary_loc.lat, primary_loc.lon, p.location.lat, p.location.lon))
    end
    rows[#rows + 1] = {
      entry.perspective_code .. (kind == "primary" and " (primary)" or ""),
      entry.rir or (p and p.rir) or "?",
      dist,
      result_word(cr),
      entry.elapsed_ms and string_format("%d", entry.elapsed_ms) or "-",
      clip(detail(cr), 70),
    }
  end
  if resp.primary_perspective then add("primary", resp.primary_perspective) end
  for _, e in ipairs(resp.perspectives or {}) do
    add("remote", e)
  end
  local head = { "perspective", "rir", "distance", "result", "ms", "detail" }
  local w = {}
  for i, h in ipairs(head) do
    w[i] = #h
  end
  for _, r in ipairs(rows) do
    for i, c in ipairs(r) do
      if #c > w[i] then w[i] = #c end
    end
  end
  local out = {}
  local function line(r, is_head)
    local cells = {}
    for i, c in ipairs(r) do
      local cell = c .. string.rep(" ", w[i] - #c)
      if color and not is_head and i == 4 and COLORS[c] then cell = COLORS[c] .. cell .. RESET end
      cells[i] = cell
    end
    out[#out + 1] = (table_concat(cells, "  "):gsub("%s+$", ""))
  end
  line(head, true)
  for _, r in ipairs(rows) do
    line(r)
  end
  local d = resp.mpic_decision or {}
  local verdict = resp.is_valid and "VALID" or "NOT VALID"
  if color then verdict = (resp.is_valid and COLORS.valid or COLORS.invalid) .. verdict .. RESET end
  local aop = resp.actual_orchestration_parameters or {}
  out[#out + 1] = string_format(
    "%s: %s for %s -- quorum %s (need %s of %s), attempt %s, policy %s%s",
    verdict,
    require("mpic.cmd.explain").what(resp.check_type, d.method),
    resp.domain_or_ip_target,
    tostring(d.quorum or "?"),
    tostring(aop.quorum_count),
    tostring(aop.perspective_count),
    tostring(aop.attempt_count),
    tostring(d.policy),
    resp.mpic_completed == false and " (not every perspective completed)" or ""
  )
  if d.reason then out[#out + 1] = "  " .. tostring(d.reason) end
  return table_concat(out, "\n") .. "\n"
end

--- A 400/500 body as text.
function M.problems(resp, status)
  local out = { string_format("request rejected (HTTP %d): %s", status, tostring(resp.error)) }
  for _, i in ipairs(resp.validation_issues or {}) do
    out[#out + 1] = string_format("  %s: %s", i.issue_type, i.message)
  end
  return table_concat(out, "\n")
end

--- Which rule decided (see mpic.cmd.explain), with the shadow policies'
--- verdicts from the validation's audit line.
function M.explain(resp) return require("mpic.cmd.explain").response_with_audit(resp) end

return M
