-- mpic.checks: what `mpic check-config` verifies beyond the schema: the
-- policy loads and accepts the perspective set (today's date), the shadow
-- policies load, and every challenge type loads (broken files are listed
-- with path and line; they do not stop the others), and the primary's
-- resolver passes the DNSSEC check `mpic serve` runs at start.
local M = {}
local ipairs, string_format, table_concat = ipairs, string.format, table.concat

function M.all(cfg)
  local orchestrator = require "mpic.orchestrator"
  local perspectives = require "mpic.perspectives"
  orchestrator.reset()
  local ctx, err = orchestrator.context()
  if not ctx then return nil, err end
  local date = os.date("!%Y-%m-%d")
  local ok, why = ctx.policy:check_config(perspectives.list(), cfg.defaults, date)
  if not ok then
    return nil, string_format("%s: policy %s refuses this configuration on %s: %s", cfg.file, ctx.policy.path, date, why)
  end
  local lines = { string_format("policy %s (%s) accepts the perspective set on %s", ctx.policy.name, ctx.policy.path, date) }
  for _, sp in ipairs(ctx.shadows) do lines[#lines + 1] = "shadow policy " .. sp.name .. " (" .. sp.path .. ")" end
  local names = {}
  for _, ch in ipairs(ctx.registry.list) do names[#names + 1] = ch.name end
  lines[#lines + 1] = string_format("%d challenge types: %s", #names, table_concat(names, ", "))
  local dnssec = require "mpic.dnssec_check"
  local dok, dmsg = dnssec.check(cfg)
  if not dok then return nil, string_format("%s: %s", cfg.file, dmsg) end
  lines[#lines + 1] = dmsg or ("warning: " .. dnssec.NOT_SET)
  if #ctx.registry.errors > 0 then
    local errs = {}
    for _, e in ipairs(ctx.registry.errors) do errs[#errs + 1] = "  " .. e.message end
    return nil, table_concat(lines, "\n") .. "\nbroken challenge files:\n" .. table_concat(errs, "\n")
  end
  return true, table_concat(lines, "\n")
end

return M
