--[[
br.lua: the default corroboration policy, BR 3.2.2.9 as in force on the
validation date. It is also the reference example of the policy contract.

THE POLICY CONTRACT
A policy file runs in a sandbox (see lua/mpic/policy.lua: no io, os, load,
debug; require gives only mpic.select, mpic.geo and mpic.quorum; every call
has an instruction limit) and returns a table:

  return {
    name = "br",                       -- required string
    description = "...",               -- optional string
    -- Optional. Validate the configuration once at start.
    -- registry: list of {id, rir, location = {lat, lon}, healthy = bool,
    --   latency_ms = number|nil, is_primary = bool}; defaults: the config's
    --   defaults table (perspective_count, max_attempts, timeout_ms);
    --   date: "YYYY-MM-DD" (UTC) of the check.
    -- Returns true, or nil, reason.
    check_config = function(registry, defaults, date) end,
    -- Required. Perspective selection: the remotes for one attempt.
    -- target: the identifier as received; count: number of remotes;
    -- attempt: 1-based; rng: deterministic stream, rng:int(n) -> 1..n
    -- (uniform), seeded by the orchestrator with SHA-256(secret .. lower(target)).
    -- Returns a list of exactly `count` remote ids, or nil, reason.
    select = function(registry, target, count, attempt, rng) end,
    -- Required. Corroboration, called whenever a result arrives.
    -- state = { primary = {id, passed, completed, done} or nil,
    --           remotes = { {id, rir, passed, completed, done}, ... },  -- all selected;
    --                     done = false while the remote has not answered
    --           count = n, quorum = requested quorum_count or nil,
    --           date = "YYYY-MM-DD" }
    -- Returns "valid" | "invalid" | "undecided", reason (string),
    -- info (table of plain data, e.g. quorum = "k/n", passed_rirs = {...}).
    -- "valid"/"invalid" as soon as the outcome is certain; the orchestrator
    -- then cancels the remaining checks unless wait_for_all is true.
    decide = function(state) end,
    wait_for_all = false,              -- optional: wait for every remote anyway
    primary_first = false,             -- optional: contact remotes only after the primary passed
    -- Optional. Minimum number of remotes on a date.
    min_perspectives = function(date) end,
  }
Any error, instruction-limit overrun or malformed return fails closed
(check_config/select refuse; decide counts as "invalid").

THIS POLICY
- Quorum (BR table): n = 2..5 remotes allow 1 non-corroboration, n >= 6
  allow 2. A requested quorum_count must satisfy the Open MPIC rule
  (n-1 <= q <= n <= 5 or 4 <= n-2 <= q <= n); the policy uses
  max(requested, table).
- The corroborating remotes span >= 2 RIRs (cohorts of more than 2).
- Phase-in: at least 3 remotes from 2026-03-15, 4 from 2026-06-15, 5 from
  2026-12-15 (2 before); fewer is invalid-perspective-count.
- A failed primary is invalid at once; the primary must pass for "valid".
- Cohorts (mpic.select): members pairwise >= 500 km apart and >= 500 km
  from the primary, computed from locations; the same (secret, target,
  configuration) gives the same cohorts; attempt i uses cohort
  ((i-1) mod C) + 1, skipping to the next cohort whose members are all
  healthy.
- check_config refuses a registry that can never form a compliant cohort
  of defaults.perspective_count remotes.
]]
local cohorts = require "mpic.select"
local quorum = require "mpic.quorum"

local function check_config(registry, defaults, date)
  local min, why = quorum.min_remotes(date)
  if not min then return nil, why end
  local count = defaults and defaults.perspective_count
  return cohorts.check_registry(registry, count, { min_count = min, date = date })
end

local function select_remotes(registry, _, count, attempt, rng)
  local ids, why = cohorts.pick(registry, count, attempt, rng)
  if not ids then return nil, why end
  return ids
end

local function decide(state) return quorum.evaluate(state) end

return {
  name = "br",
  description = "BR 3.2.2.9: quorum table, 2 RIRs, 500 km, primary must pass",
  check_config = check_config,
  select = select_remotes,
  decide = decide,
  wait_for_all = false,
  min_perspectives = function(date) return quorum.min_remotes(date) end,
}
