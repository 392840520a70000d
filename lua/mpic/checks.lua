-- mpic.checks: what `mpic check-config` verifies beyond the schema: the
-- policy loads and accepts the perspective set (today's date) and does not
-- answer "valid" when every perspective failed; the shadow policies load and
-- pass the same checks; every challenge type loads (broken files are listed
-- with path and line; they do not stop the others), and the primary's
-- resolver passes the DNSSEC check `mpic serve` runs at start.
local M = {}
local ipairs, string_format, table_concat = ipairs, string.format, table.concat

--[[ A policy that answers "valid" when every perspective failed has no floor
of its own: decide() is asked once on a synthetic cohort (the policy's own
selection for a made-up target, else the first remotes) where the primary
and every remote completed and failed. Returns true, or nil, reason. ]]
function M.all_fail(ctx, pol, date)
  local orchestrator = require "mpic.orchestrator"
  local perspectives = require "mpic.perspectives"
  local select_mod = require "mpic.select"
  local cfg = ctx.cfg
  local remotes = {}
  for _, p in ipairs(perspectives.list(ctx.persp)) do
    if not p.is_primary then remotes[#remotes + 1] = p.id end
  end
  local n = cfg.defaults.perspective_count or #remotes
  if n > #remotes then n = #remotes end
  if n < 1 then return true end
  local rng = select_mod.new_rng(select_mod.seed("check-config", "all-fail.check-config.invalid"))
  local ids = pol:select(perspectives.list(ctx.persp), "all-fail.check-config.invalid", n, 1, rng)
  if not ids then ids = { table.unpack(remotes, 1, n) } end
  local failed = { passed = false, completed = true }
  local slots = {}
  for i, id in ipairs(ids) do
    slots[i] = { id = id, rir = perspectives.get(id, ctx.persp).rir, result = failed }
  end
  local pslot = cfg.primary
      and { id = cfg.primary, rir = perspectives.get(cfg.primary, ctx.persp).rir, result = failed }
    or nil
  local v, why = pol:decide_owned(
    orchestrator.state_for(orchestrator.public_records(ctx.persp, pol), slots, pslot, #slots, nil, date)
  )
  if v == "valid" then
    return nil,
      string_format(
        'policy %s answers "valid" when the primary and all %d remotes failed (%s); '
          .. 'every "valid" must rest on corroboration',
        pol.path,
        #slots,
        tostring(why)
      )
  end
  return true
end

function M.all(cfg)
  local orchestrator = require "mpic.orchestrator"
  local perspectives = require "mpic.perspectives"
  orchestrator.reset()
  local ctx, err = orchestrator.context()
  if not ctx then return nil, err end
  local date = os.date("!%Y-%m-%d")
  local ok, why = ctx.policy:check_config(perspectives.list(), cfg.defaults, date)
  if not ok then
    return nil,
      string_format("%s: policy %s refuses this configuration on %s: %s", cfg.file, ctx.policy.path, date, why)
  end
  local floor_on = orchestrator.floor_enabled(cfg)
  local lines =
    { string_format("policy %s (%s) accepts the perspective set on %s", ctx.policy.name, ctx.policy.path, date) }
  local function all_fail(pol, what)
    local fok, fwhy = M.all_fail(ctx, pol, date)
    if fok then return true end
    if floor_on then return nil, string_format("%s: %s%s", cfg.file, what, fwhy) end
    lines[#lines + 1] = "warning (lab.policy_floor is false): " .. what .. fwhy
    return true
  end
  local fok, fwhy = all_fail(ctx.policy, "")
  if not fok then return nil, fwhy end
  if not floor_on then
    lines[#lines + 1] =
      "warning: lab.policy_floor is false: the BR floor under the policy's verdict is OFF (lab use only)"
  end
  local serr = ctx.shadow_errors and ctx.shadow_errors[1]
  if serr then return nil, string_format("%s: shadow %s", cfg.file, serr.error) end
  for _, sp in ipairs(ctx.shadows) do
    local sok, swhy = sp:check_config(perspectives.list(), cfg.defaults, date)
    if not sok then
      return nil,
        string_format("%s: shadow policy %s refuses this configuration on %s: %s", cfg.file, sp.path, date, swhy)
    end
    fok, fwhy = all_fail(sp, "shadow ")
    if not fok then return nil, fwhy end
    lines[#lines + 1] = string_format("shadow policy %s (%s) accepts the perspective set on %s", sp.name, sp.path, date)
  end
  local names = {}
  for _, ch in ipairs(ctx.registry.list) do
    names[#names + 1] = ch.name
  end
  lines[#lines + 1] = string_format("%d challenge types: %s", #names, table_concat(names, ", "))
  local dnssec = require "mpic.dnssec_check"
  local dok, dmsg = dnssec.startup(cfg)
  if not dok then return nil, string_format("%s: %s", cfg.file, dmsg) end
  lines[#lines + 1] = cfg.primary_dnssec and dmsg or ("warning: " .. dmsg)
  if #ctx.registry.errors > 0 then
    local errs = {}
    for _, e in ipairs(ctx.registry.errors) do
      errs[#errs + 1] = "  " .. e.message
    end
    return nil, table_concat(lines, "\n") .. "\nbroken challenge files:\n" .. table_concat(errs, "\n")
  end
  return true, table_concat(lines, "\n")
end

return M
